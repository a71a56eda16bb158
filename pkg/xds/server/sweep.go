package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// RewriteInsights makes the next insight flush (within the flush interval)
// write this instance's view of every proxy it serves. An instance whose
// presence lease lapsed (cut off from the database for longer than the
// lease) calls it when it holds the lease again: meanwhile the leader's
// Sweeper may have marked its proxies offline.
func (s *Server) RewriteInsights() { s.insights.rewriteAll() }

// SweepOptions configure a Sweeper.
type SweepOptions struct {
	// Resources reads and writes insights and dataplanes (the manager).
	Resources interface {
		Resources
		List(ctx context.Context, typ string, opts store.ListOptions) (store.ListResult, error)
	}
	// Live returns the ids of the control-plane instances running now.
	Live func(ctx context.Context) (map[string]bool, error)
	// Self is this instance's id; it is always live.
	Self string
	// Grace is how long a subscription must have been connected before its
	// instance's absence counts, so that an instance that just started and
	// has not announced itself yet is not taken for dead. Use at least
	// twice the time an instance needs to announce itself.
	Grace time.Duration
	// DeregistrationGrace is how long a dataplane atoll-dp registered stays
	// after its proxy is gone (the data-plane server's setting).
	DeregistrationGrace time.Duration
	// Interval between sweeps.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives what was swept; nil discards it.
	Log *slog.Logger
}

// Sweeper repairs what a control-plane instance that died leaves behind:
// the subscriptions it served still look connected, so their dataplanes
// look online forever, and the dataplanes atoll-dp registered through it are
// never deregistered. It marks those subscriptions disconnected and deletes
// those dataplanes once DeregistrationGrace has passed. It runs on the
// leader only; instances announce themselves through Live.
type Sweeper struct {
	opts SweepOptions
}

// NewSweeper checks opts.
func NewSweeper(opts SweepOptions) (*Sweeper, error) {
	switch {
	case opts.Resources == nil || opts.Live == nil:
		return nil, errors.New("sweeper: Resources and Live are required")
	case opts.Self == "":
		return nil, errors.New("sweeper: Self is required")
	case opts.Interval <= 0 || opts.Grace <= 0:
		return nil, errors.New("sweeper: Interval and Grace must be positive")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Sweeper{opts: opts}, nil
}

// Start sweeps every Interval until ctx ends.
func (s *Sweeper) Start(ctx context.Context) error {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		offline, deleted, err := s.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.opts.Log.Warn("sweeping the subscriptions of stopped control-plane instances failed; will retry", "error", err)
		case offline > 0 || deleted > 0:
			s.opts.Log.Info("swept what stopped control-plane instances left", "markedOffline", offline, "deregistered", deleted)
		}
	}
}

// Sweep makes one pass over every DataplaneInsight and returns how many
// dataplanes it marked offline and how many it deregistered. Conflicting
// writes are skipped: the next pass sees them again.
func (s *Sweeper) Sweep(ctx context.Context) (offline, deleted int, err error) {
	live, err := s.opts.Live(ctx)
	if err != nil {
		return 0, 0, err
	}
	live[s.opts.Self] = true
	now := s.opts.Now()
	for offset := 0; offset >= 0; {
		page, err := s.opts.Resources.List(ctx, resource.DataplaneInsightType, store.ListOptions{Offset: offset, Size: 500})
		if err != nil {
			return offline, deleted, err
		}
		offset = page.NextOffset
		for _, res := range page.Items {
			di, ok := res.Spec.(*insight.DataplaneInsight)
			if !ok || len(di.Subscriptions) == 0 {
				continue
			}
			last := di.Subscriptions[len(di.Subscriptions)-1]
			if live[last.ControlPlaneInstanceID] {
				continue
			}
			switch {
			case di.IsOnline() && connectTime(last).Before(now.Add(-s.opts.Grace)):
				ok, err := s.markOffline(ctx, res, di, live, now)
				if err != nil {
					return offline, deleted, err
				}
				if ok {
					offline++
				}
			case !di.IsOnline() && last.DisconnectTime != nil && last.DisconnectTime.Before(now.Add(-s.opts.DeregistrationGrace)):
				ok, err := s.deregister(ctx, res.Key())
				if err != nil {
					return offline, deleted, err
				}
				if ok {
					deleted++
				}
			}
		}
	}
	return offline, deleted, nil
}

// markOffline closes the subscriptions of instances not live in an insight;
// false when the insight changed meanwhile.
func (s *Sweeper) markOffline(ctx context.Context, res *resource.Resource, di *insight.DataplaneInsight, live map[string]bool, now time.Time) (bool, error) {
	next := &insight.DataplaneInsight{Subscriptions: slices.Clone(di.Subscriptions), MTLS: di.MTLS}
	for i := range next.Subscriptions {
		if sub := &next.Subscriptions[i]; sub.DisconnectTime == nil && !live[sub.ControlPlaneInstanceID] {
			sub.DisconnectTime = &now
		}
	}
	_, err := s.opts.Resources.Apply(ctx, &resource.Resource{Type: resource.DataplaneInsightType, Meta: resource.Meta{Mesh: res.Meta.Mesh, Name: res.Meta.Name}, Spec: next},
		manager.ApplyOptions{System: true, IfVersion: res.Meta.Version})
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return false, nil // written meanwhile: the proxy is back, or the next pass decides
	}
	if err != nil {
		return false, fmt.Errorf("marking dataplane %s offline: %w", res.Key(), err)
	}
	s.opts.Log.Info("marked a dataplane offline: the control-plane instance it was connected to stopped",
		"dataplane", res.Key().String(), "instance", di.Subscriptions[len(di.Subscriptions)-1].ControlPlaneInstanceID)
	return true, nil
}

// deregister deletes a dataplane atoll-dp registered; false when it was
// not registered by the agent or is gone.
func (s *Sweeper) deregister(ctx context.Context, key resource.Key) (bool, error) {
	dp, err := s.opts.Resources.Get(ctx, resource.DataplaneType, key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if dp.Meta.Labels[RegisteredByLabel] != RegisteredByAgent {
		return false, nil
	}
	err = s.opts.Resources.Delete(ctx, resource.DataplaneType, key, manager.DeleteOptions{IfVersion: dp.Meta.Version})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("deregistering dataplane %s: %w", key, err)
	}
	return true, nil
}
