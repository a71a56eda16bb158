package apiserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/atoll-mesh/atoll/api/validate"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

func keyOf(d *resource.Descriptor, r *http.Request) resource.Key {
	k := resource.Key{Name: chi.URLParam(r, "name")}
	if d.Scope == resource.ScopeMesh {
		k.Mesh = chi.URLParam(r, "mesh")
	}
	return k
}

func (s *Server) getHandler(d *resource.Descriptor) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := s.mgr.Get(r.Context(), d.Name, keyOf(d, r))
		if err != nil {
			s.storeError(w, r, "Could not retrieve a resource", err)
			return
		}
		s.writeResource(w, d, res, http.StatusOK)
	}
}

// zoneOnly answers 400 when d is written only in zones and this is a global
// control plane; it reports whether it did.
func (s *Server) zoneOnly(w http.ResponseWriter, d *resource.Descriptor) bool {
	if !s.opts.Global || d.Sync != resource.SyncZoneToGlobal {
		return false
	}
	writeError(w, newError(http.StatusBadRequest, "Operation not allowed on the global control plane",
		fmt.Sprintf("%s resources are created in zones and synced to the global control plane; apply it to a zone control plane", d.Name), nil))
	return true
}

func (s *Server) putHandler(d *resource.Descriptor) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.zoneOnly(w, d) {
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, newError(http.StatusRequestEntityTooLarge, "Request body too large",
					fmt.Sprintf("the body is larger than the %d MiB limit", MaxBodyBytes>>20), nil))
				return
			}
			badRequest(w, "reading the request body: "+err.Error())
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			badRequest(w, "the request body is empty: send the resource as JSON")
			return
		}
		if isYAML(r.Header.Get("Content-Type")) {
			if body, err = resource.YAMLToJSON(body); err != nil {
				invalid(w, asFieldErrors(err))
				return
			}
		}
		res, err := resource.DecodeJSONAs(d, body)
		if err != nil {
			invalid(w, asFieldErrors(err))
			return
		}
		key := keyOf(d, r)
		var errs validate.Errors
		if res.Meta.Name == "" {
			res.Meta.Name = key.Name
		} else if res.Meta.Name != key.Name {
			errs.Add("name", "name from the URL (%q) has to be the same as in body (%q)", key.Name, res.Meta.Name)
		}
		if d.Scope == resource.ScopeMesh {
			if res.Meta.Mesh == "" {
				res.Meta.Mesh = key.Mesh
			} else if res.Meta.Mesh != key.Mesh {
				errs.Add("mesh", "mesh from the URL (%q) has to be the same as in body (%q)", key.Mesh, res.Meta.Mesh)
			}
		}
		if len(errs) > 0 {
			invalid(w, errs)
			return
		}
		result, err := s.mgr.Apply(r.Context(), res, manager.ApplyOptions{
			IfVersion: ifMatch(r),
			DryRun:    isTrue(r.URL.Query().Get("dryRun")),
		})
		if err != nil {
			s.storeError(w, r, "Could not process a resource", err)
			return
		}
		status := http.StatusOK
		if result.Created {
			status = http.StatusCreated
		}
		s.writeResource(w, d, result.Resource, status)
	}
}

func (s *Server) deleteHandler(d *resource.Descriptor) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.zoneOnly(w, d) {
			return
		}
		err := s.mgr.Delete(r.Context(), d.Name, keyOf(d, r), manager.DeleteOptions{
			IfVersion: ifMatch(r),
			Force:     isTrue(r.URL.Query().Get("force")),
		})
		if err != nil {
			s.storeError(w, r, "Could not delete a resource", err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, err = w.Write([]byte("{}\n"))
		logWriteFailure(s.log, err)
	}
}

func (s *Server) writeResource(w http.ResponseWriter, d *resource.Descriptor, res *resource.Resource, status int) {
	b, err := resource.EncodeJSON(d, res)
	if err != nil {
		s.log.Error("encoding resource", "type", d.Name, "key", res.Key().String(), "error", err)
		writeError(w, newError(http.StatusInternalServerError, "Could not encode a resource", "internal error; see the control plane log", nil))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if res.Meta.Version != "" {
		w.Header().Set("ETag", `"`+res.Meta.Version+`"`)
	}
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	logWriteFailure(s.log, err)
}

// ifMatch returns the version an If-Match header requires, if any.
func ifMatch(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return ""
	}
	v = strings.TrimPrefix(v, "W/")
	return strings.Trim(v, `"`)
}

func isTrue(v string) bool { return v == "true" || v == "1" || v == "yes" }

func isYAML(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/yaml" || mt == "application/x-yaml" || mt == "text/yaml")
}

func asFieldErrors(err error) validate.Errors {
	var fe validate.Errors
	if errors.As(err, &fe) {
		return fe
	}
	return validate.Errors{{Message: err.Error()}}
}
