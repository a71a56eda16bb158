package apiserver

import (
	"encoding/json"
	"net/http"
)

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s, http.StatusOK, s.opts.Index)
}

// TypeInfo is one entry of GET /_resources, in Kuma's shape.
type TypeInfo struct {
	// Name is the type name.
	Name string `json:"name"`
	// Path is the plural REST path segment.
	Path string `json:"path"`
	// Scope is Mesh or Global.
	Scope string `json:"scope"`
	// ShortName is the CLI alias.
	ShortName string `json:"shortName,omitempty"`
	// SingularDisplayName is the human singular.
	SingularDisplayName string `json:"singularDisplayName"`
	// PluralDisplayName is the human plural.
	PluralDisplayName string `json:"pluralDisplayName"`
	// ReadOnly types cannot be written through the API.
	ReadOnly bool `json:"readOnly"`
	// IncludeInFederation says whether multi-zone sync carries the type.
	IncludeInFederation bool `json:"includeInFederation"`
	// KDS names the sync directions.
	KDS string `json:"kds"`
	// Policy describes a targetRef policy's sections.
	Policy *PolicyInfo `json:"policy,omitempty"`
}

// PolicyInfo describes a policy type's sections.
type PolicyInfo struct {
	// IsTargetRef is always true for Atoll policies.
	IsTargetRef bool `json:"isTargetRef"`
	// HasToTargetRef: the policy has to[].
	HasToTargetRef bool `json:"hasToTargetRef"`
	// HasFromTargetRef: the policy has from[].
	HasFromTargetRef bool `json:"hasFromTargetRef"`
	// HasRulesTargetRef: the policy has rules[].
	HasRulesTargetRef bool `json:"hasRulesTargetRef"`
	// IsFromAsRules: from[] is handled as rules.
	IsFromAsRules bool `json:"isFromAsRules"`
}

func (s *Server) types(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Resources []TypeInfo `json:"resources"`
	}{Resources: []TypeInfo{}}
	for _, d := range s.reg.All() {
		ti := TypeInfo{
			Name: d.Name, Path: d.Path, Scope: d.Scope.String(), ShortName: d.ShortName,
			SingularDisplayName: displayName(d.Name), PluralDisplayName: displayName(d.Name) + "s",
			ReadOnly: d.ReadOnly || s.opts.ReadOnly, IncludeInFederation: d.Sync != 0, KDS: d.Sync.String(),
		}
		if d.Name == "Mesh" {
			ti.PluralDisplayName = "Meshes"
		}
		if d.Policy != nil {
			ti.Policy = &PolicyInfo{IsTargetRef: true, HasToTargetRef: d.Policy.HasTo,
				HasFromTargetRef: d.Policy.HasFrom, HasRulesTargetRef: d.Policy.HasRules}
		}
		out.Resources = append(out.Resources, ti)
	}
	writeJSON(w, s, http.StatusOK, out)
}

// displayName splits a type name into words: "MeshTimeout" → "Mesh Timeout".
func displayName(name string) string {
	var b []byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		if i > 0 && c >= 'A' && c <= 'Z' && name[i-1] >= 'a' && name[i-1] <= 'z' {
			b = append(b, ' ')
		}
		b = append(b, c)
	}
	return string(b)
}

func writeJSON(w http.ResponseWriter, s *Server, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encoding response", "error", err)
		writeError(w, newError(http.StatusInternalServerError, "Internal error", "encoding the response failed", nil))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	logWriteFailure(s.log, err)
}
