package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/postgres/migrations"
)

// Migrate applies the pending schema migrations (`atoll-cp migrate up`) and
// returns the versions it applied. Several instances may call it at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	applied, err := migrations.Up(ctx, pool)
	if err != nil {
		return applied, wrapSchemaError("migrating the schema", err)
	}
	return applied, nil
}

// SchemaStatus reports the database's schema version against this binary's
// (`atoll-cp migrate status`).
func SchemaStatus(ctx context.Context, pool *pgxpool.Pool) (migrations.Status, error) {
	st, err := migrations.GetStatus(ctx, pool)
	if err != nil {
		return st, wrapSchemaError("reading the schema status", err)
	}
	return st, nil
}

// wrapSchemaError marks connection failures as store.ErrUnavailable.
func wrapSchemaError(what string, err error) error {
	if isUnavailable(err) {
		return fmt.Errorf("%s: %w: %w", what, store.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
