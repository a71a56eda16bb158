package pgtest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Database holds the connection parameters of one database of a cluster.
type Database struct {
	// Host is the TCP host (127.0.0.1).
	Host string
	// Port is the TCP port.
	Port int
	// SocketDir is the directory of the unix socket, usable as a host.
	SocketDir string
	// User is the role to connect as (the superuser, trust auth).
	User string
	// Name is the database name.
	Name string
}

// ConnString returns a libpq keyword/value connection string over TCP.
func (d Database) ConnString() string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", d.Host, d.Port, d.User, d.Name)
}

// Env returns the environment variables that point atoll-cp at this
// database, for tests that start the control plane as a process.
func (d Database) Env() []string {
	return []string{
		"ATOLL_STORE_TYPE=postgres",
		"ATOLL_STORE_POSTGRES_HOST=" + d.Host,
		"ATOLL_STORE_POSTGRES_PORT=" + strconv.Itoa(d.Port),
		"ATOLL_STORE_POSTGRES_USER=" + d.User,
		"ATOLL_STORE_POSTGRES_PASSWORD=",
		"ATOLL_STORE_POSTGRES_DB_NAME=" + d.Name,
		"ATOLL_STORE_POSTGRES_TLS_MODE=disable",
	}
}

// Connect opens a single connection to the database, for test set-up and
// inspection.
func (d Database) Connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, d.ConnString())
	if err != nil {
		return nil, fmt.Errorf("pgtest: connecting to %s: %w", d.Name, err)
	}
	return conn, nil
}

// CreateDatabase creates an empty database with the given name.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (Database, error) {
	conn, err := c.Admin().Connect(ctx)
	if err != nil {
		return Database{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return Database{}, fmt.Errorf("pgtest: creating database %s: %w", name, err)
	}
	db := c.Admin()
	db.Name = name
	return db, nil
}

// DropDatabase drops a database, cutting its open connections.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	conn, err := c.Admin().Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: dropping database %s: %w", name, err)
	}
	return nil
}

// NewDatabase creates a fresh, empty database for one test, named after it,
// and drops it in t.Cleanup (when the server is still running).
func (c *Cluster) NewDatabase(t testing.TB) Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := dbName(t.Name(), c.dbSeq.Add(1))
	db, err := c.CreateDatabase(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !c.Running() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.DropDatabase(ctx, name); err != nil {
			t.Errorf("%v", err)
		}
	})
	return db
}

// dbName makes a valid, unique identifier from a test name.
func dbName(test string, seq int64) string {
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return fmt.Sprintf("t_%s_%d", b.String(), seq)
}

// Shared is one cluster shared by every test of a test binary, launched on
// first use. Declare it as a package variable of the test package and
// close it from TestMain:
//
//	var pg pgtest.Shared
//
//	func TestMain(m *testing.M) { os.Exit(pg.Run(m)) }
//
// Tests then call pg.NewDatabase(t).
type Shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
}

// Cluster returns the shared cluster, launching it on first use. It fails
// the test when PostgreSQL cannot start (for example when it is not
// installed; the message says how to install it).
func (s *Shared) Cluster(t testing.TB) *Cluster {
	t.Helper()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s.cluster, s.err = Launch(ctx, Options{})
	})
	if s.err != nil {
		t.Fatalf("starting the shared throwaway PostgreSQL: %v", s.err)
	}
	return s.cluster
}

// NewDatabase returns a fresh database on the shared cluster for one test.
func (s *Shared) NewDatabase(t testing.TB) Database {
	t.Helper()
	return s.Cluster(t).NewDatabase(t)
}

// Run runs the tests and then closes the shared cluster, if one was
// launched. Its result is the exit code for os.Exit.
func (s *Shared) Run(m *testing.M) int {
	code := m.Run()
	if s.cluster != nil {
		if err := s.cluster.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: closing the shared cluster: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}
