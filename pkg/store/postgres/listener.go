package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/events"
)

// Channel is the NOTIFY channel the schema's trigger announces changes on.
const Channel = "atoll_resource_changes"

// Reconnect backoff of the change listener.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// listener turns NOTIFY payloads into store events, on a connection of its
// own (a pooled connection cannot LISTEN: it is handed to other users).
type listener struct {
	instance  string // this store's id, in the barriers it sends
	cfg       *pgx.ConnConfig
	broker    *events.Broker
	log       *slog.Logger
	health    time.Duration
	connected atomic.Bool
}

func newListener(instance string, cfg *pgx.ConnConfig, broker *events.Broker, log *slog.Logger, health time.Duration) *listener {
	if health <= 0 {
		health = 10 * time.Second
	}
	return &listener{instance: instance, cfg: cfg, broker: broker, log: log, health: health}
}

// connect opens the listening connection and subscribes to the channel.
func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("LISTEN %s: %w", Channel, err)
	}
	l.connected.Store(true)
	return conn, nil
}

// run publishes notifications from conn until ctx ends. When the connection
// fails it reconnects with backoff and, once listening again, broadcasts a
// Resync: changes made while nobody listened are covered by subscribers
// re-reading, and every later change arrives as an event.
func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	for {
		err := l.serve(ctx, conn)
		l.connected.Store(false)
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = conn.Close(closeCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("lost the PostgreSQL change feed; reconnecting", "error", err)
		if conn = l.reconnect(ctx); conn == nil {
			return
		}
		l.log.Info("PostgreSQL change feed is back; asking subscribers to resync")
		l.broker.Resync()
	}
}

// reconnect retries connect with jittered exponential backoff until it
// succeeds (returning the connection) or ctx ends (returning nil).
func (l *listener) reconnect(ctx context.Context) *pgx.Conn {
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		cctx, cancel := context.WithTimeout(ctx, l.cfg.ConnectTimeout+time.Second)
		conn, err := l.connect(cctx)
		cancel()
		if err == nil {
			return conn
		}
		if attempt == 1 || attempt%10 == 0 {
			l.log.Warn("reconnecting the PostgreSQL change feed", "attempt", attempt, "error", err)
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// serve waits for notifications and publishes them. After HealthInterval of
// silence it pings the connection, so a dead peer (no TCP reset) is noticed.
func (l *listener) serve(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, l.health)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			l.publish(n.Payload)
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if wctx.Err() == nil || conn.IsClosed() {
			return err // the connection failed, not just a quiet spell
		}
		pctx, cancel := context.WithTimeout(ctx, l.health)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("change feed health check: %w", err)
		}
	}
}

// notification is the trigger's payload, or a Watch barrier's (kind B,
// with the sending store's instance id and the barrier id).
type notification struct {
	Kind     string `json:"k"`
	Type     string `json:"t"`
	Mesh     string `json:"m"`
	Name     string `json:"n"`
	Version  string `json:"v"`
	Instance string `json:"i"`
	Barrier  string `json:"b"`
}

func (l *listener) publish(payload string) {
	var n notification
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		l.log.Error("unreadable change notification; asking subscribers to resync", "payload", payload, "error", err)
		l.broker.Resync()
		return
	}
	e := store.Event{Type: n.Type, Key: resource.Key{Mesh: n.Mesh, Name: n.Name}, Version: n.Version}
	switch n.Kind {
	case "C":
		e.Kind = store.Created
	case "U":
		e.Kind = store.Updated
	case "D":
		e.Kind = store.Deleted
		e.Version = ""
	case "B":
		if n.Instance != l.instance {
			return // another instance's Watch barrier
		}
		e = store.Event{Kind: barrierKind, Version: n.Barrier}
	default:
		l.log.Error("unknown change notification kind; asking subscribers to resync", "payload", payload)
		l.broker.Resync()
		return
	}
	l.broker.Publish(e)
}
