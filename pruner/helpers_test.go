package pruner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// old is an mtime well past any min_age.
var old = time.Now().Add(-time.Hour)

// kerasFiles writes checkpoint_step_N.keras files of size bytes for the
// given steps, saved a minute apart and an hour ago.
func kerasFiles(t *testing.T, dir string, size int, stepList ...int) {
	t.Helper()
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i) | 1
	}
	for i, s := range stepList {
		p := filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s))
		must(t, os.WriteFile(p, buf, 0o644))
		mt := old.Add(time.Duration(i) * time.Minute)
		must(t, os.Chtimes(p, mt, mt))
	}
}

func scanDir(t *testing.T, tg checkpoint.Target) *checkpoint.Snapshot {
	t.Helper()
	s, err := checkpoint.NewScanner(tg, checkpoint.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snap := s.Scan(context.Background())
	if snap.Err != nil {
		t.Fatal(snap.Err)
	}
	return snap
}

// names lists dir without the pruner's own lock file.
// openDir opens a target directory for Execute, closed when the test ends.
func openDir(t testing.TB, path string) *targetdir.Dir {
	t.Helper()
	d, err := targetdir.OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, e := range es {
		if e.Name() != targetdir.LockFile {
			out = append(out, e.Name())
		}
	}
	return out
}

func noTrash(t *testing.T, dir string) {
	t.Helper()
	for _, n := range names(t, dir) {
		if strings.HasPrefix(n, targetdir.TrashPrefix) {
			t.Errorf("trash left behind: %s", n)
		}
	}
}

// tmpfs mounts a small tmpfs for the test, which really returns ENOSPC.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	testenv.MountTmpfs(t, dir, size)
	return dir
}

func testLogger(t *testing.T) log.Logger {
	return log.NewLogfmtLogger(log.NewSyncWriter(testWriter{t}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// must fails the test at once on a setup error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// withPolicy gives every scanned target the same policy.
func withPolicy(p Policy, ts ...checkpoint.Target) []Target {
	out := make([]Target, len(ts))
	for i, t := range ts {
		out[i] = Target{Target: t, Policy: p}
	}
	return out
}

var defaultPolicy = Policy{KeepLast: 3, High: checkpoint.MustWatermark("85%"), Low: checkpoint.MustWatermark("70%"), Execute: true}
