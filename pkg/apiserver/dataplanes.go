package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/atoll-mesh/atoll/api/decode"
	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/validate"
	"github.com/atoll-mesh/atoll/pkg/auth/dptoken"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// Inspector computes what the control plane sends a dataplane, whether or
// not it is connected, with the same pure pipeline that serves it.
type Inspector interface {
	// InspectConfig returns the dataplane's xDS resources as JSON (secrets
	// redacted) and the proxy IR as JSON.
	InspectConfig(ctx context.Context, key resource.Key) (xds []byte, ir []byte, err error)
	// InspectRules returns, as JSON, which policies apply to the dataplane
	// and why: per policy type, the selected policies and the merged
	// configuration of each destination and inbound with its contributors.
	InspectRules(ctx context.Context, key resource.Key) ([]byte, error)
}

// TokenIssuer issues and revokes dataplane tokens.
type TokenIssuer interface {
	// IssueDataplaneToken returns a token for mesh (and, when set, one
	// dataplane name and allowed tag values) valid for validFor (0: default).
	IssueDataplaneToken(ctx context.Context, mesh, name string, tags map[string][]string, validFor time.Duration) (string, error)
	// RevokeDataplaneToken refuses, from now on, the token with id jti of mesh.
	RevokeDataplaneToken(ctx context.Context, mesh, jti string) error
}

// ErrNotServed is returned by optional endpoints whose backing component
// this control plane does not run (for example data-plane inspection on a
// global control plane).
var ErrNotServed = errors.New("not served by this control plane")

// DataplaneOverview joins a dataplane with what the control plane observed
// about it, in Kuma's shape (kumactl inspect dataplanes reads it).
type DataplaneOverview struct {
	// Type is always "DataplaneOverview".
	Type string `json:"type"`
	// Mesh of the dataplane.
	Mesh string `json:"mesh"`
	// Name of the dataplane.
	Name string `json:"name"`
	// CreationTime of the dataplane.
	CreationTime time.Time `json:"creationTime"`
	// ModificationTime of the dataplane.
	ModificationTime time.Time `json:"modificationTime"`
	// Labels of the dataplane.
	Labels map[string]string `json:"labels,omitempty"`
	// Dataplane is the Dataplane spec.
	Dataplane json.RawMessage `json:"dataplane"`
	// DataplaneInsight is the insight spec, absent until the dataplane connects.
	DataplaneInsight json.RawMessage `json:"dataplaneInsight,omitempty"`
}

func (s *Server) overview(ctx context.Context, dp *resource.Resource) (DataplaneOverview, error) {
	spec, err := json.Marshal(dp.Spec)
	if err != nil {
		return DataplaneOverview{}, err
	}
	ov := DataplaneOverview{Type: "DataplaneOverview", Mesh: dp.Meta.Mesh, Name: dp.Meta.Name,
		CreationTime: dp.Meta.CreationTime, ModificationTime: dp.Meta.ModificationTime, Labels: dp.Meta.Labels, Dataplane: spec}
	ins, err := s.mgr.Get(ctx, resource.DataplaneInsightType, dp.Key())
	switch {
	case err == nil:
		if ov.DataplaneInsight, err = json.Marshal(ins.Spec); err != nil {
			return DataplaneOverview{}, err
		}
	case !errors.Is(err, store.ErrNotFound):
		return DataplaneOverview{}, err
	}
	return ov, nil
}

func (s *Server) overviewHandler(w http.ResponseWriter, r *http.Request) {
	key := resource.Key{Mesh: chi.URLParam(r, "mesh"), Name: chi.URLParam(r, "name")}
	dp, err := s.mgr.Get(r.Context(), resource.DataplaneType, key)
	if err != nil {
		s.storeError(w, r, "Could not retrieve a resource", err)
		return
	}
	ov, err := s.overview(r.Context(), dp)
	if err != nil {
		s.storeError(w, r, "Could not retrieve a resource", err)
		return
	}
	writeJSON(w, s, http.StatusOK, ov)
}

