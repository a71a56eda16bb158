package component

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
)

// LeaderElector decides which instance of a control plane is the leader when
// several share one store. Leadership may be gained and lost any number of
// times during one Campaign.
type LeaderElector interface {
	// Campaign competes for leadership until ctx ends. Each time this
	// instance becomes the leader, Campaign calls lead with a term context
	// derived from ctx, which it cancels as soon as leadership is lost (or
	// ctx ends). lead returns once the term is over and everything it
	// started has stopped; only then may Campaign compete again, so two
	// terms of one instance never overlap. lead returns before its term is
	// over only when the caller is giving up, after cancelling ctx; Campaign
	// then steps down and returns.
	//
	// Campaign returns nil when ctx ends, and an error only when it cannot
	// go on (losing leadership, or the store being briefly unreachable, is
	// not such an error: it is the end of a term). It never returns while
	// lead is running.
	Campaign(ctx context.Context, lead func(term context.Context)) error
}

// AlwaysLeader is the LeaderElector of a control plane that runs as a single
// instance, for example with the memory store: it leads from the start of
// Campaign until ctx ends.
type AlwaysLeader struct{}

var _ LeaderElector = AlwaysLeader{}

// Campaign calls lead once with ctx as the term and returns nil when ctx ends.
func (AlwaysLeader) Campaign(ctx context.Context, lead func(term context.Context)) error {
	lead(ctx)
	<-ctx.Done()
	return nil
}

// LeaderGroup runs components only while this instance is the leader: they
// are started, concurrently as by a Manager, each time leadership is gained,
// and their context is cancelled when it is lost. It is itself a Component,
// usually added to a Manager next to the components every instance runs.
//
// A leader-only component that fails stops the group (and so, in a Manager,
// the process): leader-only work is not silently abandoned. The same holds
// when leader-only components do not stop within the grace period after
// leadership is lost, since another instance may already be leading.
type LeaderGroup struct {
	logger     *slog.Logger
	elector    LeaderElector
	opts       Options
	components []Component
	leading    atomic.Bool
}

var _ Component = (*LeaderGroup)(nil)

// NewLeaderGroup returns a LeaderGroup running components under elector's
// leadership. A nil elector means AlwaysLeader.
func NewLeaderGroup(logger *slog.Logger, elector LeaderElector, opts Options, components ...Component) *LeaderGroup {
	if elector == nil {
		elector = AlwaysLeader{}
	}
	return &LeaderGroup{
		logger:     logger,
		elector:    elector,
		opts:       opts.withDefaults("leader-group"),
		components: slices.Clone(components),
	}
}

// Name returns the group's name from its Options.
func (g *LeaderGroup) Name() string { return g.opts.Name }

// IsLeader reports whether the group's components are running under a
// current leadership term.
func (g *LeaderGroup) IsLeader() bool { return g.leading.Load() }

// Start campaigns for leadership until ctx ends, running the components
// during every term. It returns nil when ctx ends and every term is over, the
// error of a failed leader-only component (wrapped with its name), or the
// elector's error.
func (g *LeaderGroup) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var mu sync.Mutex
	var failure error
	err := g.elector.Campaign(ctx, func(term context.Context) {
		g.leading.Store(true)
		g.logger.Info("leadership gained, starting leader-only components", "components", len(g.components))
		err := runAll(term, g.logger, g.opts.GracePeriod, g.components)
		if err == nil {
			// Every component finished (or the term is over): hold the
			// term until it ends, as the elector expects.
			<-term.Done()
		}
		g.leading.Store(false)
		if err != nil {
			mu.Lock()
			failure = err
			mu.Unlock()
			g.logger.Error("leader-only components failed, giving up leadership", "error", err)
			cancel()
			return
		}
		if ctx.Err() == nil {
			g.logger.Info("leadership lost, leader-only components stopped")
		}
	})
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		err = fmt.Errorf("leader election: %w", err)
	}
	return errors.Join(failure, err)
}
