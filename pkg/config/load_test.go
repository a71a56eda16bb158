package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/validate"
)

// writeFile writes content to a fresh file and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "atoll-cp.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestLoadPrecedence(t *testing.T) {
	tests := []struct {
		name  string
		file  string // empty: no file
		env   []string
		check func(t *testing.T, cfg Config)
	}{
		{
			name: "defaults without file or environment",
			check: func(t *testing.T, cfg Config) {
				require.Equal(t, Default(), cfg)
			},
		},
		{
			name: "file overrides defaults and keeps unset keys",
			file: "apiServer:\n  http:\n    port: 6000\n",
			check: func(t *testing.T, cfg Config) {
				require.Equal(t, 6000, cfg.APIServer.HTTP.Port)
				require.Equal(t, "0.0.0.0", cfg.APIServer.HTTP.Interface)
				require.Equal(t, DefaultAPIServerHTTPSPort, cfg.APIServer.HTTPS.Port)
			},
		},
		{
			name: "environment overrides file",
			file: "apiServer:\n  http:\n    port: 6000\nmode: zone\n",
			env:  []string{"ATOLL_API_SERVER_HTTP_PORT=7000"},
			check: func(t *testing.T, cfg Config) {
				require.Equal(t, 7000, cfg.APIServer.HTTP.Port)
				require.Equal(t, ModeZone, cfg.Mode, "keys the environment does not set keep the file's value")
			},
		},
		{
			name: "environment overrides defaults without a file",
			env: []string{
				"ATOLL_MODE=global",
				"ATOLL_STORE_TYPE=postgres",
				"ATOLL_STORE_POSTGRES_DB_NAME=mesh",
				"ATOLL_STORE_POSTGRES_CONNECTION_TIMEOUT=1m30s",
				"ATOLL_DIAGNOSTICS_DEBUG_ENDPOINTS=true",
				"ATOLL_KDS_SERVER_PORT=15685",
			},
			check: func(t *testing.T, cfg Config) {
				require.Equal(t, ModeGlobal, cfg.Mode)
				require.Equal(t, StorePostgres, cfg.Store.Type)
				require.Equal(t, "mesh", cfg.Store.Postgres.DBName)
				require.Equal(t, 90*time.Second, cfg.Store.Postgres.ConnectionTimeout.Std())
				require.True(t, cfg.Diagnostics.DebugEndpoints)
				require.Equal(t, 15685, cfg.KDSServer.Port)
			},
		},
		{
			name: "a list in the file replaces the default list, the environment replaces the file's",
			file: "apiServer:\n  corsAllowedDomains: [a, b]\n",
			env:  []string{"ATOLL_API_SERVER_CORS_ALLOWED_DOMAINS= https://x.example , ,https://y.example"},
			check: func(t *testing.T, cfg Config) {
				require.Equal(t, []string{"https://x.example", "https://y.example"}, cfg.APIServer.CORSAllowedDomains)
			},
		},
		{
			name: "an empty variable sets an empty string",
			file: "multizone:\n  zone:\n    name: east\n",
			env:  []string{"ATOLL_MULTIZONE_ZONE_NAME="},
			check: func(t *testing.T, cfg Config) {
				require.Empty(t, cfg.Multizone.Zone.Name)
			},
		},
		{
			name: "variables without the prefix are ignored",
			env:  []string{"MODE=global", "PATH=/bin", "KUMA_MODE=global", "ATOLL_MODE"},
			check: func(t *testing.T, cfg Config) {
				require.Equal(t, ModeStandalone, cfg.Mode)
			},
		},
		{
			name: "an empty file keeps the defaults",
			file: "# nothing here\n",
			check: func(t *testing.T, cfg Config) {
				require.Equal(t, Default(), cfg)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			cfg, unknown, err := Load(path, tt.env)
			require.NoError(t, err)
			require.Empty(t, unknown)
			tt.check(t, cfg)
		})
	}
}

func TestLoadReturnsUnknownVariablesSorted(t *testing.T) {
	_, unknown, err := Load("", []string{
		"ATOLL_STORE_TYP=postgres",
		"ATOLL_API_SERVER=x",
		"ATOLL_MODE=zone",
		"ATOLL_STORE_TYP=memory",
	})
	require.NoError(t, err)
	require.Equal(t, []string{"ATOLL_API_SERVER", "ATOLL_STORE_TYP"}, unknown)
}

