package server

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// insights keeps the subscriptions of this instance's streams and writes
// them into DataplaneInsights. Writes are bounded: a stream opening or
// closing is written at once; counter changes (responses, ACKs, NACKs) only
// mark the dataplane dirty, and dirty dataplanes are written at most once
// per flush interval, so an xDS storm never becomes a store-write storm.
// Subscriptions of other control-plane instances in the stored insight are
// kept; the list is trimmed to the latest MaxSubscriptions.
type insights struct {
	s *Server

	mu     sync.Mutex
	byKey  map[resource.Key]*dpInsight
	urgent map[resource.Key]struct{}
	wake   chan struct{}
}

// dpInsight is what this instance knows of one dataplane's insight.
type dpInsight struct {
	write sync.Mutex // serializes the writes of this dataplane
	dirty atomic.Bool

	mu   sync.Mutex
	subs []*liveSub
	cert *certIssued // issued since the last write, if any
}

// certIssued records workload certificates issued since the last write.
type certIssued struct {
	notAfter, at time.Time
	count        uint32
}

// liveSub is one stream's subscription, updated by the stream.
type liveSub struct {
	owner *dpInsight
	mu    sync.Mutex
	sub   insight.Subscription
}

func newInsights(s *Server) *insights {
	return &insights{s: s, byKey: map[resource.Key]*dpInsight{}, urgent: map[resource.Key]struct{}{}, wake: make(chan struct{}, 1)}
}

func (in *insights) entry(key resource.Key) *dpInsight {
	d, ok := in.byKey[key]
	if !ok {
		d = &dpInsight{}
		in.byKey[key] = d
	}
	return d
}

// open adds a subscription and writes it soon.
func (in *insights) open(key resource.Key, sub insight.Subscription) *liveSub {
	in.mu.Lock()
	d := in.entry(key)
	ls := &liveSub{owner: d, sub: sub}
	d.mu.Lock()
	d.subs = append(d.subs, ls)
	d.mu.Unlock()
	in.markUrgentLocked(key)
	in.mu.Unlock()
	return ls
}

// setMTLS records a newly issued workload certificate and writes it soon.
func (in *insights) setMTLS(key resource.Key, notAfter, issued time.Time) {
	in.mu.Lock()
	d := in.entry(key)
	d.mu.Lock()
	c := &certIssued{notAfter: notAfter, at: issued, count: 1}
	if d.cert != nil {
		c.count += d.cert.count
	}
	d.cert = c
	d.mu.Unlock()
	in.markUrgentLocked(key)
	in.mu.Unlock()
}

func (in *insights) markUrgentLocked(key resource.Key) {
	in.urgent[key] = struct{}{}
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// update changes the subscription's counters; they are written with the
// next periodic flush.
func (ls *liveSub) update(fn func(*insight.Subscription)) {
	if ls == nil {
		return
	}
	ls.mu.Lock()
	fn(&ls.sub)
	ls.mu.Unlock()
	ls.owner.dirty.Store(true)
}

// close records the end of the stream.
func (ls *liveSub) close(at time.Time) {
	if ls == nil {
		return
	}
	ls.update(func(s *insight.Subscription) { s.DisconnectTime = &at })
}

// closed writes key soon: one of its streams ended.
func (in *insights) closed(key resource.Key) {
	in.mu.Lock()
	in.markUrgentLocked(key)
	in.mu.Unlock()
}

// run writes urgent dataplanes as they come and dirty ones every flush
// interval until ctx ends, then writes what is left.
func (in *insights) run(ctx context.Context) {
	tick := time.NewTicker(in.s.opts.InsightFlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-in.wake:
			in.flushKeys(ctx, in.takeUrgent())
		case <-tick.C:
			in.flushKeys(ctx, in.takeDirty())
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			in.flushKeys(final, append(in.takeUrgent(), in.takeDirty()...))
			cancel()
			return
		}
	}
}

// rewriteAll marks every tracked insight dirty, so the next flush writes
// this instance's view of all its proxies again.
func (in *insights) rewriteAll() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, d := range in.byKey {
		d.dirty.Store(true)
	}
}

func (in *insights) takeUrgent() []resource.Key {
	in.mu.Lock()
	defer in.mu.Unlock()
	keys := make([]resource.Key, 0, len(in.urgent))
	for k := range in.urgent {
		keys = append(keys, k)
	}
	clear(in.urgent)
	return keys
}

func (in *insights) takeDirty() []resource.Key {
	in.mu.Lock()
	defer in.mu.Unlock()
	var keys []resource.Key
	for k, d := range in.byKey {
		if d.dirty.Load() {
			keys = append(keys, k)
		}
	}
	return keys
}

// insightWriters bounds the insight writes in flight: after a change that
// reaches thousands of proxies, every one of their insights is dirty, and
// one write after the other (a read and a conditional update each) would
// take longer than the flush interval on PostgreSQL.
const insightWriters = 8

