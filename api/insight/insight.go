// Package insight holds DataplaneInsight: what the control plane observed
// about a dataplane's connections (xDS subscriptions) and certificates.
// Insights are written by the control plane, never by users.
package insight

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/atoll-mesh/atoll/api/validate"
)

// DataplaneInsight is the observed state of one dataplane, named like it.
type DataplaneInsight struct {
	// Subscriptions are the xDS streams of the dataplane, oldest first.
	Subscriptions []Subscription `json:"subscriptions,omitempty"`
	// MTLS describes the dataplane's workload certificate.
	MTLS *MTLS `json:"mTLS,omitempty"`
}

// Subscription is one xDS stream from a dataplane to a control plane instance.
type Subscription struct {
	// ID identifies the stream.
	ID string `json:"id"`
	// ControlPlaneInstanceID is the instance that served it.
	ControlPlaneInstanceID string `json:"controlPlaneInstanceId"`
	// ConnectTime is when the stream opened.
	ConnectTime *time.Time `json:"connectTime,omitempty"`
	// DisconnectTime is when it closed; absent while connected.
	DisconnectTime *time.Time `json:"disconnectTime,omitempty"`
	// Status counts what was sent, acknowledged and rejected.
	Status SubscriptionStatus `json:"status"`
	// Version reports the data plane's software versions.
	Version *Version `json:"version,omitempty"`
}

// SubscriptionStatus counts discovery responses, in total and per type.
type SubscriptionStatus struct {
	// LastUpdateTime is when a response was last sent.
	LastUpdateTime *time.Time `json:"lastUpdateTime,omitempty"`
	// Total sums all types.
	Total DiscoveryStats `json:"total"`
	// CDS counts cluster responses.
	CDS DiscoveryStats `json:"cds"`
	// EDS counts endpoint responses.
	EDS DiscoveryStats `json:"eds"`
	// LDS counts listener responses.
	LDS DiscoveryStats `json:"lds"`
	// RDS counts route responses.
	RDS DiscoveryStats `json:"rds"`
	// LastNACK holds the text of the last rejection, if any.
	LastNACK string `json:"lastNack,omitempty"`
}

// DiscoveryStats counts responses of one kind.
type DiscoveryStats struct {
	// ResponsesSent counts responses sent.
	ResponsesSent Counter `json:"responsesSent"`
	// ResponsesAcknowledged counts ACKs.
	ResponsesAcknowledged Counter `json:"responsesAcknowledged"`
	// ResponsesRejected counts NACKs.
	ResponsesRejected Counter `json:"responsesRejected"`
}

// Version reports data-plane software versions.
type Version struct {
	// KumaDp is the agent's version (Kuma's field name is kept for tools).
	KumaDp *Component `json:"kumaDp,omitempty"`
	// Envoy is the proxy's version.
	Envoy *Component `json:"envoy,omitempty"`
	// Dependencies maps other components to versions.
	Dependencies map[string]string `json:"dependencies,omitempty"`
}

// Component is one piece of software's version.
type Component struct {
	// Version string.
	Version string `json:"version,omitempty"`
	// Build or commit.
	Build string `json:"build,omitempty"`
}

// MTLS describes a dataplane's workload certificate.
type MTLS struct {
	// CertificateExpirationTime is when the current certificate expires.
	CertificateExpirationTime *time.Time `json:"certificateExpirationTime,omitempty"`
	// LastCertificateRegeneration is when it was issued.
	LastCertificateRegeneration *time.Time `json:"lastCertificateRegeneration,omitempty"`
	// CertificateRegenerations counts issued certificates.
	CertificateRegenerations uint32 `json:"certificateRegenerations,omitempty"`
	// IssuedBackend names the CA backend that issued it.
	IssuedBackend string `json:"issuedBackend,omitempty"`
	// SupportedBackends lists backends the dataplane trusts.
	SupportedBackends []string `json:"supportedBackends,omitempty"`
}

// Counter is a count that JSON carries as a decimal string, as Kuma's
// protobuf-JSON does for 64-bit integers; numbers are accepted too.
type Counter uint64

// MarshalJSON writes the count as a string.
func (c Counter) MarshalJSON() ([]byte, error) {
	return json.Marshal(strconv.FormatUint(uint64(c), 10))
}

// UnmarshalJSON reads a string or a number.
func (c *Counter) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return err
		}
		*c = Counter(n)
		return nil
	}
	var n uint64
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*c = Counter(n)
	return nil
}

// IsOnline reports whether the dataplane's latest subscription is connected.
func (d *DataplaneInsight) IsOnline() bool {
	if len(d.Subscriptions) == 0 {
		return false
	}
	last := d.Subscriptions[len(d.Subscriptions)-1]
	return last.ConnectTime != nil && last.DisconnectTime == nil
}

// Validate reports every problem of the insight (none are checked today).
func (d *DataplaneInsight) Validate() validate.Errors { return nil }

// JSONSchema describes a counter for the OpenAPI document.
func (Counter) JSONSchema() map[string]any {
	return map[string]any{"type": "string", "pattern": "^[0-9]+$", "description": "unsigned 64-bit count as a decimal string"}
}
