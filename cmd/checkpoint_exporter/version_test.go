package main

import (
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFallbackVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		file string
		want string
	}{
		{"go install @version", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "0.1.0", "1.2.3"},
		{"pseudo-version from VCS", &debug.BuildInfo{Main: debug.Module{Version: "v0.1.1-0.20261128172000-5592789abcde+dirty"}}, "0.1.0", "0.1.1-0.20261128172000-5592789abcde+dirty"},
		{"go build in a clone without release tags", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261203162944-0123456789ab+dirty"}}, "0.1.0", "0.1.0"},
		{"go build in a checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "0.1.0", "0.1.0"},
		{"no module version", &debug.BuildInfo{}, "0.1.0", "0.1.0"},
		{"no build info", nil, "0.1.0", "0.1.0"},
		{"nothing known", nil, "", "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fallbackVersion(tc.info, tc.file); got != tc.want {
				t.Errorf("fallbackVersion(%+v, %q) = %q, want %q", tc.info, tc.file, got, tc.want)
			}
		})
	}
}

// The test binary is built with plain go build (no -ldflags): --version must
// still name the release.
func TestVersionWithoutLdflags(t *testing.T) {
	data, err := os.ReadFile("../../VERSION")
	if err != nil {
		t.Fatal(err)
	}
	want := "checkpoint_exporter, version " + strings.TrimSpace(string(data)) + " "
	stdout, stderr, code := runCLI(t, "--version")
	if code != 0 || !strings.HasPrefix(stdout, want) {
		t.Fatalf("--version: exit %d, stdout %q, stderr %q; want exit 0 and a line starting %q", code, stdout, stderr, want)
	}
}
