// Package mesh holds the Mesh type: an isolated tenant with its own identity
// (mTLS backends), routing and networking defaults. Its fields sit at the top
// level of the resource document, as in Kuma's universal format.
package mesh

import (
	"encoding/json"

	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/validate"
)

// Spec is a Mesh.
type Spec struct {
	// MTLS configures the mesh's certificate authorities.
	MTLS *MTLS `json:"mtls,omitempty"`
	// Networking holds mesh-wide networking switches.
	Networking *Networking `json:"networking,omitempty"`
	// Routing holds mesh-wide routing switches.
	Routing *Routing `json:"routing,omitempty"`
	// MeshServices sets how MeshService resources are used.
	MeshServices *MeshServices `json:"meshServices,omitempty"`
	// SkipCreatingInitialPolicies lists default policies not to create with
	// the mesh ("*" for all).
	SkipCreatingInitialPolicies []string `json:"skipCreatingInitialPolicies,omitempty"`
	// Constraints restrict which dataplanes may join the mesh.
	Constraints *Constraints `json:"constraints,omitempty"`
	// Tracing is Kuma's legacy tracing section; stored, not acted on.
	Tracing json.RawMessage `json:"tracing,omitempty"`
	// Logging is Kuma's legacy logging section; stored, not acted on.
	Logging json.RawMessage `json:"logging,omitempty"`
	// Metrics is Kuma's legacy metrics section; stored, not acted on.
	Metrics json.RawMessage `json:"metrics,omitempty"`
}

// MTLS lists certificate authority backends and which one is active.
type MTLS struct {
	// EnabledBackend names the active backend; empty means mTLS is off.
	EnabledBackend string `json:"enabledBackend,omitempty"`
	// Backends are the available CAs.
	Backends []Backend `json:"backends,omitempty"`
	// SkipValidation skips checking a provided CA when the mesh is saved.
	SkipValidation bool `json:"skipValidation,omitempty"`
}

// Backend types.
const (
	BackendBuiltin  = "builtin"
	BackendProvided = "provided"
)

// mTLS modes.
const (
	ModeStrict     = "STRICT"
	ModePermissive = "PERMISSIVE"
)

// Backend is one certificate authority.
type Backend struct {
	// Name identifies the backend within the mesh.
	Name string `json:"name"`
	// Type is "builtin" (generated CA) or "provided" (a CA from secrets).
	Type string `json:"type"`
	// Mode is STRICT (mTLS only) or PERMISSIVE (mTLS and plaintext accepted).
	Mode string `json:"mode,omitempty"`
	// DPCert configures the workload certificates the CA issues.
	DPCert *DPCert `json:"dpCert,omitempty"`
	// Conf is the backend's type-specific configuration.
	Conf *BackendConf `json:"conf,omitempty"`
	// RootChain configures fetching the root chain.
	RootChain *RootChain `json:"rootChain,omitempty"`
}

// DPCert configures workload certificates.
type DPCert struct {
	// Rotation sets the certificate lifetime.
	Rotation *Rotation `json:"rotation,omitempty"`
	// RequestTimeout bounds issuing one certificate.
	RequestTimeout duration.Duration `json:"requestTimeout,omitempty"`
}

// Rotation sets the lifetime of workload certificates; they are renewed at
// four fifths of it.
type Rotation struct {
	// Expiration is the certificate lifetime, for example "24h" or "1d".
	Expiration duration.Duration `json:"expiration,omitempty"`
}

// RootChain configures fetching the CA's root chain.
type RootChain struct {
	// RequestTimeout bounds fetching the chain.
	RequestTimeout duration.Duration `json:"requestTimeout,omitempty"`
}

// BackendConf is the union of the builtin and provided backend settings.
type BackendConf struct {
	// CACert configures the generated CA (builtin).
	CACert *CACert `json:"caCert,omitempty"`
	// Cert is the CA certificate (provided).
	Cert *DataSource `json:"cert,omitempty"`
	// Key is the CA private key (provided).
	Key *DataSource `json:"key,omitempty"`
}

// CACert configures a generated CA.
type CACert struct {
	// RSAbits is the RSA key size (Kuma's spelling is kept).
	RSAbits uint32 `json:"RSAbits,omitempty"`
	// Expiration is the CA lifetime, for example "10y".
	Expiration duration.Duration `json:"expiration,omitempty"`
}

// DataSource points at secret bytes: exactly one field is set.
type DataSource struct {
	// Secret names a Secret in the same mesh.
	Secret string `json:"secret,omitempty"`
	// File is a path on the control plane's host.
	File string `json:"file,omitempty"`
	// Inline holds the bytes (base64 in JSON).
	Inline []byte `json:"inline,omitempty"`
	// InlineString holds the bytes as text.
	InlineString string `json:"inlineString,omitempty"`
}

// Networking holds mesh-wide networking switches.
type Networking struct {
	// Outbound configures traffic leaving the mesh.
	Outbound *Outbound `json:"outbound,omitempty"`
}

// Outbound configures traffic to destinations outside the mesh.
type Outbound struct {
	// Passthrough lets proxies forward traffic to unknown destinations.
	Passthrough *bool `json:"passthrough,omitempty"`
}

// Routing holds mesh-wide routing switches.
type Routing struct {
	// LocalityAwareLoadBalancing prefers endpoints in the same zone.
	LocalityAwareLoadBalancing bool `json:"localityAwareLoadBalancing,omitempty"`
	// ZoneEgress routes cross-zone and external traffic through zone egress.
	ZoneEgress bool `json:"zoneEgress,omitempty"`
	// DefaultForbidMeshExternalServiceAccess denies MeshExternalService traffic unless permitted.
	DefaultForbidMeshExternalServiceAccess bool `json:"defaultForbidMeshExternalServiceAccess,omitempty"`
}

