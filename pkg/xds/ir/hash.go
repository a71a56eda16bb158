package ir

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Hash returns a content hash of p: equal proxies (after Normalize) hash
// equal, in every process and on every run, and any change of a field changes
// it. It is meant as an xDS version; secrets are included, so a rotated
// certificate yields a new version. Combine it with translate.Revision, which
// changes when the same IR would translate differently.
func (p *Proxy) Hash() (string, error) {
	h := sha256.New()
	// encoding/json writes struct fields in declaration order and map keys
	// sorted, which makes the encoding canonical for a normalized proxy.
	if err := json.NewEncoder(h).Encode(p); err != nil {
		return "", fmt.Errorf("hashing proxy %s/%s: %w", p.Identity.Mesh, p.Identity.Dataplane, err)
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16]), nil
}
