package apiserver

import (
	"net/http"

	"github.com/atoll-mesh/atoll/pkg/resource"
)

// op is what a route does; the OpenAPI document is generated from it.
type op uint8

const (
	opIndex op = iota
	opTypes
	opOpenAPI
	opList    // one mesh (or global types)
	opListAll // a mesh-scoped type across meshes
	opGet
	opPut
	opDelete
	opOverviewList
	opOverview
	opConfig
	opRules
	opToken
	opRevoke
	opMeshInsights
	opMeshInsight
	opGlobalInsight
)

// route is one registered endpoint.
type route struct {
	Method  string
	Pattern string
	Op      op
	Desc    *resource.Descriptor
	handler http.HandlerFunc
}

// buildRoutes derives every endpoint from the registry, so a new type is
// served (and documented) without touching this package.
func (s *Server) buildRoutes() []route {
	rs := []route{
		{Method: http.MethodGet, Pattern: "/", Op: opIndex, handler: s.index},
		{Method: http.MethodGet, Pattern: "/_resources", Op: opTypes, handler: s.types},
		{Method: http.MethodGet, Pattern: "/openapi.json", Op: opOpenAPI, handler: s.openAPI},
		{Method: http.MethodPost, Pattern: "/tokens/dataplane", Op: opToken, handler: s.tokenHandler},
		{Method: http.MethodPost, Pattern: "/tokens/dataplane/revoke", Op: opRevoke, handler: s.revokeHandler},
		{Method: http.MethodGet, Pattern: "/mesh-insights", Op: opMeshInsights, handler: s.meshInsightsHandler},
		{Method: http.MethodGet, Pattern: "/mesh-insights/{name}", Op: opMeshInsight, handler: s.meshInsightHandler},
		{Method: http.MethodGet, Pattern: "/global-insight", Op: opGlobalInsight, handler: s.globalInsightHandler},
	}
	if d, ok := s.reg.Get(resource.DataplaneType); ok {
		rs = append(rs,
			route{Method: http.MethodGet, Pattern: "/meshes/{mesh}/dataplanes/_overview", Op: opOverviewList, Desc: d, handler: s.overviewListHandler},
			route{Method: http.MethodGet, Pattern: "/meshes/{mesh}/dataplanes/{name}/_overview", Op: opOverview, Desc: d, handler: s.overviewHandler},
			route{Method: http.MethodGet, Pattern: "/meshes/{mesh}/dataplanes/{name}/_config", Op: opConfig, Desc: d, handler: s.configHandler},
			route{Method: http.MethodGet, Pattern: "/meshes/{mesh}/dataplanes/{name}/_rules", Op: opRules, Desc: d, handler: s.rulesHandler},
		)
	}
	for _, d := range s.reg.All() {
		var list, one string
		switch {
		case d.Name == resource.MeshType:
			list, one = "/meshes", "/meshes/{name}"
		case d.Scope == resource.ScopeGlobal:
			list, one = "/"+d.Path, "/"+d.Path+"/{name}"
		default:
			list, one = "/meshes/{mesh}/"+d.Path, "/meshes/{mesh}/"+d.Path+"/{name}"
			rs = append(rs, route{Method: http.MethodGet, Pattern: "/" + d.Path, Op: opListAll, Desc: d, handler: s.listHandler(d, true)})
		}
		rs = append(rs,
			route{Method: http.MethodGet, Pattern: list, Op: opList, Desc: d, handler: s.listHandler(d, false)},
			route{Method: http.MethodGet, Pattern: one, Op: opGet, Desc: d, handler: s.getHandler(d)},
		)
		if !d.ReadOnly && !s.opts.ReadOnly {
			rs = append(rs,
				route{Method: http.MethodPut, Pattern: one, Op: opPut, Desc: d, handler: s.putHandler(d)},
				route{Method: http.MethodDelete, Pattern: one, Op: opDelete, Desc: d, handler: s.deleteHandler(d)},
			)
		}
	}
	return rs
}
