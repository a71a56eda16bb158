package postgres_test

import (
	"testing"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/storetest"
)

// TestContract runs the store contract suite against real PostgreSQL, each
// subtest on a fresh, migrated database.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, reg *resource.Registry) store.ResourceStore {
		cfg := configFor(pg.NewDatabase(t))
		migrate(t, cfg)
		return openStore(t, cfg, reg)
	})
}
