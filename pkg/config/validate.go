package config

import (
	"net"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/atoll-mesh/atoll/api/validate"
)

// Validate returns every problem of the configuration, each naming its key
// path, as validate.Errors; nil when there is none.
func (c Config) Validate() error {
	var errs validate.Errors
	errs.Append(validate.OneOf("mode", string(c.Mode),
		string(ModeStandalone), string(ModeZone), string(ModeGlobal)))
	errs.Append(validate.OneOf("environment", string(c.Environment),
		string(EnvironmentUniversal), string(EnvironmentKubernetes)))
	if c.General.ShutdownTimeout <= 0 {
		errs.Add("general.shutdownTimeout", "must be positive, got %s", c.General.ShutdownTimeout)
	}
	errs.Append(c.validateMultizone())
	errs.Append(c.validateStore())
	errs.Append(c.validateServers())
	errs.Append(validate.OneOf("logging.level", string(c.Logging.Level),
		string(LogDebug), string(LogInfo), string(LogWarn), string(LogError)))
	errs.Append(validate.OneOf("logging.format", string(c.Logging.Format),
		string(LogText), string(LogJSON)))
	return errs.OrNil()
}

func (c Config) validateMultizone() validate.Errors {
	var errs validate.Errors
	zone := c.Multizone.Zone
	const namePath validate.Path = "multizone.zone.name"
	switch {
	case zone.Name == "" && c.Mode == ModeZone:
		errs.Add(namePath, "is required in zone mode")
	case zone.Name != "":
		errs.Append(validate.Name(namePath, zone.Name))
		if len(zone.Name) > 63 {
			// The name becomes the value of the kuma.io/zone label.
			errs.Add(namePath, "must be at most 63 characters long")
		}
	}
	if zone.GlobalAddress != "" {
		const addrPath validate.Path = "multizone.zone.globalAddress"
		u, err := url.Parse(zone.GlobalAddress)
		switch {
		case err != nil:
			errs.Add(addrPath, "must be a URL such as \"grpcs://global-cp:5685\": %v", err)
		case u.Scheme != "grpc" && u.Scheme != "grpcs":
			errs.Add(addrPath, "must use the grpc or grpcs scheme, as in \"grpcs://global-cp:5685\", got %q", zone.GlobalAddress)
		case u.Hostname() == "" || u.Port() == "":
			errs.Add(addrPath, "must name a host and a port, as in \"grpcs://global-cp:5685\", got %q", zone.GlobalAddress)
		}
	}
	return errs
}

func (c Config) validateStore() validate.Errors {
	var errs validate.Errors
	errs.Append(validate.OneOf("store.type", string(c.Store.Type),
		string(StoreMemory), string(StorePostgres)))
	if c.Mode == ModeGlobal && c.Store.Type != StorePostgres {
		errs.Add("store.type", "global mode requires %q, got %q", StorePostgres, c.Store.Type)
	}
	pg := c.Store.Postgres
	errs.Append(validate.OneOf("store.postgres.tlsMode", string(pg.TLSMode),
		string(TLSDisable), string(TLSPrefer), string(TLSRequire), string(TLSVerifyCA), string(TLSVerifyFull)))
	if c.Store.Type != StorePostgres {
		return errs
	}
	for _, required := range []struct {
		path  validate.Path
		value string
	}{
		{"store.postgres.host", pg.Host},
		{"store.postgres.user", pg.User},
		{"store.postgres.dbName", pg.DBName},
	} {
		if required.value == "" {
			errs.Add(required.path, "is required when store.type is %q", StorePostgres)
		}
	}
	errs.Append(port("store.postgres.port", pg.Port))
	if pg.MaxConns < 1 {
		errs.Add("store.postgres.maxConns", "must be at least 1, got %d", pg.MaxConns)
	}
	if pg.ConnectionTimeout <= 0 {
		errs.Add("store.postgres.connectionTimeout", "must be positive, got %s", pg.ConnectionTimeout)
	}
	if pg.OperationTimeout <= 0 {
		errs.Add("store.postgres.operationTimeout", "must be positive, got %s", pg.OperationTimeout)
	}
	if pg.LeaderLeaseDuration.Std() < time.Second {
		errs.Add("store.postgres.leaderLeaseDuration", "must be at least 1s, got %s", pg.LeaderLeaseDuration)
	}
	return errs
}

// listener is one port the configuration asks the process to bind.
type listener struct {
	path  validate.Path
	port  int
	bound bool // whether this mode and configuration actually listen on it
}

func (c Config) validateServers() validate.Errors {
	var errs validate.Errors
	api := c.APIServer
	errs.Append(iface("apiServer.http.interface", api.HTTP.Interface))
	errs.Append(iface("apiServer.https.interface", api.HTTPS.Interface))
	errs.Append(iface("diagnostics.interface", c.Diagnostics.Interface))
	errs.Append(certPair("apiServer.https", api.HTTPS.TLSCertFile, api.HTTPS.TLSKeyFile))
	errs.Append(certPair("dpServer", c.DPServer.TLSCertFile, c.DPServer.TLSKeyFile))
	errs.Append(certPair("kdsServer", c.KDSServer.TLSCertFile, c.KDSServer.TLSKeyFile))
	for i, domain := range api.CORSAllowedDomains {
		if _, err := regexp.Compile(domain); err != nil {
			errs.Add(validate.Path("apiServer.corsAllowedDomains").Index(i), "must be a regular expression: %v", err)
		}
	}

	listeners := []listener{
		{"apiServer.http.port", api.HTTP.Port, true},
		{"apiServer.https.port", api.HTTPS.Port, api.HTTPS.Enabled},
		{"dpServer.port", c.DPServer.Port, c.Mode != ModeGlobal},
		{"diagnostics.port", c.Diagnostics.Port, true},
		{"kdsServer.port", c.KDSServer.Port, c.Mode == ModeGlobal},
	}
	usedBy := map[int]validate.Path{}
	for _, l := range listeners {
		if bad := port(l.path, l.port); len(bad) > 0 {
			errs.Append(bad)
			continue
		}
		if !l.bound {
			continue
		}
		if other, taken := usedBy[l.port]; taken {
			errs.Add(l.path, "port %d is already used by %s", l.port, other)
			continue
		}
		usedBy[l.port] = l.path
	}
	return errs
}

// port checks a TCP port number.
func port(p validate.Path, n int) validate.Errors {
	var errs validate.Errors
	if n < 1 || n > 65535 {
		errs.Add(p, "must be a port number between 1 and 65535, got %d", n)
	}
	return errs
}

// iface checks a bind address: empty (every interface), an IP address or a
// host name, without a port.
func iface(p validate.Path, s string) validate.Errors {
	var errs validate.Errors
	if s == "" || net.ParseIP(s) != nil {
		return errs
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		errs.Add(p, "must be an address without a port (the port is set separately), got %q", s)
		return errs
	}
	if _, err := strconv.Atoi(s); err == nil || !hostnameRe.MatchString(s) {
		errs.Add(p, "must be an IP address or a host name, got %q", s)
	}
	return errs
}

var hostnameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)

// certPair checks that a certificate and its key are given together.
func certPair(section validate.Path, cert, key string) validate.Errors {
	var errs validate.Errors
	switch {
	case cert != "" && key == "":
		errs.Add(section.Field("tlsKeyFile"), "must be set together with %s", section.Field("tlsCertFile"))
	case cert == "" && key != "":
		errs.Add(section.Field("tlsCertFile"), "must be set together with %s", section.Field("tlsKeyFile"))
	}
	return errs
}
