package snapshot

import "flag"

// update is accepted so that "go test ./pkg/xds/... -update" runs here too;
// this package has no golden files.
var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")
