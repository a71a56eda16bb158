package agent

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Modes of the agent.
const (
	// ModeEnvoy fetches an Envoy bootstrap and runs Envoy as a child process.
	ModeEnvoy = "envoy"
	// ModeProxyless writes a gRPC xDS bootstrap and keeps a proxyless gRPC
	// application's workload certificate files fresh.
	ModeProxyless = "proxyless"
)

// Defaults of Config, as the command line documents them.
const (
	// DefaultCPAddress is the data-plane server of a control plane on the same host.
	DefaultCPAddress = "https://localhost:5678"
	// DefaultAdminPort is Envoy's conventional admin port.
	DefaultAdminPort = 9901
	// DefaultReadyPort serves the readiness endpoint, next to Envoy's admin port.
	DefaultReadyPort = 9902
	// DefaultReadinessAddress keeps the readiness endpoint on the loopback
	// interface; Kubernetes probes need the pod's address (or 0.0.0.0).
	DefaultReadinessAddress = "127.0.0.1"
	// DefaultDrainTime is how long Envoy drains inbound connections on shutdown.
	DefaultDrainTime = 30 * time.Second
	// DefaultBinaryPath names Envoy; without a slash it is looked up on PATH.
	DefaultBinaryPath = "envoy"
	// DefaultEnvoyLogLevel is Envoy's --log-level.
	DefaultEnvoyLogLevel = "info"
	// DefaultCPRetryTimeout bounds how long an unreachable control plane is
	// retried at start-up.
	DefaultCPRetryTimeout = 2 * time.Minute
)

// envoyLogLevels are the values Envoy's --log-level accepts.
var envoyLogLevels = []string{"trace", "debug", "info", "warning", "warn", "error", "critical", "off"}

// Config is what the operator asked for on the command line (or through
// ATOLL_DP_* variables). New checks it and reports the first problem in
// terms of the flags.
type Config struct {
	// Mode is ModeEnvoy or ModeProxyless.
	Mode string
	// CPAddress is the control plane's data-plane server, "https://host:port".
	CPAddress string
	// CACertFile holds the CA certificate(s) that signed the data-plane
	// server's certificate. Only these are trusted (system roots are not).
	CACertFile string
	// InsecureSkipVerify skips verification of the control plane's
	// certificate (Envoy mode only; for development).
	InsecureSkipVerify bool
	// CPRetryTimeout bounds how long an unreachable control plane is retried
	// at start-up; zero tries once.
	CPRetryTimeout time.Duration

	// DataplaneFile is a Kuma universal Dataplane document (YAML or JSON)
	// that the control plane registers. Optional when Name and Mesh name a
	// pre-created dataplane.
	DataplaneFile string
	// Name of the dataplane.
	Name string
	// Mesh of the dataplane.
	Mesh string
	// TokenFile holds the dataplane token; it is read again before every
	// request, so a rotated token is picked up.
	TokenFile string
	// Token is the dataplane token itself, when TokenFile is not used.
	Token string

	// ReadinessAddress is the interface of the readiness endpoint.
	ReadinessAddress string
	// ReadyPort is the port of the readiness endpoint; 0 picks a free one.
	ReadyPort int

	// AdminPort is Envoy's admin port (Envoy mode).
	AdminPort int
	// BinaryPath is the Envoy executable (Envoy mode); without a slash it is
	// looked up on PATH.
	BinaryPath string
	// ConfigDir receives Envoy's bootstrap (Envoy mode); empty uses a
	// temporary directory removed at exit.
	ConfigDir string
	// DrainTime is how long Envoy drains before it is stopped (Envoy mode).
	DrainTime time.Duration
	// EnvoyLogLevel is Envoy's --log-level (Envoy mode).
	EnvoyLogLevel string

	// GRPCBootstrapOut receives the gRPC xDS bootstrap (proxyless mode).
	GRPCBootstrapOut string
	// CertsDir receives the workload certificate, key and CA bundle
	// (proxyless mode).
	CertsDir string
}

// DefaultConfig returns a Config holding every default.
func DefaultConfig() Config {
	return Config{
		Mode:             ModeEnvoy,
		CPAddress:        DefaultCPAddress,
		CPRetryTimeout:   DefaultCPRetryTimeout,
		ReadinessAddress: DefaultReadinessAddress,
		ReadyPort:        DefaultReadyPort,
		AdminPort:        DefaultAdminPort,
		BinaryPath:       DefaultBinaryPath,
		DrainTime:        DefaultDrainTime,
		EnvoyLogLevel:    DefaultEnvoyLogLevel,
	}
}

