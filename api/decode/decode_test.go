package decode_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/decode"
	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/validate"
)

type inner struct {
	Port    uint16            `json:"port"`
	Tags    map[string]string `json:"tags,omitempty"`
	Timeout duration.Duration `json:"timeout,omitempty"`
}

type embedded struct {
	Shared string `json:"shared,omitempty"`
}

type doc struct {
	embedded
	Name   string  `json:"name"`
	Count  int8    `json:"count,omitempty"`
	On     bool    `json:"on,omitempty"`
	Ratio  float64 `json:"ratio,omitempty"`
	Items  []inner `json:"items,omitempty"`
	Nested *inner  `json:"nested,omitempty"`
	Data   []byte  `json:"data,omitempty"`
}

func fields(t *testing.T, err error) map[string]string {
	t.Helper()
	var errs validate.Errors
	require.ErrorAs(t, err, &errs)
	out := map[string]string{}
	for _, e := range errs {
		out[e.Field] = e.Message
	}
	return out
}

func TestStrictDecodesCleanDocuments(t *testing.T) {
	var d doc
	err := decode.Strict([]byte(`{"name":"a","shared":"s","count":-3,"on":true,"ratio":0.5,
		"items":[{"port":80,"tags":{"k":"v"},"timeout":"1h"}],"nested":null,"data":"aGk="}`), &d, "spec")
	require.NoError(t, err)
	require.Equal(t, "s", d.Shared, "fields of embedded structs are known")
	require.Equal(t, int8(-3), d.Count)
	require.Equal(t, duration.Duration("1h"), d.Items[0].Timeout, "durations keep their text")
	require.Equal(t, []byte("hi"), d.Data)
}

func TestStrictReportsEveryProblemWithItsPath(t *testing.T) {
	var d doc
	err := decode.Strict([]byte(`{"name":7,"bogus":1,"count":300,"on":"yes","ratio":"x",
		"items":[{"port":-1},{"port":1.5,"tags":{"k":1},"timeout":"3 parsecs","extra":true}],
		"nested":[],"data":5}`), &d, "spec")
	got := fields(t, err)
	require.Equal(t, map[string]string{
		"spec.name":               "must be a string",
		"spec.bogus":              "unknown field",
		"spec.count":              "must be an integer between -128 and 127",
		"spec.on":                 "must be a boolean (true or false)",
		"spec.ratio":              "must be a number",
		"spec.items[0].port":      "must be an integer between 0 and 65535",
		"spec.items[1].port":      "must be a non-negative integer",
		`spec.items[1].tags["k"]`: "must be a string",
		"spec.items[1].timeout":   `must be a duration such as "10s" or "1h30m", got "3 parsecs"`,
		"spec.items[1].extra":     "unknown field",
		"spec.nested":             "must be an object",
		"spec.data":               "must be a base64-encoded string",
	}, got)
	require.Empty(t, d.Name, "nothing is decoded from a document with problems")
}

func TestStrictRejectsMalformedJSON(t *testing.T) {
	var d doc
	got := fields(t, decode.Strict([]byte(`{"name":`), &d, "spec"))
	require.Contains(t, got["spec"], "malformed JSON")
	got = fields(t, decode.Strict([]byte(`{} {}`), &d, ""))
	require.Contains(t, got[""], "unexpected data after the document")
}

func TestStrictNeedsAPointer(t *testing.T) {
	require.Error(t, decode.Strict([]byte(`{}`), doc{}, ""))
}
