package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The watchers run beside a writer that saves and deletes checkpoints the
// way the scenario's job and pruner do; stop returns only when no watcher can
// write its results any more (run with -race).
func TestWatchersStopBeforeResultsAreRead(t *testing.T) {
	dir := t.TempDir()
	path := func(step int64) string { return filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", step)) }
	saved := &savedSteps{}
	newest := &newestWatch{saved: saved, keep: 3, every: 100, path: path}
	fs := &fsWatch{dir: dir, freedAtLeast: 1 << 62, high: crossing{below: 1 << 62}, goal: crossing{below: 1 << 62}}

	w := startWatchers(context.Background())
	w.every(time.Millisecond, newest.sample)
	w.every(time.Millisecond, fs.sample)
	for step := int64(100); step <= 3000; step += 100 {
		if err := os.WriteFile(path(step), []byte("weights"), 0o644); err != nil {
			t.Fatal(err)
		}
		saved.set(step)
		if step > 300 {
			if err := os.Remove(path(step - 300)); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.stop()
	// Read after stop: no locks, and the race detector has the last word.
	if len(newest.missing) != 0 {
		t.Errorf("newest watcher saw %v missing although the writer kept the newest 3", newest.missing)
	}
	if fs.minAvail == 0 || fs.high.count != 1 {
		t.Errorf("filesystem watcher: min avail %d, %d crossings (want 1: the threshold is above any free space and nothing frees 4 EiB)", fs.minAvail, fs.high.count)
	}
	// An injected fault: the newest checkpoint goes while nothing newer is
	// saved. A watcher samples at least once before stop returns.
	if err := os.Remove(path(3000)); err != nil {
		t.Fatal(err)
	}
	w = startWatchers(context.Background())
	w.every(time.Hour, newest.sample)
	w.stop()
	if len(newest.missing) != 1 || newest.missing[0] != filepath.Base(path(3000)) {
		t.Errorf("missing %v, want exactly the removed newest checkpoint", newest.missing)
	}
}
