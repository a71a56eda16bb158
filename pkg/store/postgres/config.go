package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/atoll-mesh/atoll/pkg/store"
)

// TLS modes, with libpq's meanings.
const (
	TLSDisable    = "disable"     // never use TLS
	TLSPrefer     = "prefer"      // TLS when the server offers it, unverified
	TLSRequire    = "require"     // TLS always, certificate not verified
	TLSVerifyCA   = "verify-ca"   // TLS with a certificate signed by TLSCAPath
	TLSVerifyFull = "verify-full" // verify-ca plus the host name
)

// Config says how to reach PostgreSQL. The control plane fills it from
// ATOLL_STORE_POSTGRES_* variables (named on each field).
type Config struct {
	// Host is a host name, an IP address, or a unix socket directory
	// (starting with "/"). ATOLL_STORE_POSTGRES_HOST; default 127.0.0.1.
	Host string
	// Port is the TCP port. ATOLL_STORE_POSTGRES_PORT; default 5432.
	Port int
	// User is the role to connect as. ATOLL_STORE_POSTGRES_USER.
	User string
	// Password of User. ATOLL_STORE_POSTGRES_PASSWORD.
	Password string
	// DBName is the database. ATOLL_STORE_POSTGRES_DB_NAME.
	DBName string
	// TLSMode is one of disable, prefer, require, verify-ca, verify-full
	// (pkg/config's spellings verifyNone, verifyCa and verifyFull are
	// accepted too). ATOLL_STORE_POSTGRES_TLS_MODE; default prefer.
	TLSMode string
	// TLSCAPath is the CA bundle for verify-ca/verify-full.
	// ATOLL_STORE_POSTGRES_TLS_CA_PATH.
	TLSCAPath string
	// TLSCertPath is a client certificate. ATOLL_STORE_POSTGRES_TLS_CERT_PATH.
	TLSCertPath string
	// TLSKeyPath is the client certificate's key. ATOLL_STORE_POSTGRES_TLS_KEY_PATH.
	TLSKeyPath string
	// MaxConns bounds the connection pool (the change listener and the
	// leader lease use one more each). ATOLL_STORE_POSTGRES_MAX_CONNS;
	// default 10.
	MaxConns int
	// ConnectTimeout bounds establishing one connection.
	// ATOLL_STORE_POSTGRES_CONNECTION_TIMEOUT; default 5s.
	ConnectTimeout time.Duration
	// OperationTimeout bounds each store operation, connecting included,
	// so callers get ErrUnavailable instead of hanging on a dead server.
	// ATOLL_STORE_POSTGRES_OPERATION_TIMEOUT; default 10s.
	OperationTimeout time.Duration
	// ApplicationName shows in pg_stat_activity; default "atoll-cp".
	ApplicationName string
}

