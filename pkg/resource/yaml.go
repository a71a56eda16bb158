package resource

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/atoll-mesh/atoll/api/validate"
)

// Document is one YAML document of a multi-document stream.
type Document struct {
	// Index counts documents from 0, skipping empty ones.
	Index int
	// Line is the 1-based line where the document starts.
	Line int
	// Data is the document's YAML text.
	Data []byte
}

// SplitYAML cuts a stream at "---" separator lines and drops documents that
// hold only comments or whitespace.
func SplitYAML(data []byte) []Document {
	var docs []Document
	var cur bytes.Buffer
	start, line := 1, 0
	flush := func() {
		if hasContent(cur.Bytes()) {
			docs = append(docs, Document{Index: len(docs), Line: start, Data: bytes.Clone(cur.Bytes())})
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 64<<20)
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.HasPrefix(text, "---") && strings.TrimSpace(strings.TrimPrefix(text, "---")) == "" {
			flush()
			start = line + 1
			continue
		}
		cur.WriteString(text)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

func hasContent(b []byte) bool {
	for _, l := range bytes.Split(b, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return true
		}
	}
	return false
}

// YAMLToJSON converts one YAML document to JSON. Syntax errors come back as
// validate.Errors naming the line.
func YAMLToJSON(doc []byte) ([]byte, error) {
	j, err := sigsyaml.YAMLToJSON(doc)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
		return nil, validate.Errors{{Message: "malformed YAML: " + msg}}
	}
	return j, nil
}

// DecodeYAML reads one resource from a YAML document, as DecodeJSON does.
func (r *Registry) DecodeYAML(doc []byte) (*Resource, error) {
	j, err := YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	return r.DecodeJSON(j)
}

// JSONToYAML converts JSON to block-style YAML, keeping the key order of the
// JSON (so documents read type, mesh, name, … as they are written).
func JSONToYAML(j []byte) ([]byte, error) {
	var node yaml.Node
	if err := yaml.Unmarshal(j, &node); err != nil {
		return nil, fmt.Errorf("converting JSON to YAML: %w", err)
	}
	plain(&node)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&node); err != nil {
		return nil, fmt.Errorf("converting JSON to YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("converting JSON to YAML: %w", err)
	}
	return b.Bytes(), nil
}

// plain drops the flow and quoting styles JSON input carries, so the encoder
// picks block style and quotes only strings that need it.
func plain(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plain(c)
	}
}

// EncodeYAML writes res in Kuma's universal YAML format.
func (r *Registry) EncodeYAML(res *Resource) ([]byte, error) {
	j, err := r.EncodeJSON(res)
	if err != nil {
		return nil, err
	}
	return JSONToYAML(j)
}
