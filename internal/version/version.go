// Package version holds shipper's build identity. The Makefile stamps the
// variables with -ldflags; a plain `go build` reports "dev".
package version

import (
	"fmt"
	"runtime"
)

// Version and Commit are set at link time:
//
//	-X github.com/shipper-dev/shipper/internal/version.Version=v0.1.0
//	-X github.com/shipper-dev/shipper/internal/version.Commit=<git sha>
var (
	Version = "dev"
	Commit  = "unknown"
)

// Info is shipper's build identity.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the build identity of the running binary.
func Get() Info {
	return Info{
		Version:   Version,
		Commit:    Commit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
}

// String formats i as one line: "shipper v0.1.0 (commit abc1234, go1.26.8, linux/amd64)".
func (i Info) String() string {
	return fmt.Sprintf("shipper %s (commit %s, %s, %s)", i.Version, i.Commit, i.GoVersion, i.Platform)
}
