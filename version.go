// Package checkpointexporter holds what belongs to the repository as a whole
// rather than to one package: the release version from the VERSION file,
// embedded so that a binary built with plain `go build` still knows it.
package checkpointexporter

import (
	_ "embed"
	"strings"
)

//go:embed VERSION
var versionFile string

// Version is the release version named in the VERSION file.
func Version() string { return strings.TrimSpace(versionFile) }
