// Package config is the configuration of atoll-cp: a typed Config with
// defaults (Default), read from an optional YAML file and ATOLL_* environment
// variables (Load), checked as a whole (Config.Validate) and rendered back as
// YAML with secrets masked (Config.Marshal).
//
// Every key has a path, the camelCase YAML keys joined by dots (for example
// "apiServer.http.port"), and an environment variable derived from it:
// "ATOLL_" followed by each path element in UPPER_SNAKE case, joined by "_"
// ("ATOLL_API_SERVER_HTTP_PORT"). Precedence, lowest first: defaults, the
// file, the environment, then command-line flags applied by the binary.
//
// Durations are Go duration strings ("5s", "1m30s"). Lists given through the
// environment are comma-separated.
package config

import "time"

// Mode is how a control plane takes part in a multi-zone deployment.
type Mode string

// Modes a control plane runs in.
const (
	// ModeStandalone is a single control plane that owns its data planes and
	// talks to no other control plane.
	ModeStandalone Mode = "standalone"
	// ModeZone drives the data planes of one zone and syncs with a global
	// control plane.
	ModeZone Mode = "zone"
	// ModeGlobal keeps meshes and policies for every zone and syncs them to
	// zone control planes; it drives no data planes itself.
	ModeGlobal Mode = "global"
)

// Environment is the platform a control plane runs on.
type Environment string

// Environments a control plane runs on.
const (
	// EnvironmentUniversal is plain hosts or VMs ("universal" in Kuma terms).
	EnvironmentUniversal Environment = "universal"
	// EnvironmentKubernetes is a Kubernetes cluster.
	EnvironmentKubernetes Environment = "kubernetes"
)

// StoreType names a resource store backend.
type StoreType string

// Store backends.
const (
	// StoreMemory keeps resources in process memory; they are lost on restart
	// and cannot be shared between instances.
	StoreMemory StoreType = "memory"
	// StorePostgres keeps resources in PostgreSQL; required for a global
	// control plane and for several instances of one zone.
	StorePostgres StoreType = "postgres"
)

// TLSMode is how the control plane secures its PostgreSQL connection. The
// values mirror libpq's sslmode in camelCase.
type TLSMode string

// PostgreSQL TLS modes.
const (
	// TLSDisable never uses TLS.
	TLSDisable TLSMode = "disable"
	// TLSPrefer uses TLS when the server offers it, without verifying it.
	TLSPrefer TLSMode = "prefer"
	// TLSRequire always uses TLS, without verifying the server certificate.
	TLSRequire TLSMode = "require"
	// TLSVerifyCA always uses TLS and verifies the server certificate chain.
	TLSVerifyCA TLSMode = "verifyCa"
	// TLSVerifyFull is TLSVerifyCA that also checks the server host name.
	TLSVerifyFull TLSMode = "verifyFull"
)

// LogLevel is the least severe log level written.
type LogLevel string

// Log levels.
const (
	// LogDebug writes everything.
	LogDebug LogLevel = "debug"
	// LogInfo writes informational messages, warnings and errors.
	LogInfo LogLevel = "info"
	// LogWarn writes warnings and errors.
	LogWarn LogLevel = "warn"
	// LogError writes errors only.
	LogError LogLevel = "error"
)

// LogFormat is how log records are written.
type LogFormat string

// Log formats.
const (
	// LogText writes logfmt-style key=value lines.
	LogText LogFormat = "text"
	// LogJSON writes one JSON object per line.
	LogJSON LogFormat = "json"
)

// Config is the whole atoll-cp configuration. Its zero value is not useful:
// start from Default.
type Config struct {
	// Mode is standalone, zone or global (ATOLL_MODE).
	Mode Mode `json:"mode"`
	// Environment is universal or kubernetes (ATOLL_ENVIRONMENT).
	Environment Environment `json:"environment"`
	// General holds process-wide settings.
	General General `json:"general"`
	// Multizone configures how this control plane joins a multi-zone deployment.
	Multizone Multizone `json:"multizone"`
	// Store selects and configures the resource store.
	Store Store `json:"store"`
	// APIServer configures the REST API (and the GUI it serves).
	APIServer APIServer `json:"apiServer"`
	// DPServer configures the data-plane server (bootstrap and ADS).
	DPServer DPServer `json:"dpServer"`
	// Diagnostics configures the health, readiness, metrics and pprof server.
	Diagnostics Diagnostics `json:"diagnostics"`
	// KDSServer configures the server zones connect to (global mode only).
	KDSServer KDSServer `json:"kdsServer"`
	// Defaults controls the resources created on first start.
	Defaults Defaults `json:"defaults"`
	// Logging controls log output.
	Logging Logging `json:"logging"`
}

