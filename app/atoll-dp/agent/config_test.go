package agent

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigCheckReportsOneClearProblem(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.CACertFile = "ca.pem"
		c.TokenFile = "token"
		c.Name, c.Mesh = "web-1", "demo"
		return c
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"unknown mode", func(c *Config) { c.Mode = "sidecar" }, `--mode must be "envoy" or "proxyless", got "sidecar"`},
		{"plain http", func(c *Config) { c.CPAddress = "http://cp:5678" }, `--cp-address must use https (the data-plane server speaks TLS only), got "http://cp:5678"`},
		{"no scheme", func(c *Config) { c.CPAddress = "cp:5678" }, `--cp-address must look like https://host:5678, got "cp:5678"`},
		{"bad port", func(c *Config) { c.CPAddress = "https://cp:99999" }, `--cp-address has an invalid port in "https://cp:99999"`},
		{"no CA", func(c *Config) { c.CACertFile = "" }, "--ca-cert-file is required: pass the CA certificate that signed the control plane's data-plane server certificate (--insecure-skip-verify skips verification, for development only)"},
		{"CA and insecure", func(c *Config) { c.InsecureSkipVerify = true }, "--ca-cert-file and --insecure-skip-verify cannot be used together"},
		{"insecure proxyless", func(c *Config) {
			c.Mode, c.CACertFile, c.InsecureSkipVerify = ModeProxyless, "", true
		}, "--insecure-skip-verify is not available in proxyless mode"},
		{"two tokens", func(c *Config) { c.Token = "t" }, "--dataplane-token-file and --dataplane-token cannot be used together"},
		{"no token", func(c *Config) { c.TokenFile = "" }, "a dataplane token is required: pass --dataplane-token-file"},
		{"no dataplane", func(c *Config) { c.Mesh = "" }, "name the dataplane: pass --dataplane-file, or --name and --mesh of a dataplane created beforehand"},
		{"ports collide", func(c *Config) { c.ReadyPort = c.AdminPort }, "--ready-port and --admin-port must differ, both are 9901"},
		{"negative drain", func(c *Config) { c.DrainTime = -time.Second }, "--drain-time must not be negative, got -1s"},
		{"envoy log level", func(c *Config) { c.EnvoyLogLevel = "loud" }, `--envoy-log-level must be one of trace, debug, info, warning, warn, error, critical, off, got "loud"`},
		{"readiness address", func(c *Config) { c.ReadinessAddress = "eth0" }, `--readiness-address must be an IP address, got "eth0"`},
		{"proxyless without bootstrap out", func(c *Config) { c.Mode, c.CertsDir = ModeProxyless, "certs" }, "--grpc-bootstrap-out is required in proxyless mode"},
		{"proxyless without certs dir", func(c *Config) { c.Mode, c.GRPCBootstrapOut = ModeProxyless, "b.json" }, "--certs-dir is required in proxyless mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(&c)
			err := c.check()
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			require.NotContains(t, err.Error(), "\n", "one line")
		})
	}
	c := valid()
	require.NoError(t, c.check())
}

func TestParseCPAddress(t *testing.T) {
	for in, want := range map[string][2]string{
		"https://cp.example:5678":    {"https://cp.example:5678", "cp.example:5678"},
		"https://cp.example":         {"https://cp.example", "cp.example:443"},
		"https://10.0.0.1:5678/":     {"https://10.0.0.1:5678", "10.0.0.1:5678"},
		"https://[::1]:5678/prefix/": {"https://[::1]:5678/prefix", "[::1]:5678"},
	} {
		got, err := parseCPAddress(in)
		require.NoError(t, err, in)
		require.Equal(t, want[0], got.base.String(), in)
		require.Equal(t, want[1], got.hostPort, in)
	}
	_, err := parseCPAddress("https://user@cp:5678")
	require.ErrorContains(t, err, "must not carry user information")
}

func TestBackoffDoublesUpToMax(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 5 * time.Second}
	var got []time.Duration
	var d time.Duration
	for range 5 {
		d = b.next(d)
		got = append(got, d)
	}
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}, got)
	j := Backoff{Jitter: 0.2}
	for range 100 {
		s := j.spread(10 * time.Second)
		require.True(t, s >= 8*time.Second && s <= 12*time.Second, s)
	}
}
