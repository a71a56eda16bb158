package lease_test

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/component"
	"github.com/atoll-mesh/atoll/pkg/store/postgres/lease"
	"github.com/atoll-mesh/atoll/pkg/store/postgres/migrations"
	"github.com/atoll-mesh/atoll/pkg/store/postgres/pgtest"
)

var _ component.LeaderElector = (*lease.Lease)(nil)

var pg pgtest.Shared

func TestMain(m *testing.M) { os.Exit(pg.Run(m)) }

// newPool returns a pool on a fresh, migrated database.
func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	db := pg.NewDatabase(t)
	pool, err := pgxpool.New(t.Context(), db.ConnString())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = migrations.Up(t.Context(), pool)
	require.NoError(t, err)
	return pool
}

// freezable passes queries through until frozen; then every query hangs
// until its context ends, like a process stopped with SIGSTOP or cut off by
// a partition.
type freezable struct {
	lease.DB
	frozen atomic.Bool
}

func (f *freezable) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if f.frozen.Load() {
		<-ctx.Done()
		return errRow{ctx.Err()}
	}
	return f.DB.QueryRow(ctx, sql, args...)
}

func (f *freezable) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if f.frozen.Load() {
		<-ctx.Done()
		return pgconn.CommandTag{}, ctx.Err()
	}
	return f.DB.Exec(ctx, sql, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// candidate runs Campaign in the background and records its terms.
type candidate struct {
	l       *lease.Lease
	started chan time.Time
	ended   chan time.Time
	stop    context.CancelFunc
	done    chan struct{}
}

func campaign(t *testing.T, db lease.DB, opts lease.Options) *candidate {
	t.Helper()
	l, err := lease.New(db, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	c := &candidate{l: l, started: make(chan time.Time, 8), ended: make(chan time.Time, 8), stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		err := l.Campaign(ctx, func(term context.Context) {
			c.started <- time.Now()
			<-term.Done()
			c.ended <- time.Now()
		})
		require.NoError(t, err)
	}()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

func wait(t *testing.T, ch <-chan time.Time, within time.Duration, what string) time.Time {
	t.Helper()
	select {
	case at := <-ch:
		return at
	case <-time.After(within):
		t.Fatalf("%s: not within %s", what, within)
	}
	return time.Time{}
}

func quiet(t *testing.T, ch <-chan time.Time, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s", what)
	case <-time.After(d):
	}
}

var fast = lease.Options{
	LeaseDuration: 1500 * time.Millisecond, RenewDeadline: time.Second,
	RenewPeriod: 250 * time.Millisecond, RetryPeriod: 200 * time.Millisecond,
}

func withHolder(o lease.Options, h string) lease.Options { o.Holder = h; return o }

func TestOneLeaderAndHandOverOnStepDown(t *testing.T) {
	pool := newPool(t)
	a := campaign(t, pool, withHolder(fast, "a"))
	wait(t, a.started, 5*time.Second, "a leads")
	require.True(t, a.l.IsLeader())
	b := campaign(t, pool, withHolder(fast, "b"))
	// a keeps renewing: b never leads meanwhile.
	quiet(t, b.started, 3*fast.LeaseDuration, "b led while a renewed")

	// a steps down (shutdown): it releases the lease, b takes it at once.
	stoppedAt := time.Now()
	a.stop()
	<-a.done
	wait(t, a.ended, time.Second, "a's term ends")
	took := wait(t, b.started, 2*fast.RetryPeriod+time.Second, "b takes over")
	t.Logf("hand-over after step-down: %s", took.Sub(stoppedAt))
	require.Greater(t, b.l.Term(), a.l.Term())
}

func TestFrozenLeaderLosesLeaseWithinLeaseTime(t *testing.T) {
	pool := newPool(t)
	fa := &freezable{DB: pool}
	a := campaign(t, fa, withHolder(fast, "a"))
	wait(t, a.started, 5*time.Second, "a leads")
	b := campaign(t, pool, withHolder(fast, "b"))
	quiet(t, b.started, fast.LeaseDuration, "b led while a renewed")

	frozenAt := time.Now()
	fa.frozen.Store(true)
	endedA := wait(t, a.ended, fast.RenewDeadline+time.Second, "a steps down by itself")
	startedB := wait(t, b.started, fast.LeaseDuration+time.Second, "b takes over")
	t.Logf("frozen leader stepped down after %s; new leader after %s", endedA.Sub(frozenAt), startedB.Sub(frozenAt))
	require.GreaterOrEqual(t, startedB.Sub(endedA), fast.LeaseDuration-fast.RenewDeadline-fast.RenewPeriod,
		"the old leader's work gets time to stop before the new term")
	require.LessOrEqual(t, startedB.Sub(frozenAt), fast.LeaseDuration+fast.RetryPeriod, "hand-over within the lease time")

	// a thaws and campaigns again as a follower.
	fa.frozen.Store(false)
	quiet(t, a.started, fast.LeaseDuration, "a led again while b renews")
}

func TestLeaderWhoseLeaseIsTakenStepsDown(t *testing.T) {
	pool := newPool(t)
	a := campaign(t, pool, withHolder(fast, "a"))
	wait(t, a.started, 5*time.Second, "a leads")
	// An operator (or a bug) hands the lease to someone else.
	_, err := pool.Exec(t.Context(), `UPDATE atoll_leases SET holder = 'intruder', term = term + 1, expires_at = now() + interval '1 hour'`)
	require.NoError(t, err)
	wait(t, a.ended, 2*fast.RenewPeriod+time.Second, "a steps down at its next renewal")
	require.False(t, a.l.IsLeader())
}

func TestLeaderGroupRunsOnOneInstance(t *testing.T) {
	pool := newPool(t)
	var running, maxRunning atomic.Int32
	work := component.New("work", func(ctx context.Context) error {
		n := running.Add(1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		<-ctx.Done()
		running.Add(-1)
		return nil
	})
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	groups := make([]*component.LeaderGroup, 3)
	for i := range groups {
		l, err := lease.New(pool, withHolder(fast, string(rune('a'+i))))
		require.NoError(t, err)
		groups[i] = component.NewLeaderGroup(slogDiscard(), l, component.Options{Name: "leader"}, work)
		wg.Add(1)
		go func() { defer wg.Done(); _ = groups[i].Start(ctx) }()
	}
	require.Eventually(t, func() bool { return running.Load() == 1 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(2 * fast.LeaseDuration)
	cancel()
	wg.Wait()
	require.Equal(t, int32(1), maxRunning.Load(), "leader-only work ran on one instance at a time")
}

func TestLiveListsUnexpiredLeasesOfAPrefix(t *testing.T) {
	pool := newPool(t)
	presence := func(id string) *candidate {
		o := fast
		o.Name, o.Holder = "instance/"+id, id
		return campaign(t, pool, o)
	}
	a, b := presence("a"), presence("b")
	wait(t, a.started, 5*time.Second, "a present")
	wait(t, b.started, 5*time.Second, "b present")
	leader := campaign(t, pool, withHolder(fast, "a"))
	wait(t, leader.started, 5*time.Second, "a leads")

	live, err := lease.Live(t.Context(), pool, "instance/")
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"a": true, "b": true}, live, "only the leases of the prefix count")

	b.stop()
	<-b.done
	live, err = lease.Live(t.Context(), pool, "instance/")
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"a": true}, live, "an instance that stopped is gone at once (it releases its lease)")
}