// overviewListHandler serves GET /meshes/{mesh}/dataplanes/_overview with
// the list parameters, plus Kuma's tag=key:value filter on inbound tags.
func (s *Server) overviewListHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tags := map[string]string{}
	var errs validate.Errors
	for _, t := range q["tag"] {
		k, v, ok := strings.Cut(t, ":")
		if !ok || k == "" {
			errs.Add("tag", "%q must be written key:value", t)
			continue
		}
		tags[k] = v
	}
	q.Del("tag")
	opts, lerrs := listOptions(q)
	errs.Append(lerrs)
	if len(errs) > 0 {
		writeError(w, newError(http.StatusBadRequest, "Invalid list parameters", "Invalid page size or filter", errs))
		return
	}
	opts.Mesh = chi.URLParam(r, "mesh")
	size, offset := opts.Size, opts.Offset
	if len(tags) > 0 {
		// Tags live inside the spec: filter the whole mesh, then page.
		opts.Size, opts.Offset = 0, 0
	}
	page, err := s.mgr.List(r.Context(), resource.DataplaneType, opts)
	if err != nil {
		s.storeError(w, r, "Could not list resources", err)
		return
	}
	items, total, next := page.Items, page.Total, page.NextOffset
	if len(tags) > 0 {
		var kept []*resource.Resource
		for _, dp := range items {
			if hasInboundTags(dp, tags) {
				kept = append(kept, dp)
			}
		}
		total, next = len(kept), -1
		kept = kept[min(offset, len(kept)):]
		if len(kept) > size {
			kept, next = kept[:size], offset+size
		}
		items = kept
	}
	out := struct {
		Total int                 `json:"total"`
		Items []DataplaneOverview `json:"items"`
		Next  *string             `json:"next"`
	}{Total: total, Items: []DataplaneOverview{}}
	for _, dp := range items {
		ov, err := s.overview(r.Context(), dp)
		if err != nil {
			s.storeError(w, r, "Could not list resources", err)
			return
		}
		out.Items = append(out.Items, ov)
	}
	if next >= 0 {
		u := nextURL(r, next)
		out.Next = &u
	}
	writeJSON(w, s, http.StatusOK, out)
}