func TestApplyEnvMalformedValues(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want validate.Errors
	}{
		{
			name: "port that is not a number",
			env:  []string{"ATOLL_API_SERVER_HTTP_PORT=abc"},
			want: validate.Errors{{Field: "ATOLL_API_SERVER_HTTP_PORT", Message: `must be an integer, got "abc" (sets apiServer.http.port)`}},
		},
		{
			name: "boolean",
			env:  []string{"ATOLL_API_SERVER_READ_ONLY=maybe"},
			want: validate.Errors{{Field: "ATOLL_API_SERVER_READ_ONLY", Message: `must be true or false, got "maybe" (sets apiServer.readOnly)`}},
		},
		{
			name: "duration without unit",
			env:  []string{"ATOLL_STORE_POSTGRES_CONNECTION_TIMEOUT=5"},
			want: validate.Errors{{Field: "ATOLL_STORE_POSTGRES_CONNECTION_TIMEOUT", Message: `must be a duration such as "5s" or "1m30s", got "5" (sets store.postgres.connectionTimeout)`}},
		},
		{
			name: "empty number",
			env:  []string{"ATOLL_DIAGNOSTICS_PORT="},
			want: validate.Errors{{Field: "ATOLL_DIAGNOSTICS_PORT", Message: `must be an integer, got "" (sets diagnostics.port)`}},
		},
		{
			name: "every problem at once",
			env:  []string{"ATOLL_DP_SERVER_PORT=x", "ATOLL_MODE=zone", "ATOLL_KDS_SERVER_PORT=99999999999999999999"},
			want: validate.Errors{
				{Field: "ATOLL_DP_SERVER_PORT", Message: `must be an integer, got "x" (sets dpServer.port)`},
				{Field: "ATOLL_KDS_SERVER_PORT", Message: `must be an integer, got "99999999999999999999" (sets kdsServer.port)`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			_, err := ApplyEnv(&cfg, tt.env)
			require.Equal(t, tt.want, err)
			require.Equal(t, Default(), cfg, "a failed ApplyEnv leaves the config unchanged")
		})
	}
}

func TestEnvNames(t *testing.T) {
	// Every key and its variable. Adding a key means adding it here: the
	// variable names are a public interface operators script against.
	want := map[string]string{
		"mode":                               "ATOLL_MODE",
		"environment":                        "ATOLL_ENVIRONMENT",
		"general.workDir":                    "ATOLL_GENERAL_WORK_DIR",
		"general.shutdownTimeout":            "ATOLL_GENERAL_SHUTDOWN_TIMEOUT",
		"multizone.zone.name":                "ATOLL_MULTIZONE_ZONE_NAME",
		"multizone.zone.globalAddress":       "ATOLL_MULTIZONE_ZONE_GLOBAL_ADDRESS",
		"store.type":                         "ATOLL_STORE_TYPE",
		"store.postgres.host":                "ATOLL_STORE_POSTGRES_HOST",
		"store.postgres.port":                "ATOLL_STORE_POSTGRES_PORT",
		"store.postgres.user":                "ATOLL_STORE_POSTGRES_USER",
		"store.postgres.password":            "ATOLL_STORE_POSTGRES_PASSWORD",
		"store.postgres.dbName":              "ATOLL_STORE_POSTGRES_DB_NAME",
		"store.postgres.tlsMode":             "ATOLL_STORE_POSTGRES_TLS_MODE",
		"store.postgres.maxConns":            "ATOLL_STORE_POSTGRES_MAX_CONNS",
		"store.postgres.operationTimeout":    "ATOLL_STORE_POSTGRES_OPERATION_TIMEOUT",
		"store.postgres.leaderLeaseDuration": "ATOLL_STORE_POSTGRES_LEADER_LEASE_DURATION",
		"store.postgres.tlsCaPath":           "ATOLL_STORE_POSTGRES_TLS_CA_PATH",
		"store.postgres.tlsCertPath":         "ATOLL_STORE_POSTGRES_TLS_CERT_PATH",
		"store.postgres.tlsKeyPath":          "ATOLL_STORE_POSTGRES_TLS_KEY_PATH",
		"store.postgres.connectionTimeout":   "ATOLL_STORE_POSTGRES_CONNECTION_TIMEOUT",
		"apiServer.http.interface":           "ATOLL_API_SERVER_HTTP_INTERFACE",
		"apiServer.http.port":                "ATOLL_API_SERVER_HTTP_PORT",
		"apiServer.https.enabled":            "ATOLL_API_SERVER_HTTPS_ENABLED",
		"apiServer.https.interface":          "ATOLL_API_SERVER_HTTPS_INTERFACE",
		"apiServer.https.port":               "ATOLL_API_SERVER_HTTPS_PORT",
		"apiServer.https.tlsCertFile":        "ATOLL_API_SERVER_HTTPS_TLS_CERT_FILE",
		"apiServer.https.tlsKeyFile":         "ATOLL_API_SERVER_HTTPS_TLS_KEY_FILE",
		"apiServer.readOnly":                 "ATOLL_API_SERVER_READ_ONLY",
		"apiServer.corsAllowedDomains":       "ATOLL_API_SERVER_CORS_ALLOWED_DOMAINS",
		"dpServer.port":                      "ATOLL_DP_SERVER_PORT",
		"dpServer.tlsCertFile":               "ATOLL_DP_SERVER_TLS_CERT_FILE",
		"dpServer.tlsKeyFile":                "ATOLL_DP_SERVER_TLS_KEY_FILE",
		"diagnostics.interface":              "ATOLL_DIAGNOSTICS_INTERFACE",
		"diagnostics.port":                   "ATOLL_DIAGNOSTICS_PORT",
		"diagnostics.debugEndpoints":         "ATOLL_DIAGNOSTICS_DEBUG_ENDPOINTS",
		"kdsServer.port":                     "ATOLL_KDS_SERVER_PORT",
		"kdsServer.tlsCertFile":              "ATOLL_KDS_SERVER_TLS_CERT_FILE",
		"kdsServer.tlsKeyFile":               "ATOLL_KDS_SERVER_TLS_KEY_FILE",
		"defaults.skipMeshCreation":          "ATOLL_DEFAULTS_SKIP_MESH_CREATION",
		"logging.level":                      "ATOLL_LOGGING_LEVEL",
		"logging.format":                     "ATOLL_LOGGING_FORMAT",
	}

	vars := EnvVars()
	got := map[string]string{}
	var names []string
	for _, v := range vars {
		got[v.Path] = v.Name
		names = append(names, v.Name)
		require.Equal(t, v.Name, EnvName(v.Path))
	}
	require.Equal(t, want, got)
	require.True(t, slices.IsSorted(names), "EnvVars is sorted by name")
	require.Len(t, slices.Compact(slices.Clone(names)), len(names), "no two keys share a variable")

	t.Run("each variable sets its key", func(t *testing.T) {
		for _, v := range vars {
			// Setting every variable to its own default is a no-op...
			cfg := Default()
			unknown, err := ApplyEnv(&cfg, []string{v.Name + "=" + v.Default})
			require.NoError(t, err, v.Name)
			require.Empty(t, unknown)
			require.Equal(t, Default(), cfg, v.Name)
		}
		// ...and setting one to something else changes exactly its key.
		cfg := Default()
		_, err := ApplyEnv(&cfg, []string{"ATOLL_STORE_POSTGRES_DB_NAME=other"})
		require.NoError(t, err)
		want := Default()
		want.Store.Postgres.DBName = "other"
		require.Equal(t, want, cfg)
	})
}

