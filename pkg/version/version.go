// Package version says which build of Atoll is running. The release build
// stamps it through the linker:
//
//	go build -ldflags "\
//	  -X github.com/atoll-mesh/atoll/pkg/version.version=v0.3.0 \
//	  -X github.com/atoll-mesh/atoll/pkg/version.gitCommit=$(git rev-parse HEAD) \
//	  -X github.com/atoll-mesh/atoll/pkg/version.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
//
// Unstamped builds fall back to what the Go toolchain recorded in the binary
// (module version, VCS revision and time), then to "dev" and "unknown".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Product is the product name reported by every binary and by the REST API.
const Product = "Atoll"

// BasedOnKuma is the Kuma release whose API level Atoll follows; the REST
// API reports it as "basedOnKuma" so that Kuma tooling knows what to expect.
const BasedOnKuma = "2.14.3"

// These are written only by the linker (-ldflags -X); they are unexported so
// that no package can change them at run time. Read them through Get.
var (
	version   string
	gitCommit string
	buildDate string
)

// Info describes one build. Its JSON form uses the field names of Kuma's
// REST index ("product", "version", "basedOnKuma").
type Info struct {
	// Product is always Product.
	Product string `json:"product"`
	// Version is the release version, for example "v0.3.0", or "dev".
	Version string `json:"version"`
	// GitCommit is the source revision the binary was built from, or "unknown".
	GitCommit string `json:"gitCommit"`
	// BuildDate is when the binary was built (RFC 3339), or "unknown".
	BuildDate string `json:"buildDate"`
	// BasedOnKuma is always BasedOnKuma.
	BasedOnKuma string `json:"basedOnKuma"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	// Platform is "GOOS/GOARCH" of the binary.
	Platform string `json:"platform"`
}

// Get returns the running build's Info.
func Get() Info {
	info := Info{
		Product:     Product,
		Version:     version,
		GitCommit:   gitCommit,
		BuildDate:   buildDate,
		BasedOnKuma: BasedOnKuma,
		GoVersion:   runtime.Version(),
		Platform:    runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		fillFromBuildInfo(&info, bi)
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.GitCommit == "" {
		info.GitCommit = "unknown"
	}
	if info.BuildDate == "" {
		info.BuildDate = "unknown"
	}
	return info
}

// fillFromBuildInfo fills the fields the linker did not stamp from what the
// Go toolchain recorded.
func fillFromBuildInfo(info *Info, bi *debug.BuildInfo) {
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if info.GitCommit == "" {
				info.GitCommit = s.Value
			}
		case "vcs.time":
			if info.BuildDate == "" {
				info.BuildDate = s.Value
			}
		}
	}
}

// String returns a one-line summary, for example
// "Atoll v0.3.0 (commit 1a2b3c4, built 2026-01-02T03:04:05Z, based on Kuma 2.14.3, go1.26.8 linux/amd64)".
func (i Info) String() string {
	return fmt.Sprintf("%s %s (commit %s, built %s, based on Kuma %s, %s %s)",
		i.Product, i.Version, i.GitCommit, i.BuildDate, i.BasedOnKuma, i.GoVersion, i.Platform)
}
