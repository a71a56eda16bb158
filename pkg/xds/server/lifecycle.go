package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// Dataplanes atoll-dp registers at bootstrap carry this label, so any
// control-plane instance knows to delete them once their proxy is gone.
const (
	// RegisteredByLabel marks a Dataplane registered by its agent.
	RegisteredByLabel = "atoll.io/registered-by"
	// RegisteredByAgent is the label's value for atoll-dp.
	RegisteredByAgent = "atoll-dp"
)

// lifecycle deletes the Dataplanes atoll-dp registered once their proxy is
// gone: after its last stream ended and it stayed disconnected for
// DeregistrationGrace, or when it never connected within
// RegistrationTimeout of its bootstrap. Dataplanes created otherwise are
// never deleted here. A deletion is skipped when a stream of the proxy is
// open on this instance or, by its insight, on another one.
type lifecycle struct {
	s *Server

	mu       sync.Mutex
	timers   map[resource.Key]*pending
	stopping bool
}

// pending is an armed deletion.
type pending struct{ timer *time.Timer }

func newLifecycle(s *Server) *lifecycle {
	return &lifecycle{s: s, timers: map[resource.Key]*pending{}}
}

// registered: atoll-dp registered key at bootstrap; it must connect within
// the registration timeout.
func (l *lifecycle) registered(key resource.Key) {
	if !l.s.connected(key) {
		l.arm(key, l.s.opts.RegistrationTimeout)
	}
}

// connected: the first stream of key was admitted.
func (l *lifecycle) connected(key resource.Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p, ok := l.timers[key]; ok {
		p.timer.Stop()
		delete(l.timers, key)
	}
}

// disconnected: the last stream of key ended.
func (l *lifecycle) disconnected(key resource.Key) { l.arm(key, l.s.opts.DeregistrationGrace) }

func (l *lifecycle) arm(key resource.Key, after time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping {
		return
	}
	if p, ok := l.timers[key]; ok {
		p.timer.Stop()
	}
	p := &pending{}
	p.timer = time.AfterFunc(after, func() { l.expire(key, p) })
	l.timers[key] = p
}

// stop cancels every pending deletion: a control plane shutting down closes
// every stream, which says nothing about the proxies.
func (l *lifecycle) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopping = true
	for k, p := range l.timers {
		p.timer.Stop()
		delete(l.timers, k)
	}
}

func (l *lifecycle) expire(key resource.Key, p *pending) {
	l.mu.Lock()
	if l.timers[key] != p || l.stopping {
		l.mu.Unlock()
		return
	}
	delete(l.timers, key)
	l.mu.Unlock()
	if err := l.deregister(context.Background(), key); err != nil {
		l.s.log.Warn("deleting a dataplane whose proxy is gone failed", "dataplane", key.String(), "error", err)
	}
}

// deregister deletes key's Dataplane and insight if atoll-dp registered it
// and its proxy is connected nowhere.
func (l *lifecycle) deregister(ctx context.Context, key resource.Key) error {
	if l.s.connected(key) {
		return nil
	}
	res := l.s.opts.Resources
	getCtx, cancel := context.WithTimeout(ctx, l.s.opts.StoreTimeout)
	dp, err := res.Get(getCtx, resource.DataplaneType, key)
	cancel()
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	case dp.Meta.Labels[RegisteredByLabel] != RegisteredByAgent:
		return nil
	}
	elsewhere, err := l.s.insights.onlineElsewhere(ctx, key)
	if err != nil || elsewhere {
		return err
	}
	delCtx, cancel := context.WithTimeout(ctx, l.s.opts.StoreTimeout)
	defer cancel()
	// Conditional: a bootstrap that re-registered it meanwhile wins.
	err = res.Delete(delCtx, resource.DataplaneType, key, manager.DeleteOptions{IfVersion: dp.Meta.Version})
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	l.s.log.Info("deleted a dataplane registered by atoll-dp: its proxy is gone", "dataplane", key.String())
	return l.s.insights.forget(ctx, key)
}
