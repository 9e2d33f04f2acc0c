package main

import (
	"runtime/debug"
	"strings"

	"github.com/prometheus/common/version"

	checkpointexporter "github.com/checkpoint-exporter/checkpoint_exporter"
)

// stampVersion fills in the version when the linker did not (make build and
// make release set it with -ldflags; go build and go install do not).
func stampVersion() {
	if version.Version != "" {
		return
	}
	info, _ := debug.ReadBuildInfo()
	version.Version = fallbackVersion(info, checkpointexporter.Version())
}

// fallbackVersion prefers the module version Go recorded (go install
// ...@v1.2.3 records v1.2.3), then the VERSION file compiled in.
func fallbackVersion(info *debug.BuildInfo, file string) string {
	if info != nil {
		v := info.Main.Version
		if v != "" && v != "(devel)" {
			return strings.TrimPrefix(v, "v")
		}
	}
	if file != "" {
		return file
	}
	return "unknown"
}
