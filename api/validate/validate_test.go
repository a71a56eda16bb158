package validate_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/validate"
)

func TestPaths(t *testing.T) {
	p := validate.Root.Field("spec").Field("to").Index(0).Field("tags").Key("kuma.io/service")
	require.Equal(t, `spec.to[0].tags["kuma.io/service"]`, p.String())
	errs := validate.Errors{{Field: "port", Message: "bad"}, {Field: "[1]", Message: "x"}, {Message: "doc"}}
	require.Equal(t, validate.Errors{
		{Field: "networking.port", Message: "bad"},
		{Field: "networking[1]", Message: "x"},
		{Field: "networking", Message: "doc"},
	}, errs.Prefix("networking"))
	require.Equal(t, "port: bad; [1]: x; doc", errs.Error())
	require.NoError(t, validate.Errors(nil).OrNil())
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"a", "default", "backend-1", "my.mesh", "a_b", "0x"} {
		require.Empty(t, validate.Name("name", ok), ok)
	}
	for _, bad := range []string{"", "-a", "a-", "Upper", "has space", "a/b", string(make([]byte, 254))} {
		require.NotEmpty(t, validate.Name("name", bad), bad)
	}
}

func TestLabels(t *testing.T) {
	require.Empty(t, validate.Labels("labels", map[string]string{"kuma.io/service": "backend", "team": "", "a.b/c_d": "x.y-z"}))
	errs := validate.Labels("labels", map[string]string{"Bad/x": "v", "ok": "no spaces please", "/x": "v"})
	fields := map[string]bool{}
	for _, e := range errs {
		fields[e.Field] = true
	}
	require.Equal(t, map[string]bool{`labels["Bad/x"]`: true, `labels["ok"]`: true, `labels["/x"]`: true}, fields)
	require.Equal(t, `labels["/x"]`, errs[0].Field, "problems come in key order")
}

func TestPortAndOneOf(t *testing.T) {
	require.Empty(t, validate.Port("port", 1))
	require.NotEmpty(t, validate.Port("port", 0))
	require.NotEmpty(t, validate.Port("port", 65536))
	require.Empty(t, validate.OneOf("mode", "STRICT", "STRICT", "PERMISSIVE"))
	errs := validate.OneOf("mode", "strict", "STRICT", "PERMISSIVE")
	require.Equal(t, `must be one of STRICT, PERMISSIVE, got "strict"`, errs[0].Message)
}
