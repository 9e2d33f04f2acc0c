package checkpoint

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// duBytes asks du(1) for the total disk usage of paths. ok is false when du
// is not installed.
func duBytes(t *testing.T, paths ...string) (int64, bool) {
	t.Helper()
	if _, err := exec.LookPath("du"); err != nil {
		t.Log("du not installed: not comparing with it")
		return 0, false
	}
	out, err := exec.Command("du", append([]string{"-scB1"}, paths...)...).Output()
	if err != nil {
		t.Fatalf("du: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	n, err := strconv.ParseInt(strings.Fields(lines[len(lines)-1])[0], 10, 64)
	if err != nil {
		t.Fatalf("du output %q: %v", out, err)
	}
	return n, true
}
