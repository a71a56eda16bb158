package snapshot

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

func TestVIPCollisionsAreResolved(t *testing.T) {
	st := NewBuilder("a", nil)
	require.NoError(t, st.SetMesh(&resource.Resource{Type: resource.MeshType, Meta: resource.Meta{Name: "a"}, Spec: &mesh.Spec{}}))
	st.base["x"] = (&Service{Name: "x", VIP: "241.0.0.1"}).withVIP("241.0.0.1")
	st.base["y"] = (&Service{Name: "y", VIP: "241.0.0.1"}).withVIP("241.0.0.1")
	st.resolve()
	require.Equal(t, "241.0.0.1", st.services["x"].VIP, "the name that sorts first keeps the VIP")
	require.NotEqual(t, "241.0.0.1", st.services["y"].VIP)
	require.Equal(t, deriveVIP("a", "y", 1), st.services["y"].VIP)
	require.Equal(t, deriveVIP("a", "web", 0), deriveVIP("a", "web", 0), "derived VIPs are stable")
}
