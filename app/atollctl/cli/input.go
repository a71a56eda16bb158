package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/atoll-mesh/atoll/pkg/resource"
)

// stdinName is how standard input is named in messages.
const stdinName = "<stdin>"

// document is one resource document read from an input, as JSON.
type document struct {
	// index counts documents across every input of the command, from 0.
	index int
	// source is the file name, or <stdin>.
	source string
	// line is the 1-based line where the document starts.
	line int
	// json is the document converted to JSON.
	json []byte
	// err is a problem reading the document (malformed YAML or JSON).
	err error
}

// where names the document in messages: "resource[2] (mesh.yaml:14)".
func (d document) where() string {
	return fmt.Sprintf("resource[%d] (%s:%d)", d.index, d.source, d.line)
}

// readDocuments reads every -f input: files, directories (their *.yaml,
// *.yml and *.json files in name order) and "-" for stdin.
func readDocuments(inputs []string, stdin io.Reader) ([]document, error) {
	var docs []document
	stdinRead := false
	add := func(source string, data []byte) {
		for _, d := range parseDocuments(source, data) {
			d.index = len(docs)
			docs = append(docs, d)
		}
	}
	for _, in := range inputs {
		if in == "-" {
			if stdinRead {
				return nil, usagef("-f - (standard input) may be given only once")
			}
			stdinRead = true
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("reading standard input: %w", err)
			}
			add(stdinName, data)
			continue
		}
		files, err := expandInput(in)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", f, err)
			}
			add(f, data)
		}
	}
	return docs, nil
}

// expandInput returns the files of one -f argument.
func expandInput(in string) ([]string, error) {
	st, err := os.Stat(in)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", in, err)
	}
	if !st.IsDir() {
		return []string{in}, nil
	}
	entries, err := os.ReadDir(in)
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", in, err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			files = append(files, filepath.Join(in, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("directory %s holds no .yaml, .yml or .json file", in)
	}
	slices.Sort(files)
	return files, nil
}

// parseDocuments cuts one input into documents. JSON input may hold several
// objects or an array; YAML input several documents separated by "---". A
// list as "get -o yaml|json" prints it ({total, items, next}) is expanded
// into its items.
func parseDocuments(source string, data []byte) []document {
	isJSONFile := strings.EqualFold(filepath.Ext(source), ".json")
	if isJSONFile || looksLikeJSON(data) {
		docs, err := parseJSONStream(source, data)
		if err == nil || isJSONFile {
			return docs
		}
		// Not JSON after all (YAML flow style): read it as YAML.
	}
	var docs []document
	for _, d := range resource.SplitYAML(data) {
		j, err := resource.YAMLToJSON(d.Data)
		if err != nil {
			docs = append(docs, document{source: source, line: d.Line, err: err})
			continue
		}
		for _, item := range expandList(j) {
			docs = append(docs, document{source: source, line: d.Line, json: item})
		}
	}
	return docs
}

func looksLikeJSON(data []byte) bool {
	t := bytes.TrimSpace(data)
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// parseJSONStream reads concatenated JSON values; arrays are expanded into
// their elements. A malformed value ends the stream with a document holding
// the error (and the error is returned too).
func parseJSONStream(source string, data []byte) ([]document, error) {
	var docs []document
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := skipSeparators(data, int(dec.InputOffset()))
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		line := lineAt(data, start)
		if err != nil {
			err = fmt.Errorf("malformed JSON: %w", err)
			return append(docs, document{source: source, line: line, err: err}), err
		}
		if raw[0] != '[' {
			for _, item := range expandList(raw) {
				docs = append(docs, document{source: source, line: line, json: item})
			}
			continue
		}
		elems, err := splitArray(raw)
		if err != nil {
			err = fmt.Errorf("malformed JSON: %w", err)
			return append(docs, document{source: source, line: line, err: err}), err
		}
		for _, e := range elems {
			docs = append(docs, document{source: source, line: line + e.line - 1, json: e.json})
		}
	}
}

// arrayElem is one element of a JSON array and its line within the array.
type arrayElem struct {
	line int
	json []byte
}

// splitArray returns the elements of a JSON array with their lines.
func splitArray(raw []byte) ([]arrayElem, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var out []arrayElem
	for dec.More() {
		start := skipSeparators(raw, int(dec.InputOffset()))
		var e json.RawMessage
		if err := dec.Decode(&e); err != nil {
			return nil, err
		}
		out = append(out, arrayElem{line: lineAt(raw, start), json: e})
	}
	return out, nil
}

// expandList returns the items of a {total, items, next} list document, or
// the document itself.
func expandList(j []byte) [][]byte {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(j, &probe); err != nil {
		return [][]byte{j}
	}
	if _, typed := probe["type"]; typed {
		return [][]byte{j}
	}
	raw, ok := probe["items"]
	if !ok {
		return [][]byte{j}
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return [][]byte{j}
	}
	out := make([][]byte, len(items))
	for i, it := range items {
		out[i] = it
	}
	return out
}

// skipSeparators moves past whitespace and commas.
func skipSeparators(b []byte, i int) int {
	for i < len(b) && strings.IndexByte(" \t\r\n,", b[i]) >= 0 {
		i++
	}
	return i
}

// lineAt returns the 1-based line of byte offset off.
func lineAt(b []byte, off int) int {
	return 1 + bytes.Count(b[:min(off, len(b))], []byte("\n"))
}
