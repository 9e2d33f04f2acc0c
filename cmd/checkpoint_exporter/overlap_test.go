package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A target inside another (here through a symlink) is refused before the
// exporter listens, naming both targets, and by check-config; so is one
// directory given twice.
func TestNestedTargetsRefusedAtStart(t *testing.T) {
	root := t.TempDir()
	outer := filepath.Join(root, "runs")
	os.MkdirAll(filepath.Join(outer, "exp1"), 0o755)
	os.Symlink(filepath.Join(outer, "exp1"), filepath.Join(root, "exp1-link"))
	cfg := filepath.Join(root, "c.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("targets:\n  - name: all-runs\n    path: %s\n  - name: exp1\n    path: exp1-link\n", outer)), 0o644)
	for _, args := range [][]string{
		{"--config.file=" + cfg, "--web.listen-address=" + freePort(t)},
		{"scan", "--config.file=" + cfg},
		{"prune", "--config.file=" + cfg, "--keep=1"},
		{"check-config", "--config.file=" + cfg},
	} {
		_, stderr, code := runCLIWithin(t, 20*time.Second, args...)
		if code == 0 || !strings.Contains(stderr, "targets[1] (exp1).path") || !strings.Contains(stderr, "inside target all-runs") {
			t.Errorf("%v: code %d, stderr %s", args, code, stderr)
		}
	}
	_, stderr, code := runCLI(t, "scan", "--checkpoint.dir="+outer, "--checkpoint.dir="+filepath.Join(root, "runs", ".", ""))
	if code == 0 || !strings.Contains(stderr, "same directory as target runs") {
		t.Errorf("one directory twice: code %d, stderr %s", code, stderr)
	}
}

// runCLIWithin is runCLI for a command that should exit but, broken, might
// serve forever: it is killed after d (exit code -1).
func runCLIWithin(t *testing.T, d time.Duration, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), 0
}
