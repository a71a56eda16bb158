package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strconv"

	"google.golang.org/grpc/codes"

	dpapi "github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/validate"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/resource"
	xdsboot "github.com/atoll-mesh/atoll/pkg/xds/bootstrap"
)

// maxRequestBytes bounds a request body (a Dataplane document fits easily).
const maxRequestBytes = 1 << 20

// defaultEnvoyAdminPort is Envoy's customary admin port.
const defaultEnvoyAdminPort = 9901

func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(dpapi.BootstrapPath, s.post(s.handleBootstrap))
	mux.HandleFunc(dpapi.CertificatePath, s.post(s.handleCertificate))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint at %s: the data-plane server answers POST %s and POST %s", r.URL.Path, dpapi.BootstrapPath, dpapi.CertificatePath))
	})
	return s.instrument(mux)
}

// post refuses other methods with a JSON body.
func (s *Server) post(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s is not supported; use POST", r.Method, r.URL.Path))
			return
		}
		h(w, r)
	}
}

// handleBootstrap answers POST /bootstrap: it authenticates the agent,
// registers the dataplane it sent (or finds the existing one) and returns
// the proxy's bootstrap.
func (s *Server) handleBootstrap(w http.ResponseWriter, r *http.Request) {
	var req dpapi.Request
	if !decode(w, r, &req) {
		return
	}
	if err := checkBootstrapRequest(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	key := resource.Key{Mesh: req.Mesh, Name: req.Name}
	token := bearer(r.Header.Get("Authorization"))
	var dp *resource.Resource
	var aerr *authError
	if req.Dataplane != "" {
		dp, aerr = s.register(r.Context(), key, token, req.Dataplane)
	} else {
		dp, aerr = s.authenticate(r.Context(), key, token)
	}
	if aerr != nil {
		s.log.Info("refused a bootstrap request", "dataplane", key.String(), "status", aerr.httpStatus, "reason", aerr.msg)
		writeError(w, aerr.httpStatus, aerr.msg)
		return
	}
	doc, err := s.bootstrapDocument(&req, dp.Spec.(*dataplane.Spec), token)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, dpapi.Response{Bootstrap: doc, NodeID: xdsboot.NodeID(key)})
}