// MeshServices sets how MeshService resources are used.
type MeshServices struct {
	// Mode is Disabled, Everywhere, ReachableBackends or Exclusive.
	Mode string `json:"mode,omitempty"`
}

// Constraints restrict which dataplanes may join the mesh.
type Constraints struct {
	// DataplaneProxy holds tag requirements and restrictions.
	DataplaneProxy *DataplaneProxyConstraints `json:"dataplaneProxy,omitempty"`
}

// DataplaneProxyConstraints lists tag sets a dataplane must match or must not match.
type DataplaneProxyConstraints struct {
	// Requirements: a dataplane must match at least one when any are given.
	Requirements []TagRule `json:"requirements,omitempty"`
	// Restrictions: a dataplane must match none.
	Restrictions []TagRule `json:"restrictions,omitempty"`
}

// TagRule matches dataplanes whose inbounds carry all tags ("*" matches any value).
type TagRule struct {
	// Tags to match.
	Tags map[string]string `json:"tags,omitempty"`
}

// Validate reports every problem of the mesh, with Kuma's field paths.
func (s *Spec) Validate() validate.Errors {
	var errs validate.Errors
	if m := s.MTLS; m != nil {
		p := validate.Path("mtls")
		seen := map[string]bool{}
		found := m.EnabledBackend == ""
		for i := range m.Backends {
			b := &m.Backends[i]
			bp := p.Field("backends").Index(i)
			errs.Append(b.validate(bp))
			if seen[b.Name] {
				errs.Add(bp.Field("name"), "%q is used by more than one backend", b.Name)
			}
			seen[b.Name] = true
			if b.Name == m.EnabledBackend {
				found = true
			}
		}
		if !found {
			errs.Add(p.Field("enabledBackend"), "has to be set to one of the backends in the mesh")
		}
	}
	if s.Routing != nil && s.Routing.ZoneEgress && (s.MTLS == nil || s.MTLS.EnabledBackend == "") {
		errs.Add("mtls", "has to be set when zoneEgress enabled")
	}
	if s.MeshServices != nil && s.MeshServices.Mode != "" {
		errs.Append(validate.OneOf(validate.Path("meshServices").Field("mode"), s.MeshServices.Mode,
			"Disabled", "Everywhere", "ReachableBackends", "Exclusive"))
	}
	return errs
}

func (b *Backend) validate(p validate.Path) validate.Errors {
	var errs validate.Errors
	if b.Name == "" {
		errs.Add(p.Field("name"), "must not be empty")
	}
	errs.Append(validate.OneOf(p.Field("type"), b.Type, BackendBuiltin, BackendProvided))
	if b.Mode != "" {
		errs.Append(validate.OneOf(p.Field("mode"), b.Mode, ModeStrict, ModePermissive))
	}
	if b.DPCert != nil && b.DPCert.Rotation != nil && b.DPCert.Rotation.Expiration.IsSet() {
		ep := p.Field("dpCert").Field("rotation").Field("expiration")
		if d, err := b.DPCert.Rotation.Expiration.Parse(); err != nil {
			errs.Add(ep, "%s", err.Error())
		} else if d.Minutes() < 1 {
			errs.Add(ep, "must be at least 1m")
		}
	}
	cp := p.Field("conf")
	switch b.Type {
	case BackendBuiltin:
		if b.Conf != nil {
			if b.Conf.Cert != nil || b.Conf.Key != nil {
				errs.Add(cp, "cert and key can only be set on a provided backend")
			}
			if c := b.Conf.CACert; c != nil {
				if c.RSAbits != 0 && c.RSAbits < 2048 {
					errs.Add(cp.Field("caCert").Field("RSAbits"), "must be at least 2048")
				}
				if d, err := c.Expiration.Parse(); err != nil {
					errs.Add(cp.Field("caCert").Field("expiration"), "%s", err.Error())
				} else if c.Expiration.IsSet() && d <= 0 {
					errs.Add(cp.Field("caCert").Field("expiration"), "must be greater than zero")
				}
			}
		}
	case BackendProvided:
		if b.Conf == nil {
			errs.Add(cp, "must be set for a provided backend (cert and key)")
			break
		}
		if b.Conf.CACert != nil {
			errs.Add(cp.Field("caCert"), "can only be set on a builtin backend")
		}
		errs.Append(b.Conf.Cert.validate(cp.Field("cert")))
		errs.Append(b.Conf.Key.validate(cp.Field("key")))
	}
	return errs
}

func (d *DataSource) validate(p validate.Path) validate.Errors {
	var errs validate.Errors
	if d == nil {
		errs.Add(p, "must be set")
		return errs
	}
	n := 0
	for _, set := range []bool{d.Secret != "", d.File != "", len(d.Inline) > 0, d.InlineString != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		errs.Add(p, "exactly one of secret, file, inline or inlineString must be set")
	}
	return errs
}

// ActiveBackend returns the enabled mTLS backend, or nil when mTLS is off.
func (s *Spec) ActiveBackend() *Backend {
	if s.MTLS == nil || s.MTLS.EnabledBackend == "" {
		return nil
	}
	for i := range s.MTLS.Backends {
		if s.MTLS.Backends[i].Name == s.MTLS.EnabledBackend {
			return &s.MTLS.Backends[i]
		}
	}
	return nil
}
