package migrations_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/store/postgres/migrations"
	"github.com/atoll-mesh/atoll/pkg/store/postgres/pgtest"
)

var pg pgtest.Shared

func TestMain(m *testing.M) { os.Exit(pg.Run(m)) }

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), pg.NewDatabase(t).ConnString())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func TestEmbeddedMigrationsAreNumberedInOrder(t *testing.T) {
	all, err := migrations.All()
	require.NoError(t, err)
	require.NotEmpty(t, all)
	for i, m := range all {
		require.Equal(t, i+1, m.Version)
		require.NotEmpty(t, m.Name)
		require.NotEmpty(t, m.SQL)
	}
	require.Equal(t, len(all), migrations.Latest())
}

func TestUpStatusCheck(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)

	st, err := migrations.GetStatus(ctx, pool)
	require.NoError(t, err)
	require.Zero(t, st.Current)
	require.Equal(t, migrations.Latest(), st.Latest)
	require.Len(t, st.Pending, st.Latest)
	require.False(t, st.UpToDate())
	require.Contains(t, st.String(), "atoll-cp migrate up")

	err = migrations.Check(ctx, pool)
	require.ErrorIs(t, err, migrations.ErrOutdated)
	require.ErrorContains(t, err, "run `atoll-cp migrate up`")

	applied, err := migrations.Up(ctx, pool)
	require.NoError(t, err)
	require.Len(t, applied, migrations.Latest())
	require.NoError(t, migrations.Check(ctx, pool))
	st, err = migrations.GetStatus(ctx, pool)
	require.NoError(t, err)
	require.True(t, st.UpToDate())
	require.Empty(t, st.Pending)

	applied, err = migrations.Up(ctx, pool)
	require.NoError(t, err)
	require.Empty(t, applied, "a second Up has nothing to do")
}

func TestConcurrentUpAppliesEachMigrationOnce(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	var wg sync.WaitGroup
	results := make([][]int, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = migrations.Up(ctx, pool)
		}()
	}
	wg.Wait()
	total := 0
	for i := range results {
		require.NoError(t, errs[i])
		total += len(results[i])
	}
	require.Equal(t, migrations.Latest(), total)
	require.NoError(t, migrations.Check(ctx, pool))
}

func TestNewerSchemaIsRefused(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	_, err := migrations.Up(ctx, pool)
	require.NoError(t, err)
	// A newer Atoll has migrated this database further.
	_, err = pool.Exec(ctx, "INSERT INTO atoll_schema_migrations (version, name) VALUES ($1, 'from_the_future')", migrations.Latest()+1)
	require.NoError(t, err)

	err = migrations.Check(ctx, pool)
	require.ErrorIs(t, err, migrations.ErrTooNew)
	require.ErrorContains(t, err, "newer Atoll")
	_, err = migrations.Up(ctx, pool)
	require.ErrorIs(t, err, migrations.ErrTooNew)
}
