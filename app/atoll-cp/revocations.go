package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// Secret name prefixes that decide whether a dataplane token is valid:
// the revocation list and the signing keys of a mesh (see pkg/auth/dptoken).
const (
	revocationsPrefix = "dataplane-token-revocations-"
	signingKeyPrefix  = "dataplane-token-signing-key-"
)

// rechecker ends the xDS streams of proxies whose token is no longer valid
// or whose dataplane was deleted.
type rechecker interface {
	Recheck(ctx context.Context, mesh string) int
	DataplaneDeleted(ctx context.Context, key resource.Key) int
}

// tokenWatch rechecks the open xDS streams of a mesh whenever its token
// revocation list or signing keys change, and ends those of deleted
// dataplanes, on every instance: each instance holds its own streams. A token revoked through any instance (or in the
// database directly) cuts the proxy off within moments, not at its next
// reconnection.
type tokenWatch struct {
	st     store.ResourceStore
	server rechecker
	log    *slog.Logger
}

// Start watches the store until ctx ends.
func (w *tokenWatch) Start(ctx context.Context) error {
	return forEachEvent(ctx, w.st.Watch(ctx), func(ev store.Event) {
		switch {
		case ev.Kind == store.Resync:
			w.recheck(ctx, "")
		case ev.Type == resource.SecretType &&
			(strings.HasPrefix(ev.Key.Name, revocationsPrefix) || strings.HasPrefix(ev.Key.Name, signingKeyPrefix)):
			w.recheck(ctx, ev.Key.Mesh)
		case ev.Type == resource.DataplaneType && ev.Kind == store.Deleted:
			w.server.DataplaneDeleted(ctx, ev.Key)
		}
	})
}

func (w *tokenWatch) recheck(ctx context.Context, mesh string) {
	if n := w.server.Recheck(ctx, mesh); n > 0 {
		w.log.Info("ended xDS streams whose dataplane token is no longer valid", "mesh", mesh, "streams", n)
	}
}
