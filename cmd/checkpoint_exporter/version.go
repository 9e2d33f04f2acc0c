package main

import (
	"regexp"
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
// ...@v1.2.3 records v1.2.3), then the VERSION file compiled in. A
// pseudo-version that Go makes up from the VCS commit of a plain go build
// in a clone (v0.0.0-20261203162944-0123456789ab, +dirty) is no release: the
// VERSION file says better.
// untaggedPseudoVersion matches a Go pseudo-version with no tag behind it
// (go.dev/ref/mod#pseudo-versions).
var untaggedPseudoVersion = regexp.MustCompile(`^v0\.0\.0-[0-9]{14}-[0-9a-f]{12}(\+dirty)?$`)

func fallbackVersion(info *debug.BuildInfo, file string) string {
	if info != nil {
		v := info.Main.Version
		if v != "" && v != "(devel)" && !untaggedPseudoVersion.MatchString(v) {
			return strings.TrimPrefix(v, "v")
		}
	}
	if file != "" {
		return file
	}
	return "unknown"
}