// DefaultConfig returns the defaults: a local server, TLS preferred, ten
// connections.
func DefaultConfig() Config {
	return Config{
		Host:             "127.0.0.1",
		Port:             5432,
		TLSMode:          TLSPrefer,
		MaxConns:         10,
		ConnectTimeout:   5 * time.Second,
		OperationTimeout: 10 * time.Second,
		ApplicationName:  "atoll-cp",
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Host == "" {
		c.Host = d.Host
	}
	if c.Port == 0 {
		c.Port = d.Port
	}
	if c.TLSMode == "" {
		c.TLSMode = d.TLSMode
	}
	c.TLSMode = libpqTLSMode(c.TLSMode)
	if c.MaxConns == 0 {
		c.MaxConns = d.MaxConns
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.OperationTimeout == 0 {
		c.OperationTimeout = d.OperationTimeout
	}
	if c.ApplicationName == "" {
		c.ApplicationName = d.ApplicationName
	}
	return c
}

// Validate reports every invalid field, named by its environment variable.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("ATOLL_STORE_POSTGRES_PORT: %d is not a TCP port", c.Port))
	}
	if c.User == "" {
		errs = append(errs, errors.New("ATOLL_STORE_POSTGRES_USER: must be set"))
	}
	if c.DBName == "" {
		errs = append(errs, errors.New("ATOLL_STORE_POSTGRES_DB_NAME: must be set"))
	}
	modes := []string{TLSDisable, TLSPrefer, TLSRequire, TLSVerifyCA, TLSVerifyFull}
	if !slices.Contains(modes, c.TLSMode) {
		errs = append(errs, fmt.Errorf("ATOLL_STORE_POSTGRES_TLS_MODE: %q is not one of %s", c.TLSMode, strings.Join(modes, ", ")))
	}
	if (c.TLSMode == TLSVerifyCA || c.TLSMode == TLSVerifyFull) && c.TLSCAPath == "" {
		errs = append(errs, fmt.Errorf("ATOLL_STORE_POSTGRES_TLS_CA_PATH: must be set with TLS mode %s", c.TLSMode))
	}
	if (c.TLSCertPath == "") != (c.TLSKeyPath == "") {
		errs = append(errs, errors.New("ATOLL_STORE_POSTGRES_TLS_CERT_PATH and _TLS_KEY_PATH: set both or neither"))
	}
	if c.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("ATOLL_STORE_POSTGRES_MAX_CONNS: %d must be at least 1", c.MaxConns))
	}
	if c.ConnectTimeout < 0 || c.OperationTimeout < 0 {
		errs = append(errs, errors.New("ATOLL_STORE_POSTGRES_*_TIMEOUT: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid PostgreSQL store configuration: %w", err)
	}
	return nil
}

// String describes the target without the password, for logs.
func (c Config) String() string {
	c = c.withDefaults()
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=%s", c.User, c.Host, c.Port, c.DBName, c.TLSMode)
}

// connString renders the libpq keyword/value form, quoting every value.
func (c Config) connString() string {
	kv := [][2]string{
		{"host", c.Host},
		{"port", strconv.Itoa(c.Port)},
		{"user", c.User},
		{"password", c.Password},
		{"dbname", c.DBName},
		{"sslmode", c.TLSMode},
		{"sslrootcert", c.TLSCAPath},
		{"sslcert", c.TLSCertPath},
		{"sslkey", c.TLSKeyPath},
		{"application_name", c.ApplicationName},
	}
	var b strings.Builder
	for _, p := range kv {
		if p[1] == "" {
			continue
		}
		v := strings.ReplaceAll(strings.ReplaceAll(p[1], `\`, `\\`), `'`, `\'`)
		fmt.Fprintf(&b, "%s='%s' ", p[0], v)
	}
	return b.String()
}

// PoolConfig validates c and returns the pgxpool configuration it
// describes.
func (c Config) PoolConfig() (*pgxpool.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	pc, err := pgxpool.ParseConfig(c.connString())
	if err != nil {
		return nil, fmt.Errorf("invalid PostgreSQL store configuration: %w", err)
	}
	pc.MaxConns = int32(c.MaxConns)
	pc.ConnConfig.ConnectTimeout = c.ConnectTimeout
	pc.HealthCheckPeriod = 10 * time.Second
	return pc, nil
}

// Connect opens a connection pool and checks that the server answers. The
// caller closes the pool. A server that cannot be reached gives
// store.ErrUnavailable.
func Connect(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	pc, err := cfg.PoolConfig()
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL %s: %w", cfg, err)
	}
	timeout := cfg.withDefaults().OperationTimeout
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL %s: %w: %w", cfg, store.ErrUnavailable, err)
	}
	return pool, nil
}

// libpqTLSMode maps the camel-case spellings of pkg/config (and Kuma) onto
// libpq's sslmode values; other values pass through.
func libpqTLSMode(mode string) string {
	switch mode {
	case "verifyNone":
		return TLSRequire
	case "verifyCa":
		return TLSVerifyCA
	case "verifyFull":
		return TLSVerifyFull
	}
	return mode
}