// checkBootstrapRequest checks the fields a bootstrap needs.
func checkBootstrapRequest(req *dpapi.Request) error {
	var errs validate.Errors
	errs.Append(validate.Name("mesh", req.Mesh))
	errs.Append(validate.Name("name", req.Name))
	errs.Append(validate.OneOf("proxyType", req.ProxyType, dpapi.ProxyEnvoy, dpapi.ProxyProxyless))
	if req.XDSServer == "" {
		errs.Add("xdsServer", "must be set to the control plane's address (host:port) the proxy connects to")
	} else if host, port, err := net.SplitHostPort(req.XDSServer); err != nil || host == "" || port == "" {
		errs.Add("xdsServer", "xDS server address %q must be host:port", req.XDSServer)
	}
	if req.AdminPort > 65535 {
		errs.Add("adminPort", "must be a port number between 1 and 65535")
	}
	if req.ProxyType == dpapi.ProxyProxyless {
		switch p := req.Proxyless; {
		case p == nil:
			errs.Add("proxyless", "must be set for a proxyless workload")
		case p.ServerCAFile == "":
			errs.Add("proxyless.serverCaFile", "must name the file holding the control plane's CA")
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid bootstrap request: %w", errs)
	}
	return nil
}

// register validates the Dataplane atoll-dp sent, authenticates the token
// against it and creates or replaces it, marked as registered by the agent.
func (s *Server) register(ctx context.Context, key resource.Key, token, doc string) (*resource.Resource, *authError) {
	if token == "" {
		_, aerr := s.authenticate(ctx, key, "")
		return nil, aerr
	}
	res, err := resource.DecodeJSONAs(s.dpType, []byte(doc))
	if err != nil {
		return nil, refuse(http.StatusBadRequest, codes.InvalidArgument, err, "the dataplane is not valid: %v", err)
	}
	if res.Meta.Mesh != "" && res.Meta.Mesh != key.Mesh {
		return nil, refuse(http.StatusBadRequest, codes.InvalidArgument, nil, "the dataplane names mesh %q, but the request is for mesh %q", res.Meta.Mesh, key.Mesh)
	}
	if res.Meta.Name != "" && res.Meta.Name != key.Name {
		return nil, refuse(http.StatusBadRequest, codes.InvalidArgument, nil, "the dataplane is named %q, but the request is for %q", res.Meta.Name, key.Name)
	}
	res.Meta.Mesh, res.Meta.Name = key.Mesh, key.Name
	spec := res.Spec.(*dataplane.Spec)
	vctx, cancel := context.WithTimeout(ctx, s.opts.StoreTimeout)
	defer cancel()
	if _, err := s.opts.Tokens.Verify(vctx, token, key.Mesh, key.Name, pki.DataplaneTags(spec)); err != nil {
		return nil, tokenError(key, err)
	}
	if errs := resource.Validate(s.dpType, res); len(errs) > 0 {
		return nil, refuse(http.StatusBadRequest, codes.InvalidArgument, errs, "the dataplane is not valid: %v", errs)
	}
	res.Meta.Labels = maps.Clone(res.Meta.Labels)
	if res.Meta.Labels == nil {
		res.Meta.Labels = map[string]string{}
	}
	res.Meta.Labels[RegisteredByLabel] = RegisteredByAgent
	if cur, err := s.opts.Resources.Get(vctx, resource.DataplaneType, key); err == nil && sameDataplane(cur, res) {
		// Registered already (a proxy reconnecting): nothing to write.
		s.lifecycle.registered(key)
		return cur, nil
	}
	out, err := s.opts.Resources.Apply(vctx, res, manager.ApplyOptions{})
	var verr *manager.ValidationError
	switch {
	case errors.As(err, &verr):
		return nil, refuse(http.StatusBadRequest, codes.InvalidArgument, err, "the dataplane is not valid: %v", verr.Errors)
	case errors.Is(err, manager.ErrMeshNotFound):
		return nil, refuse(http.StatusNotFound, codes.NotFound, err, "mesh %q does not exist; create it before registering dataplanes in it", key.Mesh)
	case err != nil:
		return nil, refuse(http.StatusServiceUnavailable, codes.Unavailable, err, "registering dataplane %s failed: %v", key, err)
	}
	if out.Created {
		s.log.Info("registered a dataplane for atoll-dp", "dataplane", key.String())
	}
	s.lifecycle.registered(key)
	return out.Resource, nil
}

// sameDataplane reports whether stored already holds what next would write.
func sameDataplane(stored, next *resource.Resource) bool {
	if !maps.Equal(stored.Meta.Labels, next.Meta.Labels) {
		return false
	}
	a, errA := json.Marshal(stored.Spec)
	b, errB := json.Marshal(next.Spec)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// bootstrapDocument renders the proxy's bootstrap.
func (s *Server) bootstrapDocument(req *dpapi.Request, spec *dataplane.Spec, token string) ([]byte, error) {
	node := xdsboot.Node{
		Mesh: req.Mesh, Name: req.Name, Service: mainService(spec),
		AgentVersion: req.Version.AtollDP, EnvoyVersion: req.Version.Envoy,
		Dataplane: req.Dataplane,
	}
	if req.ProxyType == dpapi.ProxyProxyless {
		p := req.Proxyless
		return xdsboot.GRPC(xdsboot.GRPCParams{
			Node: node, XDSServer: req.XDSServer, ServerCAFile: p.ServerCAFile,
			CertificateFile: p.CertificateFile, PrivateKeyFile: p.PrivateKeyFile, CABundleFile: p.CABundleFile,
			Token: token,
		})
	}
	admin := req.AdminPort
	if admin == 0 && spec.Networking.Admin != nil {
		admin = spec.Networking.Admin.Port
	}
	if admin == 0 {
		admin = defaultEnvoyAdminPort
	}
	return xdsboot.Envoy(xdsboot.EnvoyParams{Node: node, XDSServer: req.XDSServer, CACert: s.caPEM, Token: token, AdminPort: admin})
}

// mainService is the dataplane's first service: Envoy's node cluster.
func mainService(spec *dataplane.Spec) string {
	if gw := spec.Networking.Gateway; gw != nil {
		return gw.Tags[dataplane.ServiceTag]
	}
	for _, in := range spec.Networking.Inbound {
		if svc := in.Service(); svc != "" {
			return svc
		}
	}
	return ""
}

// handleCertificate answers POST /certificate with a fresh workload
// certificate for the token's dataplane.
func (s *Server) handleCertificate(w http.ResponseWriter, r *http.Request) {
	var req dpapi.CertificateRequest
	if !decode(w, r, &req) {
		return
	}
	var errs validate.Errors
	errs.Append(validate.Name("mesh", req.Mesh))
	errs.Append(validate.Name("name", req.Name))
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid certificate request: "+errs.Error())
		return
	}
	key := resource.Key{Mesh: req.Mesh, Name: req.Name}
	if _, aerr := s.authenticate(r.Context(), key, bearer(r.Header.Get("Authorization"))); aerr != nil {
		writeError(w, aerr.httpStatus, aerr.msg)
		return
	}
	if s.opts.Certificates == nil {
		writeError(w, http.StatusNotImplemented, "this control plane does not issue workload certificates")
		return
	}
	resp, err := s.opts.Certificates.WorkloadCertificate(r.Context(), key)
	switch {
	case errors.Is(err, ErrNoIdentity):
		writeError(w, http.StatusConflict, fmt.Sprintf("dataplane %s: %v", key, err))
		return
	case err != nil:
		s.log.Error("issuing a workload certificate failed", "dataplane", key.String(), "error", err)
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("dataplane %s: issuing its certificate failed: %v", key, err))
		return
	}
	s.insights.setMTLS(key, resp.NotAfter, s.opts.Now())
	writeJSON(w, http.StatusOK, resp)
}

// decode reads a JSON body into v, answering the error itself.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, maxRequestBytes)
	if err := json.NewDecoder(body).Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", maxRequestBytes))
			return false
		}
		writeError(w, http.StatusBadRequest, "the request body is not valid JSON: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, dpapi.Error{Message: msg})
}

// instrument counts requests by path and status.
func (s *Server) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		path := r.URL.Path
		if path != dpapi.BootstrapPath && path != dpapi.CertificatePath {
			path = "other"
		}
		s.metrics.requests.WithLabelValues(path, strconv.Itoa(rec.status)).Inc()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the status.
func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}
