// Package postgres is the PostgreSQL ResourceStore, for the global control
// plane and for zones that run more than one instance.
//
// Resources live in one table (atoll_resources) keyed by type, mesh and
// name, with spec, status and labels as jsonb. Every write is one statement
// or one transaction, so a failure never leaves half a change behind.
// Updates and conditional deletes compare the version column (optimistic
// concurrency); versions come from one sequence, so a resource deleted and
// created again never reuses a version. A trigger announces every committed
// change with NOTIFY; each Store LISTENs on a dedicated connection and fans
// the changes out to its Watch subscribers, so writes made through any
// instance on the same database reach every instance the same way. When the
// listening connection is lost, the store reconnects with backoff and sends
// store.Resync to every subscriber.
//
// The schema comes from the migrations package; New refuses a database whose
// schema is not the one this binary expects.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/events"
	"github.com/atoll-mesh/atoll/pkg/store/postgres/migrations"
)

var _ store.ResourceStore = (*Store)(nil)

// Options are a Store's dependencies and tuning.
type Options struct {
	// Registry knows every type the store may hold; required.
	Registry *resource.Registry
	// Logger receives connection-state changes; nil discards them.
	Logger *slog.Logger
	// OperationTimeout bounds each operation; 0 means 10 s.
	OperationTimeout time.Duration
	// EventQueueSize is each Watch subscriber's queue; 0 means the events
	// package default.
	EventQueueSize int
	// HealthInterval is how long the change listener waits in silence
	// before it pings its connection; 0 means 10 s.
	HealthInterval time.Duration
}

// Store is a store.ResourceStore on PostgreSQL. It is safe for concurrent
// use. Close it to stop its change listener (and its pool, with Open).
type Store struct {
	pool     *pgxpool.Pool
	ownsPool bool
	reg      *resource.Registry
	log      *slog.Logger
	timeout  time.Duration
	broker   *events.Broker
	listener *listener
	instance string       // identifies this store's Watch barriers
	barriers atomic.Int64 // numbers them

	closeOnce sync.Once
	life      context.Context // ends when the store is closed
	stop      context.CancelFunc
	done      chan struct{}
}

// Open connects to the database cfg names and returns a store that owns the
// connection pool. See New.
func Open(ctx context.Context, cfg Config, opts Options) (*Store, error) {
	pool, err := Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if opts.OperationTimeout == 0 {
		opts.OperationTimeout = cfg.withDefaults().OperationTimeout
	}
	s, err := New(ctx, pool, opts)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.ownsPool = true
	return s, nil
}

// New returns a store on pool, which the caller keeps and closes after the
// store. It checks the schema (an un-migrated or newer database is refused
// with a message naming `atoll-cp migrate up`) and starts listening for
// changes before it returns, so a Watch that starts after New sees every
// later write.
func New(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Store, error) {
	if opts.Registry == nil {
		return nil, errors.New("postgres store: a resource registry is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		pool:     pool,
		reg:      opts.Registry,
		log:      log,
		timeout:  opts.OperationTimeout,
		broker:   events.NewBroker(opts.EventQueueSize),
		done:     make(chan struct{}),
		instance: newInstanceID(),
	}
	if s.timeout <= 0 {
		s.timeout = 10 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := migrations.Check(cctx, pool); err != nil {
		if ctx.Err() == nil && isUnavailable(err) {
			return nil, fmt.Errorf("postgres store: %w: %w", store.ErrUnavailable, err)
		}
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	s.listener = newListener(s.instance, pool.Config().ConnConfig, s.broker, log, opts.HealthInterval)
	conn, err := s.listener.connect(cctx)
	if err != nil {
		return nil, fmt.Errorf("postgres store: listening for changes: %w: %w", store.ErrUnavailable, err)
	}
	s.life, s.stop = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(s.done)
		s.listener.run(s.life, conn)
	}()
	return s, nil
}

// Close stops the change listener, closes every Watch channel and, when
// the store was made by Open, closes the pool.
func (s *Store) Close() {
	s.closeOnce.Do(func() {
		s.stop()
		<-s.done
		if s.ownsPool {
			s.pool.Close()
		}
	})
}

// Pool returns the connection pool, for the leader lease and migrations.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ready returns nil when the database answers and the change listener is
// connected; otherwise an error wrapping store.ErrUnavailable. It suits a
// readiness probe.
func (s *Store) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres store: %w: %w", store.ErrUnavailable, err)
	}
	if !s.listener.connected.Load() {
		return fmt.Errorf("postgres store: %w: change listener is reconnecting", store.ErrUnavailable)
	}
	return nil
}

