// Package zone holds the Zone type: a zone control plane known to the global one.
package zone

import "github.com/atoll-mesh/atoll/api/validate"

// Spec is a Zone. Its field sits at the top level of the document.
type Spec struct {
	// Enabled says whether the zone may connect; absent means true.
	Enabled *bool `json:"enabled,omitempty"`
}

// IsEnabled reports whether the zone may connect.
func (s *Spec) IsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// Validate reports every problem of the zone (none are possible today).
func (s *Spec) Validate() validate.Errors { return nil }
