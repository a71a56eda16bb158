package apiserver

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"

	"github.com/atoll-mesh/atoll/api/schema"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// OpenAPI returns the OpenAPI 3 document of the API, generated from the
// route table and the Go types of every registered resource.
func (s *Server) OpenAPI() map[string]any {
	paths := map[string]any{}
	for _, rt := range s.routes {
		item, _ := paths[rt.Pattern].(map[string]any)
		if item == nil {
			item = map[string]any{}
			if params := pathParams(rt.Pattern); len(params) > 0 {
				item["parameters"] = params
			}
			paths[rt.Pattern] = item
		}
		item[strings.ToLower(rt.Method)] = operation(rt)
	}
	schemas := map[string]any{
		"Error": schema.For(reflect.TypeFor[Error]()),
		"Index": schema.For(reflect.TypeFor[Index]()),
		"DataplaneOverview": map[string]any{"type": "object", "properties": map[string]any{
			"type": map[string]any{"type": "string"}, "mesh": map[string]any{"type": "string"}, "name": map[string]any{"type": "string"},
			"creationTime": map[string]any{"type": "string", "format": "date-time"}, "modificationTime": map[string]any{"type": "string", "format": "date-time"},
			"labels":    map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
			"dataplane": map[string]any{"type": "object", "description": "the Dataplane spec"}, "dataplaneInsight": map[string]any{"type": "object", "description": "the DataplaneInsight spec, when the dataplane ever connected"}}},
		"ResourceTypes": map[string]any{"type": "object", "properties": map[string]any{
			"resources": map[string]any{"type": "array", "items": schema.For(reflect.TypeFor[TypeInfo]())}}},
	}
	for _, d := range s.reg.All() {
		schemas[d.Name] = resourceSchema(d)
		schemas[d.Name+"List"] = map[string]any{
			"type": "object",
			"properties": map[string]any{
				"total": map[string]any{"type": "integer", "description": "matches across all pages"},
				"items": map[string]any{"type": "array", "items": ref(d.Name)},
				"next":  map[string]any{"type": "string", "nullable": true, "description": "absolute URL of the next page; null on the last page"},
			},
		}
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "Atoll API",
			"version":     s.opts.Index.Version,
			"description": "Resources of the Atoll control plane, in Kuma's universal format (API level " + s.opts.Index.BasedOnKuma + ").",
		},
		"paths":      paths,
		"components": map[string]any{"schemas": schemas},
	}
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	s.openAPIOnce.Do(func() { s.openAPIDoc, s.openAPIErr = json.Marshal(s.OpenAPI()) })
	if s.openAPIErr != nil {
		s.storeError(w, r, "Could not build the OpenAPI document", s.openAPIErr)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(s.openAPIDoc)
	logWriteFailure(s.log, err)
}

