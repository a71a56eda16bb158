// Package migrations owns the PostgreSQL schema of Atoll: numbered SQL files
// embedded in the binary (sql/NNNN_name.sql), applied in order by Up, each in
// its own transaction together with its row in atoll_schema_migrations.
// Status reports where a database stands and Check refuses a database that
// is behind or ahead of this binary.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed sql/*.sql
var files embed.FS

// MigrateCommand is the command an operator runs to bring a database schema
// up to date; error messages name it.
const MigrateCommand = "atoll-cp migrate up"

// lockKey is the advisory lock that serialises concurrent Up calls (several
// control planes starting at once).
const lockKey = 0x41746f6c6c4d6967 // "AtollMig"

// Errors Check returns; match them with errors.Is.
var (
	// ErrOutdated: the database schema is older than this binary needs.
	ErrOutdated = errors.New("database schema is not up to date")
	// ErrTooNew: the database schema was migrated by a newer Atoll.
	ErrTooNew = errors.New("database schema is newer than this Atoll supports")
)

// DB is what migrations need of a connection or pool; *pgx.Conn and
// *pgxpool.Pool both satisfy it.
type DB interface {
	// Begin starts a transaction.
	Begin(ctx context.Context) (pgx.Tx, error)
	// Exec runs a statement.
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	// QueryRow runs a query returning one row.
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Migration is one numbered schema step.
type Migration struct {
	// Version is the file's number.
	Version int
	// Name is the file name without number and extension.
	Name string
	// SQL is the file's content.
	SQL string
}

// All returns the embedded migrations in version order.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(files, "sql")
	if err != nil {
		return nil, fmt.Errorf("reading embedded migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration file %q: want NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(files, path.Join("sql", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading migration %q: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(body)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations must be numbered 1, 2, 3… without gaps; found %d at position %d", m.Version, i+1)
		}
	}
	return out, nil
}

// Latest returns the version of the newest embedded migration.
func Latest() int {
	all, err := All()
	if err != nil || len(all) == 0 {
		return 0
	}
	return all[len(all)-1].Version
}

// Status says where a database's schema stands.
type Status struct {
	// Current is the newest applied version; 0 for an empty database.
	Current int
	// Latest is the newest version this binary knows.
	Latest int
	// Pending are the migrations Up would apply.
	Pending []Migration
}

// UpToDate reports whether the schema is exactly what this binary expects.
func (s Status) UpToDate() bool { return s.Current == s.Latest }

// String describes the status for `atoll-cp migrate status`.
func (s Status) String() string {
	switch {
	case s.Current > s.Latest:
		return fmt.Sprintf("schema version %d is newer than this binary's latest (%d): upgrade Atoll", s.Current, s.Latest)
	case s.Current == s.Latest:
		return fmt.Sprintf("schema version %d: up to date", s.Current)
	}
	names := make([]string, len(s.Pending))
	for i, m := range s.Pending {
		names[i] = fmt.Sprintf("%04d_%s", m.Version, m.Name)
	}
	return fmt.Sprintf("schema version %d, latest %d: pending %s; run `%s`", s.Current, s.Latest, strings.Join(names, ", "), MigrateCommand)
}

const createVersionTable = `CREATE TABLE IF NOT EXISTS atoll_schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// currentVersion reads the newest applied version, 0 when the version table
// does not exist yet.
func currentVersion(ctx context.Context, db DB) (int, error) {
	var exists bool
	if err := db.QueryRow(ctx, "SELECT to_regclass('atoll_schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := db.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM atoll_schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return v, nil
}

// GetStatus reads the database's schema version and compares it with the
// embedded migrations.
func GetStatus(ctx context.Context, db DB) (Status, error) {
	all, err := All()
	if err != nil {
		return Status{}, err
	}
	cur, err := currentVersion(ctx, db)
	if err != nil {
		return Status{}, err
	}
	st := Status{Current: cur}
	if len(all) > 0 {
		st.Latest = all[len(all)-1].Version
	}
	for _, m := range all {
		if m.Version > cur {
			st.Pending = append(st.Pending, m)
		}
	}
	return st, nil
}

// Check returns nil when the database schema is exactly the one this binary
// expects, ErrOutdated (saying to run MigrateCommand) when it is behind, and
// ErrTooNew when a newer Atoll migrated it.
func Check(ctx context.Context, db DB) error {
	st, err := GetStatus(ctx, db)
	if err != nil {
		return err
	}
	switch {
	case st.Current < st.Latest:
		return fmt.Errorf("%w: the database is at schema version %d, this Atoll needs %d; run `%s` first",
			ErrOutdated, st.Current, st.Latest, MigrateCommand)
	case st.Current > st.Latest:
		return fmt.Errorf("%w: the database is at schema version %d, this Atoll knows up to %d; run a newer Atoll",
			ErrTooNew, st.Current, st.Latest)
	}
	return nil
}

// Up applies every pending migration in order, each in its own transaction
// with its version row, and returns the versions it applied. Concurrent
// callers are serialised by an advisory lock; a migration already applied by
// another caller is skipped. It refuses a database whose schema is newer
// than this binary's.
func Up(ctx context.Context, db DB) ([]int, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range all {
		done, err := apply(ctx, db, m, all[len(all)-1].Version)
		if err != nil {
			return applied, err
		}
		if done {
			applied = append(applied, m.Version)
		}
	}
	return applied, nil
}

// apply runs one migration unless it is already applied; it reports whether
// it ran it.
func apply(ctx context.Context, db DB, m Migration, latest int) (ran bool, err error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(lockKey)); err != nil {
		return false, fmt.Errorf("migration %04d_%s: taking the migration lock: %w", m.Version, m.Name, err)
	}
	if _, err := tx.Exec(ctx, createVersionTable); err != nil {
		return false, fmt.Errorf("creating the schema version table: %w", err)
	}
	var cur int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM atoll_schema_migrations").Scan(&cur); err != nil {
		return false, fmt.Errorf("migration %04d_%s: reading schema version: %w", m.Version, m.Name, err)
	}
	if cur > latest {
		return false, fmt.Errorf("%w: the database is at schema version %d, this Atoll knows up to %d; run a newer Atoll",
			ErrTooNew, cur, latest)
	}
	if cur >= m.Version {
		return false, tx.Rollback(ctx)
	}
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO atoll_schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
		return false, fmt.Errorf("migration %04d_%s: recording it: %w", m.Version, m.Name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("migration %04d_%s: commit: %w", m.Version, m.Name, err)
	}
	return true, nil
}
