package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// mapError turns a database error into the store's vocabulary. parent is
// the caller's context: when it ended, its error is returned as is (the
// caller gave up); every other failure to talk to the server, including
// our own operation timeout, becomes store.ErrUnavailable with the cause.
func mapError(parent context.Context, op, typ string, key resource.Key, err error) error {
	if err == nil {
		return nil
	}
	var se *store.Error
	if errors.As(err, &se) {
		return err
	}
	if perr := parent.Err(); perr != nil {
		return fmt.Errorf("%s %s %q: %w", op, typ, key.String(), errors.Join(perr, err))
	}
	if isUnavailable(err) {
		return &store.Error{Err: store.ErrUnavailable, Type: typ, Key: key, Cause: fmt.Errorf("%s: %w", op, err)}
	}
	return fmt.Errorf("%s %s %q: %w", op, typ, key.String(), err)
}

// isUnavailable reports whether err means the server could not be used
// (unreachable, shutting down, overloaded, read-only standby), as opposed to
// the server rejecting this statement.
func isUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"): // connection exception
			return true
		case strings.HasPrefix(pgErr.Code, "53"): // insufficient resources, too many connections
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // shutdown, crash, cannot connect now
			return true
		case pgErr.Code == "25006": // read_only_sql_transaction: we reached a standby after a failover
			return true
		}
		return false
	}
	// Client-side failures to reach or keep the server: refused, reset,
	// timed out, closed under us.
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.As(err, &netErr) || errors.As(err, &connectErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, context.DeadlineExceeded) ||
		pgconn.Timeout(err)
}
