// Package secret holds the Secret (mesh-scoped) and GlobalSecret types:
// opaque bytes such as CA keys and certificates, base64-encoded in JSON.
package secret

import "github.com/atoll-mesh/atoll/api/validate"

// MaxSize is the largest secret accepted, in bytes.
const MaxSize = 1 << 20

// Spec is a Secret or GlobalSecret. Its field sits at the top level of the
// document: {"type":"Secret","name":…,"mesh":…,"data":"<base64>"}.
type Spec struct {
	// Data is the secret value.
	Data []byte `json:"data"`
}

// Validate reports every problem of the secret.
func (s *Spec) Validate() validate.Errors {
	var errs validate.Errors
	switch {
	case len(s.Data) == 0:
		errs.Add("data", "cannot be empty")
	case len(s.Data) > MaxSize:
		errs.Add("data", "must be at most %d bytes", MaxSize)
	}
	return errs
}
