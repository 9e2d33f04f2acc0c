package testenv

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// DuBytes asks du(1) for the total disk usage of paths in bytes (du -scB1),
// the figure checkpoint sizes must equal.
func DuBytes(t testing.TB, paths ...string) int64 {
	t.Helper()
	du := Need(t, "du")
	out, err := exec.Command(du, append([]string{"-scB1"}, paths...)...).Output()
	if err != nil {
		t.Fatalf("du %v: %v", paths, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	n, err := strconv.ParseInt(strings.Fields(lines[len(lines)-1])[0], 10, 64)
	if err != nil {
		t.Fatalf("du output %q: %v", out, err)
	}
	return n
}
