package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/atoll-mesh/atoll/pkg/policy"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/xds/build"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// notIssued stands in for a certificate Inspect does not have.
const notIssued = "(not issued: the proxy has not connected)"

// inspect builds one proxy with build.Build.
func inspect(_ context.Context, snaps Snapshots, ids Identities, plugins *policy.Registry, key resource.Key, flavour ir.Flavour) (*ir.Proxy, error) {
	snap := snaps.Snapshot(key.Mesh)
	if snap == nil {
		return nil, fmt.Errorf("inspecting %s: %w", key.String(), store.NotFound(resource.MeshType, resource.Key{Name: key.Mesh}))
	}
	dp := snap.Dataplane(key.Name)
	if dp == nil {
		return nil, fmt.Errorf("inspecting %s: %w", key.String(), store.NotFound(resource.DataplaneType, key))
	}
	if flavour == "" {
		flavour = build.FlavourOf(dp)
	}
	var id *build.Identity
	if snap.MTLSBackend() != nil && flavour == ir.FlavourEnvoy {
		id = &build.Identity{CertificateChain: notIssued, PrivateKey: notIssued, TrustBundle: notIssued}
		if ids != nil {
			if m, ok := ids.Peek(key); ok {
				id = identityOf(m)
			}
		}
	}
	return build.Build(build.Input{Snapshot: snap, Dataplane: key.Name, Flavour: flavour, Identity: id, Plugins: plugins})
}

// Redacted replaces private keys in what inspection shows.
const Redacted = "(redacted)"

// InspectConfig is Inspect for the REST API (pkg/apiserver's Inspector):
// the dataplane's xDS resources as JSON (translate.Resources.EncodeJSON) and
// its IR as JSON, private keys redacted.
func (r *Reconciler) InspectConfig(ctx context.Context, key resource.Key) (xds []byte, irJSON []byte, err error) {
	p, res, err := r.Inspect(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	shown := *p
	shown.Secrets = slices.Clone(p.Secrets)
	for i := range shown.Secrets {
		if shown.Secrets[i].PrivateKey != "" {
			shown.Secrets[i].PrivateKey = Redacted
		}
	}
	if irJSON, err = json.Marshal(&shown); err != nil {
		return nil, nil, fmt.Errorf("inspecting %s: %w", key.String(), err)
	}
	out := *res
	out.Secrets = make([]*tlsv3.Secret, len(res.Secrets))
	for i, s := range res.Secrets {
		if c := s.GetTlsCertificate(); c != nil && c.GetPrivateKey() != nil {
			s = proto.Clone(s).(*tlsv3.Secret)
			s.GetTlsCertificate().PrivateKey = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: Redacted}}
		}
		out.Secrets[i] = s
	}
	if xds, err = out.EncodeJSON(); err != nil {
		return nil, nil, fmt.Errorf("inspecting %s: %w", key.String(), err)
	}
	return xds, irJSON, nil
}

// Rules is which policies apply to one dataplane and why, per policy type.
type Rules struct {
	// Mesh and Dataplane name the dataplane.
	Mesh      string `json:"mesh"`
	Dataplane string `json:"dataplane"`
	// Items hold one account per policy type whose plugin explains itself
	// (pkg/match's Result: the selected policies, and each destination's
	// and inbound's merged conf with the entries that produced it).
	Items []any `json:"items"`
}

// InspectRules is pkg/apiserver's Inspector.InspectRules: for every policy
// plugin that explains its matches, which policies of the mesh's current
// snapshot select the dataplane and what they merge to, as JSON.
func (r *Reconciler) InspectRules(_ context.Context, key resource.Key) ([]byte, error) {
	snap := r.opts.Snapshots.Snapshot(key.Mesh)
	if snap == nil {
		return nil, fmt.Errorf("inspecting %s: %w", key.String(), store.NotFound(resource.MeshType, resource.Key{Name: key.Mesh}))
	}
	dp := snap.Dataplane(key.Name)
	if dp == nil {
		return nil, fmt.Errorf("inspecting %s: %w", key.String(), store.NotFound(resource.DataplaneType, key))
	}
	out := Rules{Mesh: key.Mesh, Dataplane: key.Name, Items: []any{}}
	if r.opts.Plugins != nil {
		for _, pl := range r.opts.Plugins.Plugins() {
			prep, err := pl.Prepare(snap)
			if err != nil {
				return nil, fmt.Errorf("inspecting %s: %s: %w", key.String(), pl.Type(), err)
			}
			m, err := prep.Match(dp)
			if err != nil {
				return nil, fmt.Errorf("inspecting %s: %s: %w", key.String(), pl.Type(), err)
			}
			if e, ok := m.(policy.Explainer); ok {
				out.Items = append(out.Items, e.Explain())
			}
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("inspecting %s: %w", key.String(), err)
	}
	return b, nil
}