func TestUpperSnake(t *testing.T) {
	tests := map[string]string{
		"mode":               "MODE",
		"apiServer":          "API_SERVER",
		"dbName":             "DB_NAME",
		"tlsCertFile":        "TLS_CERT_FILE",
		"corsAllowedDomains": "CORS_ALLOWED_DOMAINS",
		"http":               "HTTP",
		"https":              "HTTPS",
		"HTTPPort":           "HTTP_PORT",
		"http2Enabled":       "HTTP2_ENABLED",
		"v2Port":             "V2_PORT",
		"kdsServer":          "KDS_SERVER",
	}
	for in, want := range tests {
		require.Equal(t, want, upperSnake(in), in)
	}
	require.Equal(t, "ATOLL_API_SERVER_HTTP_PORT", EnvName("apiServer.http.port"))
	require.Equal(t, "ATOLL_STORE_POSTGRES_DB_NAME", EnvName("store.postgres.dbName"))
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		contains []string
	}{
		{
			name:     "unknown top-level key",
			file:     "mdoe: zone\n",
			contains: []string{"mdoe: unknown field"},
		},
		{
			name:     "unknown nested key names its full path",
			file:     "apiServer:\n  http:\n    prot: 6000\n",
			contains: []string{"apiServer.http.prot: unknown field"},
		},
		{
			name: "every problem at once",
			file: "apiServer:\n  http:\n    port: high\nstore:\n  postgres:\n    connectionTimeout: 5\n    dbname: x\n",
			contains: []string{
				"apiServer.http.port: must be an integer",
				`store.postgres.connectionTimeout: must be a duration string such as "5s"`,
				"store.postgres.dbname: unknown field",
			},
		},
		{
			name:     "bad duration text",
			file:     "general:\n  shutdownTimeout: soon\n",
			contains: []string{`general.shutdownTimeout: must be a duration such as "5s" or "1m30s", got "soon"`},
		},
		{
			name:     "section given as a scalar",
			file:     "store: memory\n",
			contains: []string{"store: must be an object"},
		},
		{
			name:     "malformed YAML",
			file:     "mode: [zone\n",
			contains: []string{"malformed YAML"},
		},
		{
			name:     "duplicate key",
			file:     "mode: zone\nmode: global\n",
			contains: []string{"malformed YAML", "mode"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file)
			_, _, err := Load(path, nil)
			require.Error(t, err)
			require.Contains(t, err.Error(), path, "the message names the file")
			for _, c := range tt.contains {
				require.Contains(t, err.Error(), c)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		_, _, err := Load(filepath.Join(t.TempDir(), "absent.yaml"), nil)
		require.ErrorIs(t, err, os.ErrNotExist)
		require.Contains(t, err.Error(), "reading config file")
	})
}
