// Package lease elects one leader among control-plane instances that share
// a PostgreSQL database, with a lease row per election (table atoll_leases,
// created by the store's migrations).
//
// The leader renews its lease every RenewPeriod; a lease that has not been
// renewed for LeaseDuration expires and any candidate takes it, starting a
// new term. Expiry is judged by the database clock, so instances' clocks need
// not agree. A leader that cannot renew (frozen, cut off from the database)
// ends its own term once RenewDeadline has passed since it last sent a
// successful renewal; the others may take over only once LeaseDuration has
// passed, which leaves LeaseDuration-RenewDeadline for the old leader's
// work to stop. A leader that stops campaigning releases the lease at once.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what a Lease needs of a connection pool; *pgxpool.Pool satisfies it.
type DB interface {
	// QueryRow runs a query returning at most one row.
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	// Exec runs a statement.
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Options tune a Lease.
type Options struct {
	// Name identifies the election; instances with the same name compete.
	// Default "atoll-cp-leader".
	Name string
	// Holder identifies this instance; it must be unique among the
	// candidates. Default: host name, process id and a random suffix.
	Holder string
	// LeaseDuration is how long a lease lasts without renewal, and so the
	// longest a dead leader keeps the others waiting. Default 15 s.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps leading without a
	// successful renewal; it must be below LeaseDuration, and the gap is the
	// time its leader-only work has to stop before another instance may
	// start. Default 2/3 of LeaseDuration.
	RenewDeadline time.Duration
	// RenewPeriod is how often the leader renews; it must be below
	// RenewDeadline. Default LeaseDuration/6.
	RenewPeriod time.Duration
	// RetryPeriod is how often a candidate tries a held lease (it also
	// tries as soon as the current lease expires). Default 2 s.
	RetryPeriod time.Duration
	// Logger receives leadership changes; nil discards them.
	Logger *slog.Logger
}

// Lease campaigns for one named lease. It implements component.LeaderElector.
type Lease struct {
	db   DB
	opts Options
	log  *slog.Logger
	// current is the running term's context; nil between terms. A term
	// ends the moment its context is cancelled, before lead returns.
	current atomic.Pointer[context.Context]
	term    atomic.Int64
}

// New returns a Lease on db. It does not touch the database until Campaign.
func New(db DB, opts Options) (*Lease, error) {
	if opts.Name == "" {
		opts.Name = "atoll-cp-leader"
	}
	if opts.Holder == "" {
		opts.Holder = defaultHolder()
	}
	if opts.LeaseDuration == 0 {
		opts.LeaseDuration = 15 * time.Second
	}
	if opts.RenewDeadline == 0 {
		opts.RenewDeadline = opts.LeaseDuration * 2 / 3
	}
	if opts.RenewPeriod == 0 {
		opts.RenewPeriod = opts.LeaseDuration / 6
	}
	if opts.RetryPeriod == 0 {
		opts.RetryPeriod = 2 * time.Second
	}
	if opts.LeaseDuration < 10*time.Millisecond || opts.RenewPeriod <= 0 || opts.RenewPeriod >= opts.RenewDeadline ||
		opts.RenewDeadline >= opts.LeaseDuration || opts.RetryPeriod <= 0 {
		return nil, fmt.Errorf("lease %q: need 0 < RenewPeriod < RenewDeadline < LeaseDuration (≥ 10ms) and RetryPeriod > 0 (got %s, %s, %s, %s)",
			opts.Name, opts.RenewPeriod, opts.RenewDeadline, opts.LeaseDuration, opts.RetryPeriod)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lease{db: db, opts: opts, log: log.With("lease", opts.Name, "holder", opts.Holder)}, nil
}

func defaultHolder() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Holder returns this instance's holder id.
func (l *Lease) Holder() string { return l.opts.Holder }

// IsLeader reports whether this instance is in a term right now.
func (l *Lease) IsLeader() bool {
	c := l.current.Load()
	return c != nil && (*c).Err() == nil
}

// Term returns the number of the current (or last) term this instance led:
// it grows each time the lease changes hands, so it can serve as a fencing
// token. 0 before the first term.
func (l *Lease) Term() int64 { return l.term.Load() }

// Campaign competes for the lease until ctx ends, calling lead for every
// term this instance wins (see component.LeaderElector). Database errors end
// a term or delay a candidacy; they never end Campaign, which returns nil
// when ctx ends.
func (l *Lease) Campaign(ctx context.Context, lead func(term context.Context)) error {
	for {
		sent := time.Now()
		term, err := l.acquire(ctx)
		if ctx.Err() != nil {
			if term > 0 {
				l.release(ctx, term)
			}
			return nil
		}
		if err != nil {
			l.log.Warn("leader lease: cannot reach the database", "error", err)
		}
		if term == 0 {
			if !sleep(ctx, l.untilRetry(ctx)) {
				return nil
			}
			continue
		}
		// The database granted the lease no earlier than sent.
		l.serveTerm(ctx, term, sent.Add(l.opts.RenewDeadline), lead)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// serveTerm runs lead for one term while renewing the lease, ends the term
// when renewal fails or the lease's local deadline passes, and waits for
// lead to return.
func (l *Lease) serveTerm(ctx context.Context, term int64, deadline time.Time, lead func(context.Context)) {
	termCtx, endTerm := context.WithCancel(ctx)
	defer endTerm()
	l.term.Store(term)
	l.current.Store(&termCtx)
	l.log.Info("leader lease acquired", "term", term)

	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		l.renew(termCtx, endTerm, term, deadline)
	}()
	lead(termCtx)
	endTerm()
	<-renewDone
	l.current.Store(nil)
	// Hand the lease over at once when we step down, whatever the reason:
	// release only matches our own, current term.
	l.release(ctx, term)
	l.log.Info("leader term over", "term", term)
}

// renew extends the lease every RenewPeriod until termCtx ends. It ends the
// term when the lease is found taken or expired, or when deadline (the last
// successful renewal's send time plus RenewDeadline) passes.
func (l *Lease) renew(termCtx context.Context, endTerm context.CancelFunc, term int64, deadline time.Time) {
	ticker := time.NewTicker(l.opts.RenewPeriod)
	defer ticker.Stop()
	expiry := time.NewTimer(time.Until(deadline))
	defer expiry.Stop()
	for {
		select {
		case <-termCtx.Done():
			return
		case <-expiry.C:
			l.log.Warn("leader lease: not renewed in time, stepping down", "term", term)
			endTerm()
			return
		case <-ticker.C:
		}
		sent := time.Now()
		rctx, cancel := context.WithDeadline(termCtx, deadline)
		ok, err := l.extend(rctx, term)
		cancel()
		switch {
		case termCtx.Err() != nil:
			return
		case err != nil:
			l.log.Warn("leader lease: renewal failed, will retry until the lease runs out", "term", term, "error", err)
		case !ok:
			l.log.Warn("leader lease: lost to another instance, stepping down", "term", term)
			endTerm()
			return
		default:
			deadline = sent.Add(l.opts.RenewDeadline)
			expiry.Reset(time.Until(deadline))
		}
	}
}

const acquireSQL = `INSERT INTO atoll_leases AS l (name, holder, term, acquired_at, renewed_at, expires_at)
VALUES ($1, $2, 1, now(), now(), now() + $3 * interval '1 millisecond')
ON CONFLICT (name) DO UPDATE
	SET holder = EXCLUDED.holder, term = l.term + 1, acquired_at = now(), renewed_at = now(), expires_at = EXCLUDED.expires_at
	WHERE l.expires_at <= now()
RETURNING term`

// acquire takes the lease when it is free or expired and returns the new
// term, or 0 when someone else holds it.
func (l *Lease) acquire(ctx context.Context) (int64, error) {
	actx, cancel := context.WithTimeout(ctx, l.opts.RenewPeriod)
	defer cancel()
	var term int64
	err := l.db.QueryRow(actx, acquireSQL, l.opts.Name, l.opts.Holder, l.opts.LeaseDuration.Milliseconds()).Scan(&term)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("acquiring lease %q: %w", l.opts.Name, err)
	}
	return term, nil
}

// extend renews our term's lease; false when it is no longer ours.
func (l *Lease) extend(ctx context.Context, term int64) (bool, error) {
	tag, err := l.db.Exec(ctx, `UPDATE atoll_leases
		SET renewed_at = now(), expires_at = now() + $4 * interval '1 millisecond'
		WHERE name = $1 AND holder = $2 AND term = $3 AND expires_at > now()`,
		l.opts.Name, l.opts.Holder, term, l.opts.LeaseDuration.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("renewing lease %q: %w", l.opts.Name, err)
	}
	return tag.RowsAffected() == 1, nil
}

// release expires our term's lease so that another candidate takes it
// without waiting.
func (l *Lease) release(ctx context.Context, term int64) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.RenewPeriod)
	defer cancel()
	_, err := l.db.Exec(rctx, `UPDATE atoll_leases SET expires_at = now()
		WHERE name = $1 AND holder = $2 AND term = $3 AND expires_at > now()`, l.opts.Name, l.opts.Holder, term)
	if err != nil {
		l.log.Warn("leader lease: release failed; it will expire by itself", "term", term, "error", err)
	}
}