// check reports the first problem of c that needs no file system access.
func (c *Config) check() error {
	switch c.Mode {
	case ModeEnvoy, ModeProxyless:
	default:
		return fmt.Errorf("--mode must be %q or %q, got %q", ModeEnvoy, ModeProxyless, c.Mode)
	}
	if _, err := parseCPAddress(c.CPAddress); err != nil {
		return err
	}
	switch {
	case c.CACertFile != "" && c.InsecureSkipVerify:
		return errors.New("--ca-cert-file and --insecure-skip-verify cannot be used together")
	case c.InsecureSkipVerify && c.Mode == ModeProxyless:
		return errors.New("--insecure-skip-verify is not available in proxyless mode: the gRPC application verifies the control plane with the CA of --ca-cert-file")
	case c.CACertFile == "" && !c.InsecureSkipVerify:
		return errors.New("--ca-cert-file is required: pass the CA certificate that signed the control plane's data-plane server certificate (--insecure-skip-verify skips verification, for development only)")
	}
	if c.CPRetryTimeout < 0 {
		return fmt.Errorf("--cp-retry-timeout must not be negative, got %s", c.CPRetryTimeout)
	}
	switch {
	case c.TokenFile != "" && c.Token != "":
		return errors.New("--dataplane-token-file and --dataplane-token cannot be used together")
	case c.TokenFile == "" && c.Token == "":
		return errors.New("a dataplane token is required: pass --dataplane-token-file (generate one with `atollctl generate dataplane-token --mesh M --name N`)")
	}
	if c.DataplaneFile == "" && (c.Name == "" || c.Mesh == "") {
		return errors.New("name the dataplane: pass --dataplane-file, or --name and --mesh of a dataplane created beforehand")
	}
	if c.ReadyPort < 0 || c.ReadyPort > 65535 {
		return fmt.Errorf("--ready-port must be between 0 and 65535, got %d", c.ReadyPort)
	}
	if c.ReadinessAddress != "" && net.ParseIP(c.ReadinessAddress) == nil && c.ReadinessAddress != "localhost" {
		return fmt.Errorf("--readiness-address must be an IP address, got %q", c.ReadinessAddress)
	}
	if c.Mode == ModeEnvoy {
		return c.checkEnvoy()
	}
	return c.checkProxyless()
}

func (c *Config) checkEnvoy() error {
	if c.AdminPort < 1 || c.AdminPort > 65535 {
		return fmt.Errorf("--admin-port must be between 1 and 65535, got %d", c.AdminPort)
	}
	if c.ReadyPort == c.AdminPort {
		return fmt.Errorf("--ready-port and --admin-port must differ, both are %d", c.AdminPort)
	}
	if c.BinaryPath == "" {
		return errors.New("--binary-path must not be empty")
	}
	if c.DrainTime < 0 {
		return fmt.Errorf("--drain-time must not be negative, got %s", c.DrainTime)
	}
	if !slices.Contains(envoyLogLevels, c.EnvoyLogLevel) {
		return fmt.Errorf("--envoy-log-level must be one of %s, got %q", strings.Join(envoyLogLevels, ", "), c.EnvoyLogLevel)
	}
	return nil
}

func (c *Config) checkProxyless() error {
	if c.GRPCBootstrapOut == "" {
		return errors.New("--grpc-bootstrap-out is required in proxyless mode: the file the application finds through GRPC_XDS_BOOTSTRAP")
	}
	if c.CertsDir == "" {
		return errors.New("--certs-dir is required in proxyless mode: the directory that receives the workload certificate, key and CA bundle")
	}
	return nil
}

// cpAddress is a parsed --cp-address.
type cpAddress struct {
	// base is the URL requests are made below.
	base *url.URL
	// hostPort is "host:port", the xDS server address given to the proxy.
	hostPort string
}

// parseCPAddress checks an "https://host[:port][/prefix]" address.
func parseCPAddress(s string) (cpAddress, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return cpAddress{}, fmt.Errorf("--cp-address must look like https://host:5678, got %q", s)
	}
	if u.Scheme != "https" {
		return cpAddress{}, fmt.Errorf("--cp-address must use https (the data-plane server speaks TLS only), got %q", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return cpAddress{}, fmt.Errorf("--cp-address must not carry user information, a query or a fragment, got %q", s)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return cpAddress{}, fmt.Errorf("--cp-address has an invalid port in %q", s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return cpAddress{base: u, hostPort: net.JoinHostPort(u.Hostname(), port)}, nil
}

// Timing holds the agent's internal delays and bounds. They are not flags:
// DefaultTiming suits production, and tests shorten them.
type Timing struct {
	// RequestTimeout bounds one request to the control plane.
	RequestTimeout time.Duration
	// ConnectBackoff spaces retries of an unreachable control plane.
	ConnectBackoff Backoff
	// RestartBackoff spaces restarts of a crashing Envoy.
	RestartBackoff Backoff
	// RestartResetAfter is how long Envoy must stay up for the next crash to
	// be restarted after RestartBackoff.Initial again.
	RestartResetAfter time.Duration
	// StopTimeout is how long Envoy may take to exit after SIGTERM before it
	// is killed.
	StopTimeout time.Duration
	// AdminTimeout bounds one call to Envoy's admin API.
	AdminTimeout time.Duration
	// RenewBackoff spaces retries of a failed certificate renewal.
	RenewBackoff Backoff
}

// DefaultTiming returns the production delays.
func DefaultTiming() Timing {
	return Timing{
		RequestTimeout:    30 * time.Second,
		ConnectBackoff:    Backoff{Initial: 500 * time.Millisecond, Max: 15 * time.Second, Jitter: 0.2},
		RestartBackoff:    Backoff{Initial: time.Second, Max: 30 * time.Second},
		RestartResetAfter: time.Minute,
		StopTimeout:       10 * time.Second,
		AdminTimeout:      2 * time.Second,
		RenewBackoff:      Backoff{Initial: time.Second, Max: time.Minute, Jitter: 0.2},
	}
}