// do runs fn with the operation timeout. fn is retried once when it failed
// before anything reached the server (typically a pooled connection the
// server closed during a restart), so a recovered server is used at once.
func (s *Store) do(ctx context.Context, op, typ string, key resource.Key, fn func(ctx context.Context) error) error {
	octx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := fn(octx)
	if err != nil && pgconn.SafeToRetry(err) && octx.Err() == nil {
		err = fn(octx)
	}
	return mapError(ctx, op, typ, key, err)
}

func (s *Store) descriptor(typ string) (*resource.Descriptor, error) {
	d, ok := s.reg.Get(typ)
	if !ok {
		return nil, fmt.Errorf("postgres store: unknown resource type %q", typ)
	}
	return d, nil
}

// prepare checks res and encodes it for writing.
func (s *Store) prepare(res *resource.Resource) (*resource.Descriptor, *row, error) {
	if res == nil {
		return nil, nil, errors.New("postgres store: nil resource")
	}
	d, err := s.descriptor(res.Type)
	if err != nil {
		return nil, nil, err
	}
	r, err := encode(d, res)
	if err != nil {
		return nil, nil, err
	}
	return d, r, nil
}

const insertSQL = `INSERT INTO atoll_resources
	(type, mesh, name, version, spec, status, labels, creation_time, modification_time)
VALUES ($1, $2, $3, nextval('atoll_resource_version'), $4, $5, $6, now(), now())
ON CONFLICT (type, mesh, name) DO NOTHING
RETURNING version, creation_time, modification_time`

// Create stores a new resource; ErrAlreadyExists when the key is taken.
func (s *Store) Create(ctx context.Context, res *resource.Resource) (*resource.Resource, error) {
	d, row, err := s.prepare(res)
	if err != nil {
		return nil, err
	}
	key := res.Key()
	err = s.do(ctx, "create", d.Name, key, func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, insertSQL, d.Name, key.Mesh, key.Name, row.spec, row.status, row.labels).
			Scan(&row.version, &row.created, &row.modified)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.AlreadyExists(d.Name, key)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return row.decode(d, key)
}

// updateSQL updates only the expected version and, in the same statement,
// tells whether the key exists at all, so a miss is told apart as conflict
// or not-found in one round trip.
const updateSQL = `WITH upd AS (
	UPDATE atoll_resources
	SET version = nextval('atoll_resource_version'), spec = $5, status = $6, labels = $7, modification_time = now()
	WHERE type = $1 AND mesh = $2 AND name = $3 AND version = $4
	RETURNING version, creation_time, modification_time
)
SELECT upd.version, upd.creation_time, upd.modification_time,
	EXISTS (SELECT 1 FROM atoll_resources WHERE type = $1 AND mesh = $2 AND name = $3)
FROM (VALUES (1)) AS one LEFT JOIN upd ON true`

// Update replaces a resource whose stored version is res.Meta.Version;
// ErrConflict when another write came first, ErrNotFound when it is gone.
func (s *Store) Update(ctx context.Context, res *resource.Resource) (*resource.Resource, error) {
	d, row, err := s.prepare(res)
	if err != nil {
		return nil, err
	}
	key := res.Key()
	expected := parseVersion(res.Meta.Version)
	err = s.do(ctx, "update", d.Name, key, func(ctx context.Context) error {
		var (
			version           *int64
			created, modified *time.Time
			exists            bool
		)
		err := s.pool.QueryRow(ctx, updateSQL, d.Name, key.Mesh, key.Name, expected, row.spec, row.status, row.labels).
			Scan(&version, &created, &modified, &exists)
		switch {
		case err != nil:
			return err
		case version != nil:
			row.version, row.created, row.modified = *version, *created, *modified
			return nil
		case exists:
			return store.Conflict(d.Name, key)
		}
		return store.NotFound(d.Name, key)
	})
	if err != nil {
		return nil, err
	}
	return row.decode(d, key)
}

// deleteSQL deletes a resource, with $4 (when not null) as the expected
// version, and tells whether the key existed.
const deleteSQL = `WITH del AS (
	DELETE FROM atoll_resources
	WHERE type = $1 AND mesh = $2 AND name = $3 AND ($4::bigint IS NULL OR version = $4)
	RETURNING 1
)
SELECT (SELECT count(*) FROM del),
	EXISTS (SELECT 1 FROM atoll_resources WHERE type = $1 AND mesh = $2 AND name = $3)`

// Delete removes a resource; a Mesh goes with everything in it, in one
// transaction.
func (s *Store) Delete(ctx context.Context, typ string, key resource.Key, opts store.DeleteOptions) error {
	d, err := s.descriptor(typ)
	if err != nil {
		return err
	}
	var expected *int64
	if opts.Version != "" {
		v := parseVersion(opts.Version)
		expected = &v
	}
	return s.do(ctx, "delete", d.Name, key, func(ctx context.Context) error {
		if d.Name != resource.MeshType {
			return deleteOne(ctx, s.pool, d.Name, key, expected)
		}
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return deleteMesh(ctx, tx, key, expected) })
	})
}

