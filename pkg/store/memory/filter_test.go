package memory

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/resource"
)

func TestLabelFilterMatchesWholePairsOnly(t *testing.T) {
	tests := []struct {
		labels map[string]string
		want   map[string]string
		match  bool
	}{
		{map[string]string{"app": "web"}, map[string]string{"app": "web"}, true},
		{map[string]string{"app": "web", "env": "prod"}, map[string]string{"env": "prod", "app": "web"}, true},
		{map[string]string{"app": "web"}, map[string]string{"app": "web", "env": "prod"}, false},
		{map[string]string{"app": "web"}, map[string]string{"pp": "web"}, false},
		{map[string]string{"app": "web"}, map[string]string{"app": "we"}, false},
		{map[string]string{"app": "web-1"}, map[string]string{"app": "web"}, false},
		{map[string]string{"app": ""}, map[string]string{"app": ""}, true},
		{map[string]string{"other": ""}, map[string]string{"app": ""}, false},
		{nil, map[string]string{"app": ""}, false},
		// A value followed by the next key must not read as one pair.
		{map[string]string{"a": "b", "b": "c"}, map[string]string{"b": "b"}, false},
		{map[string]string{"a": "b", "b": "c"}, map[string]string{"b": "c"}, true},
		// Separator bytes fall back to map lookups.
		{map[string]string{"a\x00": "b\x01"}, map[string]string{"a\x00": "b\x01"}, true},
		{map[string]string{"a": "b"}, map[string]string{"a\x01b": ""}, false},
		{map[string]string{"a\x01b": ""}, map[string]string{"a": "b"}, false},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			res := &resource.Resource{Meta: resource.Meta{Labels: tc.labels}}
			e := entry{labels: packLabels(tc.labels), res: res}
			require.Equal(t, tc.match, newLabelFilter(tc.want).match(&e), "labels %q, filter %q", tc.labels, tc.want)
		})
	}
}
