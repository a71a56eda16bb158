package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Mask replaces secrets in Redacted and Marshal output.
const Mask = "*****"

// Redacted returns a copy of c that is safe to print: secrets are replaced by
// Mask (empty secrets stay empty, so that "not set" remains visible) and nil
// lists become empty ones.
func (c Config) Redacted() Config {
	out := c
	if out.Store.Postgres.Password != "" {
		out.Store.Postgres.Password = Mask
	}
	out.APIServer.CORSAllowedDomains = slices.Clone(c.APIServer.CORSAllowedDomains)
	if out.APIServer.CORSAllowedDomains == nil {
		out.APIServer.CORSAllowedDomains = []string{}
	}
	return out
}

// Marshal renders the configuration as YAML with secrets masked, keys in the
// order of the Config type. The output is a valid configuration file (apart
// from the masked secrets).
func (c Config) Marshal() ([]byte, error) {
	js, err := json.Marshal(c.Redacted())
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	// JSON is YAML: parsing it into a node keeps the key order of the
	// struct, which a map-based YAML encoder would sort away.
	var doc yaml.Node
	if err := yaml.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("converting config to YAML: %w", err)
	}
	blockStyle(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("writing config as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("writing config as YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// String returns the configuration as YAML with secrets masked, so that
// printing or logging a Config never reveals a password.
func (c Config) String() string {
	out, err := c.Marshal()
	if err != nil {
		return fmt.Sprintf("<config: %v>", err)
	}
	return string(out)
}

// blockStyle drops the flow and quoting styles a JSON source gives every
// node, so that the encoder writes plain block YAML and quotes only where
// YAML needs it.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, child := range n.Content {
		blockStyle(child)
	}
}