func hasInboundTags(dp *resource.Resource, want map[string]string) bool {
	b, err := json.Marshal(dp.Spec)
	if err != nil {
		return false
	}
	var spec struct {
		Networking struct {
			Inbound []struct {
				Tags map[string]string `json:"tags"`
			} `json:"inbound"`
			Gateway *struct {
				Tags map[string]string `json:"tags"`
			} `json:"gateway"`
		} `json:"networking"`
	}
	if json.Unmarshal(b, &spec) != nil {
		return false
	}
	sets := make([]map[string]string, 0, len(spec.Networking.Inbound)+1)
	for _, in := range spec.Networking.Inbound {
		sets = append(sets, in.Tags)
	}
	if spec.Networking.Gateway != nil {
		sets = append(sets, spec.Networking.Gateway.Tags)
	}
	for _, tags := range sets {
		ok := true
		for k, v := range want {
			if tags[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// inspected returns the dataplane's key when it exists and inspection is
// served here; otherwise it has answered the request.
func (s *Server) inspected(w http.ResponseWriter, r *http.Request) (resource.Key, bool) {
	key := resource.Key{Mesh: chi.URLParam(r, "mesh"), Name: chi.URLParam(r, "name")}
	if _, err := s.mgr.Get(r.Context(), resource.DataplaneType, key); err != nil {
		s.storeError(w, r, "Could not inspect a dataplane", err)
		return key, false
	}
	if s.opts.Inspector == nil {
		s.notServed(w, "data-plane inspection", "it runs on zone and standalone control planes")
		return key, false
	}
	return key, true
}

// configHandler serves GET /meshes/{mesh}/dataplanes/{name}/_config: the
// xDS resources the control plane generates for the dataplane (JSON, or
// YAML with ?format=yaml); ?include=ir adds the proxy IR.
func (s *Server) configHandler(w http.ResponseWriter, r *http.Request) {
	key, ok := s.inspected(w, r)
	if !ok {
		return
	}
	xds, irJSON, err := s.opts.Inspector.InspectConfig(r.Context(), key)
	if err != nil {
		s.storeError(w, r, "Could not inspect a dataplane", err)
		return
	}
	body := xds
	if r.URL.Query().Get("include") == "ir" {
		body, err = json.Marshal(map[string]json.RawMessage{"xds": xds, "ir": irJSON})
		if err != nil {
			s.storeError(w, r, "Could not inspect a dataplane", err)
			return
		}
	}
	s.writeInspection(w, r, body)
}

// rulesHandler serves GET /meshes/{mesh}/dataplanes/{name}/_rules: which
// policies apply to the dataplane and why (JSON, or YAML with
// ?format=yaml).
func (s *Server) rulesHandler(w http.ResponseWriter, r *http.Request) {
	key, ok := s.inspected(w, r)
	if !ok {
		return
	}
	body, err := s.opts.Inspector.InspectRules(r.Context(), key)
	if err != nil {
		s.storeError(w, r, "Could not inspect a dataplane", err)
		return
	}
	s.writeInspection(w, r, body)
}

// writeInspection writes a JSON body, as YAML with ?format=yaml.
func (s *Server) writeInspection(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.URL.Query().Get("format") == "yaml" {
		y, err := resource.JSONToYAML(body)
		if err != nil {
			s.storeError(w, r, "Could not inspect a dataplane", err)
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		_, err = w.Write(y)
		logWriteFailure(s.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(body)
	logWriteFailure(s.log, err)
}

// TokenRequest is the body of POST /tokens/dataplane, in Kuma's shape.
type TokenRequest struct {
	// Mesh the token is valid in; required.
	Mesh string `json:"mesh"`
	// Name binds the token to one dataplane; empty allows any of the mesh.
	Name string `json:"name,omitempty"`
	// Tags restrict the dataplane's tag values, e.g. {"kuma.io/service": ["web"]}.
	Tags map[string][]string `json:"tags,omitempty"`
	// Type is accepted for Kuma compatibility and must be empty or "dataplane".
	Type string `json:"type,omitempty"`
	// ValidFor is the token lifetime ("24h", "30d"); empty means the default (10y).
	ValidFor duration.Duration `json:"validFor,omitempty"`
}

// tokenRequest reads the strict JSON body of a token endpoint into req; it
// answers the request itself and returns false when tokens are not served
// here or the body is not acceptable.
func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request, req any) bool {
	if s.opts.Tokens == nil {
		s.notServed(w, "dataplane tokens", "tokens are issued by zone, standalone and global control planes with a persistent identity store")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		badRequest(w, "reading the request body: "+err.Error())
		return false
	}
	if err := decode.Strict(body, req, validate.Root); err != nil {
		invalid(w, asFieldErrors(err))
		return false
	}
	return true
}

// tokenHandler serves POST /tokens/dataplane; the answer is the token as
// plain text, as Kuma's.
func (s *Server) tokenHandler(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	if !s.tokenRequest(w, r, &req) {
		return
	}
	var errs validate.Errors
	if req.Mesh == "" {
		errs.Add("mesh", "must be set")
	} else if _, err := s.mgr.Get(r.Context(), resource.MeshType, resource.Key{Name: req.Mesh}); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			errs.Add("mesh", "mesh %q does not exist", req.Mesh)
		} else {
			s.storeError(w, r, "Could not issue a token", err)
			return
		}
	}
	if req.Name != "" {
		errs.Append(validate.Name("name", req.Name))
	}
	if req.Type != "" && req.Type != "dataplane" {
		errs.Add("type", "must be empty or \"dataplane\"")
	}
	validFor, err := req.ValidFor.Parse()
	if err != nil || validFor < 0 {
		errs.Add("validFor", "must be a positive duration such as \"24h\" or \"30d\"")
	}
	if len(errs) > 0 {
		invalid(w, errs)
		return
	}
	token, err := s.opts.Tokens.IssueDataplaneToken(r.Context(), req.Mesh, req.Name, req.Tags, validFor)
	if err != nil {
		s.storeError(w, r, "Could not issue a token", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, err = io.WriteString(w, token)
	logWriteFailure(s.log, err)
}

func (s *Server) notServed(w http.ResponseWriter, what, why string) {
	writeError(w, newError(http.StatusBadRequest, "Not available on this control plane",
		fmt.Sprintf("%s is not available on a %s control plane: %s", what, s.opts.Index.Mode, why), nil))
}

// DataplaneTokens adapts a dptoken.Manager to TokenIssuer.
func DataplaneTokens(m *dptoken.Manager) TokenIssuer { return tokenIssuer{m} }

type tokenIssuer struct{ m *dptoken.Manager }

func (t tokenIssuer) RevokeDataplaneToken(ctx context.Context, mesh, jti string) error {
	return t.m.Revoke(ctx, mesh, jti)
}

func (t tokenIssuer) IssueDataplaneToken(ctx context.Context, mesh, name string, tags map[string][]string, validFor time.Duration) (string, error) {
	return t.m.Issue(ctx, dptoken.IssueRequest{Mesh: mesh, Name: name, Tags: tags, ValidFor: validFor})
}

// RevokeRequest is the body of POST /tokens/dataplane/revoke: the token
// itself, or its mesh and id (the jti claim).
type RevokeRequest struct {
	// Token is the token to revoke; its mesh and id are read from it.
	Token string `json:"token,omitempty"`
	// Mesh of the token, when revoking by id.
	Mesh string `json:"mesh,omitempty"`
	// ID is the token's id (jti claim), when revoking by id.
	ID string `json:"id,omitempty"`
}

// RevokeResponse says what was revoked.
type RevokeResponse struct {
	// Mesh of the revoked token.
	Mesh string `json:"mesh"`
	// ID of the revoked token.
	ID string `json:"id"`
}

// revokeHandler serves POST /tokens/dataplane/revoke. Bootstraps and new
// xDS streams presenting the token are refused from then on; every
// instance ends the streams open with it (it watches the revocation list).
func (s *Server) revokeHandler(w http.ResponseWriter, r *http.Request) {
	var req RevokeRequest
	if !s.tokenRequest(w, r, &req) {
		return
	}
	var errs validate.Errors
	if req.Token != "" {
		claims, err := dptoken.ParseUnverified(req.Token)
		switch {
		case err != nil:
			errs.Add("token", "is not a dataplane token: %v", err)
		case req.Mesh != "" && req.Mesh != claims.Mesh:
			errs.Add("mesh", "the token is for mesh %q, not %q", claims.Mesh, req.Mesh)
		case req.ID != "" && req.ID != claims.ID:
			errs.Add("id", "the token's id is %q, not %q", claims.ID, req.ID)
		default:
			req.Mesh, req.ID = claims.Mesh, claims.ID
		}
	} else {
		if req.Mesh == "" {
			errs.Add("mesh", "must be set (or send the token)")
		}
		if req.ID == "" {
			errs.Add("id", "must be set (or send the token)")
		}
	}
	if len(errs) == 0 {
		if _, err := s.mgr.Get(r.Context(), resource.MeshType, resource.Key{Name: req.Mesh}); errors.Is(err, store.ErrNotFound) {
			errs.Add("mesh", "mesh %q does not exist", req.Mesh)
		}
	}
	if len(errs) > 0 {
		invalid(w, errs)
		return
	}
	if err := s.opts.Tokens.RevokeDataplaneToken(r.Context(), req.Mesh, req.ID); err != nil {
		s.storeError(w, r, "Could not revoke a token", err)
		return
	}
	writeJSON(w, s, http.StatusOK, RevokeResponse{Mesh: req.Mesh, ID: req.ID})
}