func ref(name string) map[string]any {
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

func resourceSchema(d *resource.Descriptor) map[string]any {
	props := map[string]any{
		"type":             map[string]any{"type": "string", "enum": []string{d.Name}},
		"name":             map[string]any{"type": "string", "description": "defaults to the name in the URL"},
		"labels":           map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
		"creationTime":     map[string]any{"type": "string", "format": "date-time", "readOnly": true},
		"modificationTime": map[string]any{"type": "string", "format": "date-time", "readOnly": true},
		"kri":              map[string]any{"type": "string", "description": "accepted and ignored (sent by kumactl)"},
	}
	if d.Scope == resource.ScopeMesh {
		props["mesh"] = map[string]any{"type": "string", "description": "defaults to the mesh in the URL"}
	}
	spec := schema.For(reflect.TypeOf(d.NewSpec()))
	out := map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	if d.InlineSpec {
		for k, v := range spec["properties"].(map[string]any) {
			props[k] = v
		}
		if req, ok := spec["required"]; ok {
			out["required"] = req
		}
	} else {
		props["spec"] = spec
		if d.NewStatus != nil {
			st := schema.For(reflect.TypeOf(d.NewStatus()))
			st["readOnly"] = true
			props["status"] = st
		}
	}
	return out
}

func pathParams(pattern string) []any {
	var out []any
	for _, seg := range strings.Split(pattern, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			name := strings.Trim(seg, "{}")
			out = append(out, map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
	}
	return out
}

func errorResponses(codes ...string) map[string]any {
	texts := map[string]string{
		"400": "invalid input; invalid_parameters names each field",
		"404": "not found",
		"405": "read-only",
		"409": "version conflict, or the mesh still has online dataplanes",
		"413": "body larger than 4 MiB",
		"503": "store unavailable; nothing was changed",
	}
	out := map[string]any{}
	for _, c := range codes {
		out[c] = map[string]any{"description": texts[c], "content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}
	}
	return out
}

func jsonResponse(desc string, sch map[string]any) map[string]any {
	return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": sch}}}
}

func operation(rt route) map[string]any {
	switch rt.Op {
	case opIndex:
		return map[string]any{"summary": "Control-plane identity and version", "responses": map[string]any{"200": jsonResponse("index", ref("Index"))}}
	case opTypes:
		return map[string]any{"summary": "Resource types served", "responses": map[string]any{"200": jsonResponse("types", ref("ResourceTypes"))}}
	case opOpenAPI:
		return map[string]any{"summary": "This document", "responses": map[string]any{"200": map[string]any{"description": "OpenAPI 3 document"}}}
	case opToken:
		resp := errorResponses("400", "503")
		resp["200"] = map[string]any{"description": "the token", "content": map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}}
		return map[string]any{"summary": "Issue a dataplane token", "tags": []string{"Tokens"},
			"requestBody": map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": schema.For(reflect.TypeFor[TokenRequest]())}}},
			"responses":   resp}
	case opMeshInsights:
		resp := errorResponses("400", "503")
		resp["200"] = jsonResponse("one page of mesh summaries", map[string]any{"type": "object", "properties": map[string]any{
			"total": map[string]any{"type": "integer"}, "items": map[string]any{"type": "array", "items": schema.For(reflect.TypeFor[MeshInsight]())},
			"next": map[string]any{"type": "string", "nullable": true}}})
		return map[string]any{"summary": "Summaries of every mesh: dataplanes online/offline, policies and resources per type", "tags": []string{"Insights"},
			"parameters": []any{
				map[string]any{"name": "size", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": MaxPageSize}},
				map[string]any{"name": "offset", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 0}},
			},
			"responses": resp}
	case opMeshInsight:
		resp := errorResponses("404", "503")
		resp["200"] = jsonResponse("the mesh summary", schema.For(reflect.TypeFor[MeshInsight]()))
		return map[string]any{"summary": "Summary of one mesh", "tags": []string{"Insights"}, "responses": resp}
	case opGlobalInsight:
		resp := errorResponses("503")
		resp["200"] = jsonResponse("the control plane summary", schema.For(reflect.TypeFor[GlobalInsight]()))
		return map[string]any{"summary": "Summary of the whole control plane", "tags": []string{"Insights"}, "responses": resp}
	case opRevoke:
		resp := errorResponses("400", "503")
		resp["200"] = jsonResponse("what was revoked", schema.For(reflect.TypeFor[RevokeResponse]()))
		return map[string]any{"summary": "Revoke a dataplane token", "tags": []string{"Tokens"},
			"description": "Bootstraps and new xDS streams presenting the token are refused from then on, and the streams open with it are ended.",
			"requestBody": map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": schema.For(reflect.TypeFor[RevokeRequest]())}}},
			"responses":   resp}
	case opOverviewList:
		resp := errorResponses("400", "404", "503")
		resp["200"] = jsonResponse("one page of dataplanes with their insights", map[string]any{"type": "object", "properties": map[string]any{
			"total": map[string]any{"type": "integer"}, "items": map[string]any{"type": "array", "items": ref("DataplaneOverview")},
			"next": map[string]any{"type": "string", "nullable": true}}})
		return map[string]any{"summary": "List dataplanes with what the control plane observed about them", "tags": []string{"Dataplane"},
			"parameters": []any{
				map[string]any{"name": "size", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": MaxPageSize}},
				map[string]any{"name": "offset", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 0}},
				map[string]any{"name": "tag", "in": "query", "description": "inbound tag key:value; repeatable", "schema": map[string]any{"type": "array", "items": map[string]any{"type": "string"}}},
			},
			"responses": resp}
	case opOverview:
		resp := errorResponses("404", "503")
		resp["200"] = jsonResponse("the dataplane with its insight", ref("DataplaneOverview"))
		return map[string]any{"summary": "A dataplane with what the control plane observed about it", "tags": []string{"Dataplane"}, "responses": resp}
	case opRules:
		resp := errorResponses("400", "404", "503")
		resp["200"] = map[string]any{"description": "per policy type: the policies that select the dataplane (least specific first) and, for each destination and inbound, the merged configuration with the policy entries that produced it", "content": map[string]any{
			"application/json": map[string]any{"schema": map[string]any{"type": "object"}},
			"application/yaml": map[string]any{"schema": map[string]any{"type": "object"}}}}
		return map[string]any{"summary": "Which policies apply to a dataplane, and why", "tags": []string{"Dataplane"},
			"parameters": []any{
				map[string]any{"name": "format", "in": "query", "schema": map[string]any{"type": "string", "enum": []string{"json", "yaml"}}},
			},
			"responses": resp}
	case opConfig:
		resp := errorResponses("400", "404", "503")
		resp["200"] = map[string]any{"description": "the xDS resources (secrets redacted)", "content": map[string]any{
			"application/json": map[string]any{"schema": map[string]any{"type": "object"}},
			"application/yaml": map[string]any{"schema": map[string]any{"type": "object"}}}}
		return map[string]any{"summary": "The configuration the control plane generates for a dataplane", "tags": []string{"Dataplane"},
			"parameters": []any{
				map[string]any{"name": "format", "in": "query", "schema": map[string]any{"type": "string", "enum": []string{"json", "yaml"}}},
				map[string]any{"name": "include", "in": "query", "description": "ir adds the proxy's intermediate representation", "schema": map[string]any{"type": "string", "enum": []string{"ir"}}},
			},
			"responses": resp}
	}
	d := rt.Desc
	op := map[string]any{"tags": []string{d.Name}}
	ifMatch := map[string]any{"name": "If-Match", "in": "header", "required": false,
		"description": "version (ETag) the stored resource must have; 409 otherwise",
		"schema":      map[string]any{"type": "string"}}
	switch rt.Op {
	case opList, opListAll:
		where := "in the mesh"
		if rt.Op == opListAll {
			where = "across all meshes"
		} else if d.Scope == resource.ScopeGlobal {
			where = ""
		}
		op["summary"] = strings.TrimSpace("List " + d.Path + " " + where)
		op["parameters"] = []any{
			map[string]any{"name": "size", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": MaxPageSize, "default": DefaultPageSize}},
			map[string]any{"name": "offset", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 0, "default": 0}},
			map[string]any{"name": "filter", "in": "query", "style": "deepObject", "explode": true,
				"description": "filter[labels.<key>]=<value> keeps resources with that label; filter[name]=<text> keeps names containing text",
				"schema":      map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}},
		}
		resp := errorResponses("400", "404", "503")
		resp["200"] = jsonResponse("one page", ref(d.Name+"List"))
		op["responses"] = resp
	case opGet:
		op["summary"] = "Get a " + d.Name
		resp := errorResponses("404", "503")
		resp["200"] = withETag(jsonResponse("the resource", ref(d.Name)))
		op["responses"] = resp
	case opPut:
		op["summary"] = "Create or update a " + d.Name
		op["parameters"] = []any{ifMatch, map[string]any{"name": "dryRun", "in": "query", "description": "validate without storing",
			"schema": map[string]any{"type": "boolean"}}}
		op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
			"application/json": map[string]any{"schema": ref(d.Name)},
			"application/yaml": map[string]any{"schema": ref(d.Name)},
		}}
		resp := errorResponses("400", "404", "409", "413", "503")
		resp["200"] = withETag(jsonResponse("updated", ref(d.Name)))
		resp["201"] = withETag(jsonResponse("created", ref(d.Name)))
		op["responses"] = resp
	case opDelete:
		op["summary"] = "Delete a " + d.Name
		params := []any{ifMatch}
		if d.Name == resource.MeshType {
			op["description"] = "Deletes the mesh and every resource in it. Refused (409) while dataplanes are online unless force=true."
			params = append(params, map[string]any{"name": "force", "in": "query", "schema": map[string]any{"type": "boolean"}})
		}
		op["parameters"] = params
		resp := errorResponses("404", "409", "503")
		resp["200"] = map[string]any{"description": "deleted"}
		op["responses"] = resp
	}
	return op
}

func withETag(resp map[string]any) map[string]any {
	resp["headers"] = map[string]any{"ETag": map[string]any{"description": "the resource version, for If-Match", "schema": map[string]any{"type": "string"}}}
	return resp
}
