package apiserver

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// DataplaneCounts counts a mesh's dataplanes by connection status.
type DataplaneCounts struct {
	// Total dataplanes.
	Total int `json:"total"`
	// Online dataplanes (connected to a control plane now).
	Online int `json:"online"`
	// Offline dataplanes.
	Offline int `json:"offline"`
}

// Count is the number of resources of one type.
type Count struct {
	// Total resources.
	Total int `json:"total"`
}

// MeshInsight summarises one mesh, in the shape kumactl inspect meshes reads.
type MeshInsight struct {
	// Type is always "MeshInsight".
	Type string `json:"type"`
	// Name of the mesh.
	Name string `json:"name"`
	// CreationTime of the mesh.
	CreationTime time.Time `json:"creationTime"`
	// ModificationTime of the mesh.
	ModificationTime time.Time `json:"modificationTime"`
	// Dataplanes counts the mesh's dataplanes.
	Dataplanes DataplaneCounts `json:"dataplanes"`
	// Policies counts policies per type.
	Policies map[string]Count `json:"policies"`
	// Resources counts every mesh-scoped type.
	Resources map[string]Count `json:"resources"`
	// MTLS names the enabled backend, if any.
	MTLS *MeshMTLS `json:"mTLS,omitempty"`
}

// MeshMTLS reports a mesh's enabled CA backend.
type MeshMTLS struct {
	// EnabledBackend is the active backend's name.
	EnabledBackend string `json:"enabledBackend"`
}

// GlobalInsight summarises the whole control plane.
type GlobalInsight struct {
	// Type is always "GlobalInsight".
	Type string `json:"type"`
	// CreatedAt is when the summary was computed.
	CreatedAt time.Time `json:"createdAt"`
	// Meshes counts meshes.
	Meshes Count `json:"meshes"`
	// Dataplanes counts dataplanes across meshes.
	Dataplanes DataplaneCounts `json:"dataplanes"`
	// Zones counts zones.
	Zones Count `json:"zones"`
	// Resources counts every type.
	Resources map[string]Count `json:"resources"`
}

// meshInsight computes the insight of one mesh from the store.
func (s *Server) meshInsight(ctx context.Context, m *resource.Resource) (MeshInsight, error) {
	mi := MeshInsight{Type: "MeshInsight", Name: m.Meta.Name, CreationTime: m.Meta.CreationTime, ModificationTime: m.Meta.ModificationTime,
		Policies: map[string]Count{}, Resources: map[string]Count{}}
	for _, d := range s.reg.All() {
		if d.Scope != resource.ScopeMesh {
			continue
		}
		page, err := s.mgr.List(ctx, d.Name, store.ListOptions{Mesh: m.Meta.Name, Size: 1})
		if err != nil {
			return MeshInsight{}, err
		}
		mi.Resources[d.Name] = Count{Total: page.Total}
		if d.IsPolicy() {
			mi.Policies[d.Name] = Count{Total: page.Total}
		}
	}
	counts, err := s.dataplaneCounts(ctx, m.Meta.Name)
	if err != nil {
		return MeshInsight{}, err
	}
	mi.Dataplanes = counts
	if spec, ok := m.Spec.(*mesh.Spec); ok && spec.MTLS != nil && spec.MTLS.EnabledBackend != "" {
		mi.MTLS = &MeshMTLS{EnabledBackend: spec.MTLS.EnabledBackend}
	}
	return mi, nil
}

func (s *Server) dataplaneCounts(ctx context.Context, mesh string) (DataplaneCounts, error) {
	dps, err := s.mgr.List(ctx, resource.DataplaneType, store.ListOptions{Mesh: mesh, Size: 1})
	if err != nil {
		return DataplaneCounts{}, err
	}
	ins, err := s.mgr.List(ctx, resource.DataplaneInsightType, store.ListOptions{Mesh: mesh})
	if err != nil {
		return DataplaneCounts{}, err
	}
	online := 0
	for _, r := range ins.Items {
		if in, ok := r.Spec.(*insight.DataplaneInsight); ok && in.IsOnline() {
			online++
		}
	}
	online = min(online, dps.Total)
	return DataplaneCounts{Total: dps.Total, Online: online, Offline: dps.Total - online}, nil
}

func (s *Server) meshInsightsHandler(w http.ResponseWriter, r *http.Request) {
	opts, errs := listOptions(r.URL.Query())
	if len(errs) > 0 {
		writeError(w, newError(http.StatusBadRequest, "Invalid list parameters", "Invalid page size or filter", errs))
		return
	}
	page, err := s.mgr.List(r.Context(), resource.MeshType, opts)
	if err != nil {
		s.storeError(w, r, "Could not list mesh insights", err)
		return
	}
	out := struct {
		Total int           `json:"total"`
		Items []MeshInsight `json:"items"`
		Next  *string       `json:"next"`
	}{Total: page.Total, Items: []MeshInsight{}}
	for _, m := range page.Items {
		mi, err := s.meshInsight(r.Context(), m)
		if err != nil {
			s.storeError(w, r, "Could not list mesh insights", err)
			return
		}
		out.Items = append(out.Items, mi)
	}
	if page.NextOffset >= 0 {
		u := nextURL(r, page.NextOffset)
		out.Next = &u
	}
	writeJSON(w, s, http.StatusOK, out)
}

func (s *Server) meshInsightHandler(w http.ResponseWriter, r *http.Request) {
	m, err := s.mgr.Get(r.Context(), resource.MeshType, resource.Key{Name: chi.URLParam(r, "name")})
	if err != nil {
		s.storeError(w, r, "Could not retrieve a mesh insight", err)
		return
	}
	mi, err := s.meshInsight(r.Context(), m)
	if err != nil {
		s.storeError(w, r, "Could not retrieve a mesh insight", err)
		return
	}
	writeJSON(w, s, http.StatusOK, mi)
}

func (s *Server) globalInsightHandler(w http.ResponseWriter, r *http.Request) {
	gi := GlobalInsight{Type: "GlobalInsight", CreatedAt: time.Now().UTC(), Resources: map[string]Count{}}
	for _, d := range s.reg.All() {
		page, err := s.mgr.List(r.Context(), d.Name, store.ListOptions{Size: 1})
		if err != nil {
			s.storeError(w, r, "Could not compute the global insight", err)
			return
		}
		gi.Resources[d.Name] = Count{Total: page.Total}
	}
	gi.Meshes = gi.Resources[resource.MeshType]
	gi.Zones = gi.Resources[resource.ZoneType]
	counts, err := s.dataplaneCounts(r.Context(), "")
	if err != nil {
		s.storeError(w, r, "Could not compute the global insight", err)
		return
	}
	gi.Dataplanes = counts
	writeJSON(w, s, http.StatusOK, gi)
}