// General holds process-wide settings.
type General struct {
	// WorkDir is where the control plane keeps files it generates, such as
	// auto-generated certificates. Empty means a directory chosen by the
	// binary under the system temporary directory.
	WorkDir string `json:"workDir"`
	// ShutdownTimeout bounds how long components get to stop after the
	// process is asked to exit.
	ShutdownTimeout Duration `json:"shutdownTimeout"`
}

// Multizone configures multi-zone deployments.
type Multizone struct {
	// Zone applies in zone mode.
	Zone Zone `json:"zone"`
}

// Zone configures a zone control plane.
type Zone struct {
	// Name of this zone; required in zone mode. It becomes the kuma.io/zone
	// label of everything the zone reports.
	Name string `json:"name"`
	// GlobalAddress is the KDS address of the global control plane, for
	// example "grpcs://global-cp:5685". Empty runs the zone unconnected.
	GlobalAddress string `json:"globalAddress"`
}

// Store selects and configures the resource store.
type Store struct {
	// Type is memory or postgres (ATOLL_STORE_TYPE).
	Type StoreType `json:"type"`
	// Postgres applies when Type is postgres.
	Postgres Postgres `json:"postgres"`
}

// Postgres configures the PostgreSQL store.
type Postgres struct {
	// Host of the PostgreSQL server.
	Host string `json:"host"`
	// Port of the PostgreSQL server.
	Port int `json:"port"`
	// User to connect as.
	User string `json:"user"`
	// Password of User. Marshal masks it.
	Password string `json:"password"`
	// DBName is the database holding Atoll's tables.
	DBName string `json:"dbName"`
	// TLSMode is disable, prefer, require, verifyCa or verifyFull.
	TLSMode TLSMode `json:"tlsMode"`
	// TLSCAPath is the CA bundle verifying the server (verifyCa, verifyFull).
	TLSCAPath string `json:"tlsCaPath"`
	// TLSCertPath is a client certificate, for servers that require one.
	TLSCertPath string `json:"tlsCertPath"`
	// TLSKeyPath is the client certificate's key.
	TLSKeyPath string `json:"tlsKeyPath"`
	// MaxConns caps the connection pool (the change listener and the leader
	// lease use one more connection each).
	MaxConns int `json:"maxConns"`
	// ConnectionTimeout bounds establishing one connection.
	ConnectionTimeout Duration `json:"connectionTimeout"`
	// OperationTimeout bounds each store operation, so a dead server makes
	// requests fail (503) instead of hanging.
	OperationTimeout Duration `json:"operationTimeout"`
	// LeaderLeaseDuration is how long the leader's lease lasts without
	// renewal: the longest leader-only work (defaults, clean-up) waits after
	// the leader dies.
	LeaderLeaseDuration Duration `json:"leaderLeaseDuration"`
}

// APIServer configures the REST API.
type APIServer struct {
	// HTTP is the plain-text listener.
	HTTP HTTPListener `json:"http"`
	// HTTPS is the TLS listener.
	HTTPS HTTPSListener `json:"https"`
	// ReadOnly rejects every write through the API.
	ReadOnly bool `json:"readOnly"`
	// CORSAllowedDomains are regular expressions matched against the Origin
	// of cross-origin requests; empty allows none (the GUI is same-origin).
	CORSAllowedDomains []string `json:"corsAllowedDomains"`
}

// HTTPListener is a plain-text HTTP listener.
type HTTPListener struct {
	// Interface is the address to bind; "0.0.0.0" binds every IPv4 interface.
	Interface string `json:"interface"`
	// Port to listen on.
	Port int `json:"port"`
}

// HTTPSListener is a TLS listener.
type HTTPSListener struct {
	// Enabled turns the listener on.
	Enabled bool `json:"enabled"`
	// Interface is the address to bind; "0.0.0.0" binds every IPv4 interface.
	Interface string `json:"interface"`
	// Port to listen on.
	Port int `json:"port"`
	// TLSCertFile is a PEM certificate chain; with TLSKeyFile empty too, a
	// certificate is generated.
	TLSCertFile string `json:"tlsCertFile"`
	// TLSKeyFile is the PEM private key of TLSCertFile.
	TLSKeyFile string `json:"tlsKeyFile"`
}