// untilRetry returns how long a candidate waits before trying again: the
// retry period, or less when the current lease expires sooner.
func (l *Lease) untilRetry(ctx context.Context) time.Duration {
	qctx, cancel := context.WithTimeout(ctx, l.opts.RetryPeriod)
	defer cancel()
	var left int64
	err := l.db.QueryRow(qctx, `SELECT greatest(0, ceil(extract(epoch FROM expires_at - now()) * 1000))::bigint
		FROM atoll_leases WHERE name = $1`, l.opts.Name).Scan(&left)
	if err != nil {
		return l.opts.RetryPeriod
	}
	return min(l.opts.RetryPeriod, time.Duration(left)*time.Millisecond+10*time.Millisecond)
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Live returns the holders of the unexpired leases whose name starts with
// prefix, by the database clock: with one lease per instance (named prefix
// plus the instance id, held by Campaign for as long as the instance runs),
// the instances alive now. Keys are the names without prefix.
func Live(ctx context.Context, db DB, prefix string) (map[string]bool, error) {
	var names []string
	err := db.QueryRow(ctx, `SELECT coalesce(array_agg(substr(name, length($1) + 1)), '{}')
		FROM atoll_leases WHERE starts_with(name, $1) AND expires_at > now()`, prefix).Scan(&names)
	if err != nil {
		return nil, fmt.Errorf("listing live leases %q*: %w", prefix, err)
	}
	live := make(map[string]bool, len(names))
	for _, n := range names {
		live[n] = true
	}
	return live, nil
}
