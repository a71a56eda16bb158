package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/atoll-mesh/atoll/api/validate"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// Page sizes of list endpoints, as Kuma's.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

func (s *Server) listHandler(d *resource.Descriptor, allMeshes bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		opts, errs := listOptions(r.URL.Query())
		if len(errs) > 0 {
			writeError(w, newError(http.StatusBadRequest, "Invalid list parameters", "Invalid page size or filter", errs))
			return
		}
		if d.Scope == resource.ScopeMesh && !allMeshes {
			opts.Mesh = chi.URLParam(r, "mesh")
			if _, err := s.mgr.Get(r.Context(), resource.MeshType, resource.Key{Name: opts.Mesh}); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					err = &store.Error{Err: manager.ErrMeshNotFound, Type: resource.MeshType, Key: resource.Key{Name: opts.Mesh}}
				}
				s.storeError(w, r, "Could not list resources", err)
				return
			}
		}
		page, err := s.mgr.List(r.Context(), d.Name, opts)
		if err != nil {
			s.storeError(w, r, "Could not list resources", err)
			return
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"total":%d,"items":[`, page.Total)
		for i, res := range page.Items {
			if i > 0 {
				b.WriteByte(',')
			}
			item, err := resource.EncodeJSON(d, res)
			if err != nil {
				s.storeError(w, r, "Could not list resources", err)
				return
			}
			b.Write(item)
		}
		b.WriteString(`],"next":`)
		if page.NextOffset >= 0 {
			next, _ := json.Marshal(nextURL(r, page.NextOffset))
			b.Write(next)
		} else {
			b.WriteString("null")
		}
		b.WriteString("}\n")
		w.Header().Set("Content-Type", "application/json")
		_, err = w.Write(b.Bytes())
		logWriteFailure(s.log, err)
	}
}

// listOptions reads size, offset and filter[labels.<key>] / filter[name].
func listOptions(q url.Values) (store.ListOptions, validate.Errors) {
	var errs validate.Errors
	opts := store.ListOptions{Size: DefaultPageSize}
	if v := q.Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n < 1:
			errs.Add("size", "invalid page size %q: must be a positive integer", v)
		case n > MaxPageSize:
			errs.Add("size", "invalid page size of %d. Maximum page size is %d", n, MaxPageSize)
		default:
			opts.Size = n
		}
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs.Add("offset", "invalid offset %q: must be a non-negative integer", v)
		} else {
			opts.Offset = n
		}
	}
	for k, vs := range q {
		if !strings.HasPrefix(k, "filter[") {
			continue
		}
		inner, ok := strings.CutSuffix(strings.TrimPrefix(k, "filter["), "]")
		switch {
		case ok && strings.HasPrefix(inner, "labels."):
			if opts.Labels == nil {
				opts.Labels = map[string]string{}
			}
			opts.Labels[strings.TrimPrefix(inner, "labels.")] = vs[0]
		case ok && inner == "name":
			opts.NameContains = vs[0]
		default:
			errs.Add(validate.Path(k), "unknown filter: use filter[labels.<key>]=<value> or filter[name]=<text>")
		}
	}
	return opts, errs
}

// nextURL is the absolute URL of the next page, built like Kuma's from the
// request's host.
func nextURL(r *http.Request, offset int) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	q := r.URL.Query()
	q.Set("offset", strconv.Itoa(offset))
	u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
	return u.String()
}
