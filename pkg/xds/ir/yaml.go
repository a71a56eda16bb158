package ir

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// DecodeYAML reads a Proxy from YAML, rejecting unknown fields so that a typo
// in a test fixture fails loudly. Durations are written as Go durations
// ("5s", "1h0m0s").
func DecodeYAML(data []byte) (*Proxy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	p := &Proxy{}
	if err := dec.Decode(p); err != nil {
		return nil, fmt.Errorf("decoding proxy IR: %w", err)
	}
	return p, nil
}

// EncodeYAML writes p as YAML, the inverse of DecodeYAML.
func EncodeYAML(p *Proxy) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("encoding proxy IR %s/%s: %w", p.Identity.Mesh, p.Identity.Dataplane, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding proxy IR %s/%s: %w", p.Identity.Mesh, p.Identity.Dataplane, err)
	}
	return buf.Bytes(), nil
}