func (in *insights) flushKeys(ctx context.Context, keys []resource.Key) {
	var wg sync.WaitGroup
	next := make(chan resource.Key)
	for range min(insightWriters, len(keys)) {
		wg.Go(func() {
			for k := range next {
				if err := in.flush(ctx, k); err != nil && ctx.Err() == nil {
					in.s.log.Warn("writing a dataplane insight failed", "dataplane", k.String(), "error", err)
				}
			}
		})
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	wg.Wait()
}

// flush writes this instance's view of key into its stored insight.
func (in *insights) flush(ctx context.Context, key resource.Key) error {
	in.mu.Lock()
	d, ok := in.byKey[key]
	in.mu.Unlock()
	if !ok {
		return nil
	}
	d.write.Lock()
	defer d.write.Unlock()
	d.dirty.Store(false)
	d.mu.Lock()
	ours := make([]insight.Subscription, 0, len(d.subs))
	var done []*liveSub
	for _, ls := range d.subs {
		ls.mu.Lock()
		ours = append(ours, ls.sub)
		if ls.sub.DisconnectTime != nil {
			done = append(done, ls)
		}
		ls.mu.Unlock()
	}
	cert := d.cert
	d.mu.Unlock()

	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = in.write(ctx, key, ours, cert)
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	result := "ok"
	if err != nil {
		result = "error"
		d.dirty.Store(true)
	}
	in.s.metrics.insightWrites.WithLabelValues(result).Inc()
	if err != nil {
		return err
	}
	// Closed subscriptions are stored now; stop tracking them.
	in.mu.Lock()
	d.mu.Lock()
	d.subs = slices.DeleteFunc(d.subs, func(ls *liveSub) bool { return slices.Contains(done, ls) })
	if d.cert == cert {
		d.cert = nil
	} else if d.cert != nil && cert != nil {
		d.cert.count -= cert.count // issued while writing: count those next time
	}
	if len(d.subs) == 0 && d.cert == nil && !d.dirty.Load() {
		if _, urgent := in.urgent[key]; !urgent {
			delete(in.byKey, key)
		}
	}
	d.mu.Unlock()
	in.mu.Unlock()
	return nil
}

// write merges ours (and newly issued certificates) into the stored insight
// with a conditional update.
func (in *insights) write(ctx context.Context, key resource.Key, ours []insight.Subscription, cert *certIssued) error {
	ctx, cancel := context.WithTimeout(ctx, in.s.opts.StoreTimeout)
	defer cancel()
	next := &insight.DataplaneInsight{}
	ifVersion := ""
	cur, err := in.s.opts.Resources.Get(ctx, resource.DataplaneInsightType, key)
	switch {
	case err == nil:
		if stored, ok := cur.Spec.(*insight.DataplaneInsight); ok {
			next.Subscriptions = slices.Clone(stored.Subscriptions)
			next.MTLS = stored.MTLS
		}
		ifVersion = cur.Meta.Version
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	next.Subscriptions = mergeSubscriptions(next.Subscriptions, ours, in.s.opts.MaxSubscriptions)
	if cs, ok := in.s.opts.Certificates.(CertificateStatus); ok && cert == nil {
		if notAfter, issued, backend, ok := cs.CurrentCertificate(key); ok &&
			(next.MTLS == nil || next.MTLS.CertificateExpirationTime == nil || !next.MTLS.CertificateExpirationTime.Equal(notAfter)) {
			cert = &certIssued{notAfter: notAfter, at: issued, count: 1}
			next.MTLS = withBackend(next.MTLS, backend)
		}
	}
	if cert != nil {
		m := &insight.MTLS{}
		if next.MTLS != nil {
			*m = *next.MTLS
		}
		notAfter, at := cert.notAfter, cert.at
		m.CertificateExpirationTime, m.LastCertificateRegeneration = &notAfter, &at
		m.CertificateRegenerations += cert.count
		next.MTLS = m
	}
	_, err = in.s.opts.Resources.Apply(ctx, &resource.Resource{
		Type: resource.DataplaneInsightType,
		Meta: resource.Meta{Mesh: key.Mesh, Name: key.Name},
		Spec: next,
	}, manager.ApplyOptions{System: true, IfVersion: ifVersion})
	return err
}

// mergeSubscriptions replaces the stored subscriptions that are ours by
// their new state, keeps the others, orders them by connect time and keeps
// the latest max.
func mergeSubscriptions(stored, ours []insight.Subscription, max int) []insight.Subscription {
	out := slices.DeleteFunc(stored, func(s insight.Subscription) bool {
		return slices.ContainsFunc(ours, func(o insight.Subscription) bool { return o.ID == s.ID })
	})
	out = append(out, ours...)
	slices.SortStableFunc(out, func(a, b insight.Subscription) int {
		return connectTime(a).Compare(connectTime(b))
	})
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}

func connectTime(s insight.Subscription) time.Time {
	if s.ConnectTime == nil {
		return time.Time{}
	}
	return *s.ConnectTime
}

// forget stops tracking key and deletes its stored insight (the dataplane
// was deregistered).
func (in *insights) forget(ctx context.Context, key resource.Key) error {
	in.mu.Lock()
	d, ok := in.byKey[key]
	delete(in.byKey, key)
	delete(in.urgent, key)
	in.mu.Unlock()
	if ok {
		d.write.Lock() // wait for a write in flight
		defer d.write.Unlock()
	}
	ctx, cancel := context.WithTimeout(ctx, in.s.opts.StoreTimeout)
	defer cancel()
	err := in.s.opts.Resources.Delete(ctx, resource.DataplaneInsightType, key, manager.DeleteOptions{System: true})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// onlineElsewhere reports whether the stored insight of key shows a
// connected subscription of another control-plane instance.
func (in *insights) onlineElsewhere(ctx context.Context, key resource.Key) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, in.s.opts.StoreTimeout)
	defer cancel()
	cur, err := in.s.opts.Resources.Get(ctx, resource.DataplaneInsightType, key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	stored, _ := cur.Spec.(*insight.DataplaneInsight)
	if stored == nil {
		return false, nil
	}
	for _, s := range stored.Subscriptions {
		if s.DisconnectTime == nil && s.ControlPlaneInstanceID != in.s.opts.InstanceID {
			return true, nil
		}
	}
	return false, nil
}

// withBackend returns a copy of m naming the issuing backend.
func withBackend(m *insight.MTLS, backend string) *insight.MTLS {
	out := &insight.MTLS{}
	if m != nil {
		*out = *m
	}
	out.IssuedBackend = backend
	return out
}