// DPServer configures the data-plane server.
type DPServer struct {
	// Port to listen on.
	Port int `json:"port"`
	// TLSCertFile is a PEM certificate chain; with TLSKeyFile empty too, a
	// certificate is generated.
	TLSCertFile string `json:"tlsCertFile"`
	// TLSKeyFile is the PEM private key of TLSCertFile.
	TLSKeyFile string `json:"tlsKeyFile"`
}

// Diagnostics configures the diagnostics server.
type Diagnostics struct {
	// Interface is the address to bind; "0.0.0.0" binds every IPv4 interface.
	Interface string `json:"interface"`
	// Port to listen on.
	Port int `json:"port"`
	// DebugEndpoints serves Go's pprof handlers under /debug/pprof/.
	DebugEndpoints bool `json:"debugEndpoints"`
}

// KDSServer configures the multi-zone sync server of a global control plane.
type KDSServer struct {
	// Port to listen on (ATOLL_KDS_SERVER_PORT).
	Port int `json:"port"`
	// TLSCertFile is a PEM certificate chain; with TLSKeyFile empty too, a
	// certificate is generated.
	TLSCertFile string `json:"tlsCertFile"`
	// TLSKeyFile is the PEM private key of TLSCertFile.
	TLSKeyFile string `json:"tlsKeyFile"`
}

// Defaults controls the resources created on first start.
type Defaults struct {
	// SkipMeshCreation stops the control plane from creating the "default"
	// mesh when no mesh exists.
	SkipMeshCreation bool `json:"skipMeshCreation"`
}

// Logging controls log output.
type Logging struct {
	// Level is debug, info, warn or error.
	Level LogLevel `json:"level"`
	// Format is text or json.
	Format LogFormat `json:"format"`
}

// Default ports, the same numbers Kuma uses.
const (
	// DefaultAPIServerHTTPPort serves the REST API and GUI.
	DefaultAPIServerHTTPPort = 5681
	// DefaultAPIServerHTTPSPort serves the REST API over TLS.
	DefaultAPIServerHTTPSPort = 5682
	// DefaultDPServerPort serves data-plane bootstrap and ADS.
	DefaultDPServerPort = 5678
	// DefaultDiagnosticsPort serves /healthy, /ready, /metrics and pprof.
	DefaultDiagnosticsPort = 5680
	// DefaultKDSServerPort serves zone control planes (global mode).
	DefaultKDSServerPort = 5685
	// DefaultPostgresPort is PostgreSQL's standard port.
	DefaultPostgresPort = 5432
)

// Default returns the configuration atoll-cp runs with when nothing is set:
// a standalone, universal control plane with an in-memory store.
func Default() Config {
	return Config{
		Mode:        ModeStandalone,
		Environment: EnvironmentUniversal,
		General: General{
			ShutdownTimeout: Duration(15 * time.Second),
		},
		Store: Store{
			Type: StoreMemory,
			Postgres: Postgres{
				Host:                "127.0.0.1",
				Port:                DefaultPostgresPort,
				User:                "atoll",
				DBName:              "atoll",
				TLSMode:             TLSDisable,
				MaxConns:            50,
				ConnectionTimeout:   Duration(5 * time.Second),
				OperationTimeout:    Duration(10 * time.Second),
				LeaderLeaseDuration: Duration(15 * time.Second),
			},
		},
		APIServer: APIServer{
			HTTP: HTTPListener{Interface: "0.0.0.0", Port: DefaultAPIServerHTTPPort},
			HTTPS: HTTPSListener{
				Enabled:   true,
				Interface: "0.0.0.0",
				Port:      DefaultAPIServerHTTPSPort,
			},
			CORSAllowedDomains: []string{},
		},
		DPServer:    DPServer{Port: DefaultDPServerPort},
		Diagnostics: Diagnostics{Interface: "0.0.0.0", Port: DefaultDiagnosticsPort},
		KDSServer:   KDSServer{Port: DefaultKDSServerPort},
		Logging:     Logging{Level: LogInfo, Format: LogText},
	}
}