// deleteMesh deletes a Mesh and everything in it within tx: the mesh row is
// locked and checked first, then its contents go, then the mesh itself (the
// order the memory store reports them in).
func deleteMesh(ctx context.Context, tx pgx.Tx, key resource.Key, expected *int64) error {
	var version int64
	err := tx.QueryRow(ctx, `SELECT version FROM atoll_resources WHERE type = $1 AND mesh = $2 AND name = $3 FOR UPDATE`,
		resource.MeshType, key.Mesh, key.Name).Scan(&version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.NotFound(resource.MeshType, key)
	case err != nil:
		return err
	case expected != nil && *expected != version:
		return store.Conflict(resource.MeshType, key)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM atoll_resources WHERE mesh = $1", key.Name); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "DELETE FROM atoll_resources WHERE type = $1 AND mesh = $2 AND name = $3",
		resource.MeshType, key.Mesh, key.Name)
	return err
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func deleteOne(ctx context.Context, q querier, typ string, key resource.Key, expected *int64) error {
	var deleted int
	var exists bool
	if err := q.QueryRow(ctx, deleteSQL, typ, key.Mesh, key.Name, expected).Scan(&deleted, &exists); err != nil {
		return err
	}
	switch {
	case deleted > 0:
		return nil
	case exists:
		return store.Conflict(typ, key)
	}
	return store.NotFound(typ, key)
}

const getSQL = `SELECT version, spec, status, labels, creation_time, modification_time
FROM atoll_resources WHERE type = $1 AND mesh = $2 AND name = $3`

// Get returns one resource or ErrNotFound.
func (s *Store) Get(ctx context.Context, typ string, key resource.Key) (*resource.Resource, error) {
	d, err := s.descriptor(typ)
	if err != nil {
		return nil, err
	}
	var r row
	err = s.do(ctx, "get", d.Name, key, func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, getSQL, d.Name, key.Mesh, key.Name).
			Scan(&r.version, &r.spec, &r.status, &r.labels, &r.created, &r.modified)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.NotFound(d.Name, key)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return r.decode(d, key)
}

// row is a resource as stored: JSON columns as bytes.
type row struct {
	version           int64
	spec, status      []byte
	labels            []byte
	created, modified time.Time
}

// encode renders res's spec, status and labels as JSON for the table.
func encode(d *resource.Descriptor, res *resource.Resource) (*row, error) {
	if err := store.CheckKey(d, res.Key()); err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	spec := res.Spec
	if spec == nil {
		spec = d.NewSpec()
	}
	r := &row{}
	var err error
	if r.spec, err = json.Marshal(spec); err != nil {
		return nil, fmt.Errorf("encoding %s %q spec: %w", d.Name, res.Key().String(), err)
	}
	if res.Status != nil && d.NewStatus != nil {
		if r.status, err = json.Marshal(res.Status); err != nil {
			return nil, fmt.Errorf("encoding %s %q status: %w", d.Name, res.Key().String(), err)
		}
	}
	labels := res.Meta.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	if r.labels, err = json.Marshal(labels); err != nil {
		return nil, fmt.Errorf("encoding %s %q labels: %w", d.Name, res.Key().String(), err)
	}
	return r, nil
}

// decode builds a fresh Resource from a stored row.
func (r *row) decode(d *resource.Descriptor, key resource.Key) (*resource.Resource, error) {
	res := &resource.Resource{
		Type: d.Name,
		Meta: resource.Meta{
			Name:             key.Name,
			Mesh:             key.Mesh,
			Version:          strconv.FormatInt(r.version, 10),
			CreationTime:     r.created.UTC(),
			ModificationTime: r.modified.UTC(),
		},
		Spec: d.NewSpec(),
	}
	if err := json.Unmarshal(r.spec, res.Spec); err != nil {
		return nil, fmt.Errorf("decoding stored %s %q spec: %w", d.Name, key.String(), err)
	}
	if len(r.status) > 0 && d.NewStatus != nil && string(r.status) != "null" {
		st := d.NewStatus()
		if err := json.Unmarshal(r.status, st); err != nil {
			return nil, fmt.Errorf("decoding stored %s %q status: %w", d.Name, key.String(), err)
		}
		res.Status = st
	}
	if len(r.labels) > 0 {
		var labels map[string]string
		if err := json.Unmarshal(r.labels, &labels); err != nil {
			return nil, fmt.Errorf("decoding stored %s %q labels: %w", d.Name, key.String(), err)
		}
		if len(labels) > 0 {
			res.Meta.Labels = labels
		}
	}
	return res, nil
}

// parseVersion reads a version token; anything unreadable becomes -1,
// which matches no stored version (a conflict, or not-found).
func parseVersion(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return -1
	}
	return n
}
