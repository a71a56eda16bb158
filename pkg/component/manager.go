package component

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// DefaultGracePeriod is the grace period of a Manager whose Options leave it zero.
const DefaultGracePeriod = 15 * time.Second

// Options configure a Manager or a LeaderGroup.
type Options struct {
	// Name identifies the group in logs and errors when it is nested in
	// another one. Empty means "manager" or "leader-group".
	Name string
	// GracePeriod bounds how long Start waits for its components to return
	// once it is stopping (its context ended or a component failed). Zero
	// means DefaultGracePeriod.
	GracePeriod time.Duration
}

func (o Options) withDefaults(name string) Options {
	if o.Name == "" {
		o.Name = name
	}
	if o.GracePeriod <= 0 {
		o.GracePeriod = DefaultGracePeriod
	}
	return o
}

// Manager runs components concurrently. It is itself a Component.
type Manager struct {
	logger     *slog.Logger
	opts       Options
	components []Component
}

var _ Component = (*Manager)(nil)

// NewManager returns a Manager for components. Each component logs through
// its own logger; the manager logs starts, stops and failures through logger.
func NewManager(logger *slog.Logger, opts Options, components ...Component) *Manager {
	return &Manager{
		logger:     logger,
		opts:       opts.withDefaults("manager"),
		components: slices.Clone(components),
	}
}

// Name returns the manager's name from its Options.
func (m *Manager) Name() string { return m.opts.Name }

// Start starts every component and blocks until they have all returned.
//
// When a component fails, Start cancels the others and returns its error,
// wrapped with the component's name. When ctx ends, Start waits for every
// component to return and returns nil, or the errors components reported
// while stopping (context cancellation errors do not count). Either way,
// components still running after the grace period are reported in an error
// and abandoned: Start returns so that the process can exit.
//
// A component that returns nil before ctx ends has finished; the others carry
// on, and Start returns nil once all have finished.
func (m *Manager) Start(ctx context.Context) error {
	return runAll(ctx, m.logger, m.opts.GracePeriod, m.components)
}

type result struct {
	index int
	err   error
}

// runAll is the engine of Manager.Start and of one LeaderGroup term.
func runAll(ctx context.Context, logger *slog.Logger, grace time.Duration, components []Component) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	names := make([]string, len(components))
	running := make(map[int]bool, len(components))
	results := make(chan result, len(components)) // buffered: abandoned components never block
	for i, c := range components {
		names[i] = NameOf(c)
		running[i] = true
		log := logger.With("component", names[i])
		log.Debug("starting component")
		go func() { results <- result{index: i, err: startSafely(runCtx, log, c)} }()
	}

	var failure error
	var stopErrs []error
	stopping := runCtx.Done()
	var deadline <-chan time.Time
	for len(running) > 0 {
		select {
		case r := <-results:
			delete(running, r.index)
			name := names[r.index]
			log := logger.With("component", name)
			switch {
			case r.err == nil && runCtx.Err() == nil:
				log.Info("component finished")
			case r.err == nil:
				log.Debug("component stopped")
			case runCtx.Err() == nil:
				// The first failure while everything ran: stop the rest.
				failure = fmt.Errorf("component %q: %w", name, r.err)
				log.Error("component failed, stopping the others", "error", r.err)
				cancel()
			case errors.Is(r.err, context.Canceled) || errors.Is(r.err, runCtx.Err()):
				log.Debug("component stopped")
			default:
				stopErrs = append(stopErrs, fmt.Errorf("component %q: %w", name, r.err))
				log.Error("component failed while stopping", "error", r.err)
			}
		case <-stopping:
			stopping = nil
			if len(running) > 0 {
				logger.Info("stopping components", "running", len(running), "gracePeriod", grace.String())
			}
			timer := time.NewTimer(grace)
			defer timer.Stop()
			deadline = timer.C
		case <-deadline:
			var stuck []string
			for i := range running {
				stuck = append(stuck, names[i])
			}
			slices.Sort(stuck)
			logger.Error("components did not stop within the grace period", "components", stuck, "gracePeriod", grace.String())
			stopErrs = append(stopErrs, fmt.Errorf("components did not stop within %s: %s", grace, strings.Join(stuck, ", ")))
			return errors.Join(append([]error{failure}, stopErrs...)...)
		}
	}
	return errors.Join(append([]error{failure}, stopErrs...)...)
}
