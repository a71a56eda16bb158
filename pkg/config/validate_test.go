package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/validate"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   validate.Errors // nil: valid
	}{
		{
			name:   "defaults are valid",
			change: func(*Config) {},
		},
		{
			name: "bad mode and environment",
			change: func(c *Config) {
				c.Mode = "bogus"
				c.Environment = "k8s"
			},
			want: validate.Errors{
				{Field: "mode", Message: `must be one of standalone, zone, global, got "bogus"`},
				{Field: "environment", Message: `must be one of universal, kubernetes, got "k8s"`},
			},
		},
		{
			name:   "port out of range",
			change: func(c *Config) { c.APIServer.HTTP.Port = 70000 },
			want:   validate.Errors{{Field: "apiServer.http.port", Message: "must be a port number between 1 and 65535, got 70000"}},
		},
		{
			name:   "port out of range on a listener this mode does not open",
			change: func(c *Config) { c.KDSServer.Port = 0 },
			want:   validate.Errors{{Field: "kdsServer.port", Message: "must be a port number between 1 and 65535, got 0"}},
		},
		{
			name:   "global mode requires postgres",
			change: func(c *Config) { c.Mode = ModeGlobal },
			want:   validate.Errors{{Field: "store.type", Message: `global mode requires "postgres", got "memory"`}},
		},
		{
			name: "global mode with postgres",
			change: func(c *Config) {
				c.Mode = ModeGlobal
				c.Store.Type = StorePostgres
			},
		},
		{
			name:   "zone mode requires a zone name",
			change: func(c *Config) { c.Mode = ModeZone },
			want:   validate.Errors{{Field: "multizone.zone.name", Message: "is required in zone mode"}},
		},
		{
			name: "zone mode with name and global address",
			change: func(c *Config) {
				c.Mode = ModeZone
				c.Multizone.Zone.Name = "eu-west"
				c.Multizone.Zone.GlobalAddress = "grpcs://global.example:5685"
			},
		},
		{
			name: "bad zone name and global address",
			change: func(c *Config) {
				c.Mode = ModeZone
				c.Multizone.Zone.Name = "EU West"
				c.Multizone.Zone.GlobalAddress = "https://global.example"
			},
			want: validate.Errors{
				{Field: "multizone.zone.name", Message: `"EU West" is not a valid name: use lower-case letters, digits, '-', '.' and '_', starting and ending with a letter or digit`},
				{Field: "multizone.zone.globalAddress", Message: `must use the grpc or grpcs scheme, as in "grpcs://global-cp:5685", got "https://global.example"`},
			},
		},
		{
			name:   "global address without port",
			change: func(c *Config) { c.Multizone.Zone.GlobalAddress = "grpcs://global.example" },
			want:   validate.Errors{{Field: "multizone.zone.globalAddress", Message: `must name a host and a port, as in "grpcs://global-cp:5685", got "grpcs://global.example"`}},
		},
		{
			name: "postgres settings are checked only when postgres is used",
			change: func(c *Config) {
				c.Store.Postgres.Host = ""
				c.Store.Postgres.MaxConns = 0
			},
		},
		{
			name: "postgres settings",
			change: func(c *Config) {
				c.Store.Type = StorePostgres
				c.Store.Postgres.Host = ""
				c.Store.Postgres.DBName = ""
				c.Store.Postgres.Port = -1
				c.Store.Postgres.MaxConns = 0
				c.Store.Postgres.ConnectionTimeout = 0
				c.Store.Postgres.TLSMode = "verify-full"
			},
			want: validate.Errors{
				{Field: "store.postgres.tlsMode", Message: `must be one of disable, prefer, require, verifyCa, verifyFull, got "verify-full"`},
				{Field: "store.postgres.host", Message: `is required when store.type is "postgres"`},
				{Field: "store.postgres.dbName", Message: `is required when store.type is "postgres"`},
				{Field: "store.postgres.port", Message: "must be a port number between 1 and 65535, got -1"},
				{Field: "store.postgres.maxConns", Message: "must be at least 1, got 0"},
				{Field: "store.postgres.connectionTimeout", Message: "must be positive, got 0s"},
			},
		},
		{
			name:   "bad store type",
			change: func(c *Config) { c.Store.Type = "etcd" },
			want:   validate.Errors{{Field: "store.type", Message: `must be one of memory, postgres, got "etcd"`}},
		},
		{
			name: "certificate without key and key without certificate",
			change: func(c *Config) {
				c.APIServer.HTTPS.TLSCertFile = "/etc/atoll/tls.crt"
				c.DPServer.TLSKeyFile = "/etc/atoll/tls.key"
			},
			want: validate.Errors{
				{Field: "apiServer.https.tlsKeyFile", Message: "must be set together with apiServer.https.tlsCertFile"},
				{Field: "dpServer.tlsCertFile", Message: "must be set together with dpServer.tlsKeyFile"},
			},
		},
		{
			name:   "CORS domain that is not a regular expression",
			change: func(c *Config) { c.APIServer.CORSAllowedDomains = []string{`https://ok\.example`, "(["} },
			want:   validate.Errors{{Field: "apiServer.corsAllowedDomains[1]", Message: "must be a regular expression: error parsing regexp: missing closing ]: `[`"}},
		},
		{
			name: "two listeners on one port",
			change: func(c *Config) {
				c.Diagnostics.Port = DefaultAPIServerHTTPPort
			},
			want: validate.Errors{{Field: "diagnostics.port", Message: "port 5681 is already used by apiServer.http.port"}},
		},
		{
			name: "ports of listeners that are off may coincide",
			change: func(c *Config) {
				c.APIServer.HTTPS.Enabled = false
				c.APIServer.HTTPS.Port = DefaultDiagnosticsPort
				c.KDSServer.Port = DefaultDPServerPort // KDS listens in global mode only
			},
		},
		{
			name: "global mode opens KDS and not the data-plane server",
			change: func(c *Config) {
				c.Mode = ModeGlobal
				c.Store.Type = StorePostgres
				c.KDSServer.Port = DefaultAPIServerHTTPSPort
				c.DPServer.Port = DefaultDiagnosticsPort
			},
			want: validate.Errors{{Field: "kdsServer.port", Message: "port 5682 is already used by apiServer.https.port"}},
		},
		{
			name: "interfaces",
			change: func(c *Config) {
				c.APIServer.HTTP.Interface = "127.0.0.1:5681"
				c.APIServer.HTTPS.Interface = "localhost"
				c.Diagnostics.Interface = "not an address"
			},
			want: validate.Errors{
				{Field: "apiServer.http.interface", Message: `must be an address without a port (the port is set separately), got "127.0.0.1:5681"`},
				{Field: "diagnostics.interface", Message: `must be an IP address or a host name, got "not an address"`},
			},
		},
		{
			name: "logging",
			change: func(c *Config) {
				c.Logging.Level = "trace"
				c.Logging.Format = "xml"
			},
			want: validate.Errors{
				{Field: "logging.level", Message: `must be one of debug, info, warn, error, got "trace"`},
				{Field: "logging.format", Message: `must be one of text, json, got "xml"`},
			},
		},
		{
			name:   "shutdown timeout",
			change: func(c *Config) { c.General.ShutdownTimeout = 0 },
			want:   validate.Errors{{Field: "general.shutdownTimeout", Message: "must be positive, got 0s"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			tt.change(&cfg)
			err := cfg.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Equal(t, tt.want, err)
		})
	}
}

func TestValidateAfterLoadNamesTheKey(t *testing.T) {
	cfg, _, err := Load("", []string{"ATOLL_MODE=bogus"})
	require.NoError(t, err, "enumerations are checked by Validate, with every other problem")
	err = cfg.Validate()
	require.ErrorContains(t, err, `mode: must be one of standalone, zone, global, got "bogus"`)
}
