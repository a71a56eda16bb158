package translate

import (
	"bytes"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// rendered is the document EncodeJSON and EncodeYAML write.
type rendered struct {
	Listeners []any `json:"listeners,omitempty" yaml:"listeners,omitempty"`
	Routes    []any `json:"routes,omitempty" yaml:"routes,omitempty"`
	Clusters  []any `json:"clusters,omitempty" yaml:"clusters,omitempty"`
	Endpoints []any `json:"endpoints,omitempty" yaml:"endpoints,omitempty"`
	Secrets   []any `json:"secrets,omitempty" yaml:"secrets,omitempty"`
}

// EncodeYAML writes r as one YAML document with a list per type, each
// resource in Envoy's proto field names with typed configs expanded, as
// Envoy's own config dumps read. The output is deterministic. Secrets are
// written as they are: redact them before showing them to a user.
func (r *Resources) EncodeYAML() ([]byte, error) {
	doc, err := r.document()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding resources as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding resources as YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// EncodeJSON is EncodeYAML in JSON.
func (r *Resources) EncodeJSON() ([]byte, error) {
	doc, err := r.document()
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding resources as JSON: %w", err)
	}
	return out, nil
}

func (r *Resources) document() (*rendered, error) {
	doc := &rendered{}
	var err error
	if doc.Listeners, err = plain(r.Listeners); err != nil {
		return nil, err
	}
	if doc.Routes, err = plain(r.Routes); err != nil {
		return nil, err
	}
	if doc.Clusters, err = plain(r.Clusters); err != nil {
		return nil, err
	}
	if doc.Endpoints, err = plain(r.Endpoints); err != nil {
		return nil, err
	}
	if doc.Secrets, err = plain(r.Secrets); err != nil {
		return nil, err
	}
	return doc, nil
}

// plain turns messages into generic values (maps with sorted keys once
// encoded), through protojson so that Anys and well-known types read as
// Envoy documents them.
func plain[T proto.Message](ms []T) ([]any, error) {
	out := make([]any, 0, len(ms))
	opts := protojson.MarshalOptions{UseProtoNames: true}
	for _, m := range ms {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("encoding %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
		}
		out = append(out, v)
	}
	return out, nil
}
