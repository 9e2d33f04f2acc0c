package pruner

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// fakeStatFS answers statfs with avail bytes free of size, plus what was
// deleted if it moves.
type fakeStatFS struct {
	mu    sync.Mutex // guards avail
	avail uint64
	size  uint64
}

func (f *fakeStatFS) stat(string) (targetdir.FSStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return targetdir.FSStats{SizeBytes: f.size, AvailBytes: f.avail, FreeBytes: f.avail, FSType: "fake"}, nil
}

// A free-space goal on a filesystem whose free space does not change after
// a deletion stops after one checkpoint, says why, and counts freed bytes
// from what it removed; the max_bytes part, counted from the checkpoints'
// sizes, still goes on; a statfs that moves is pruned to the goal as before.
func TestFreeSpaceGoalStopsWhenStatfsDoesNotMove(t *testing.T) {
	const size = 1 << 20
	for _, tt := range []struct {
		name     string
		moves    bool
		maxBytes uint64 // of 5 checkpoints of 1 MiB
		deleted  int
		stopped  bool
	}{
		{"statfs stuck", false, 0, 1, true},
		{"statfs stuck, over max_bytes by two checkpoints", false, 3 * size, 2, true},
		{"statfs moves", true, 0, 4, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			kerasFiles(t, dir, size, 100, 200, 300, 400, 500)
			tg := checkpoint.Target{Name: "t", Path: dir, MaxBytes: tt.maxBytes}
			fs := &fakeStatFS{size: 1 << 30, avail: 1 << 20}
			snap := scanDir(t, tg)
			snap.FS = &targetdir.FSStats{SizeBytes: fs.size, AvailBytes: fs.avail, FreeBytes: fs.avail}
			// The low watermark wants half the filesystem free: far out of reach.
			plan := MakePlan(snap, Policy{KeepLast: 1, Low: checkpoint.MustWatermark("50%")}, Goal{Kind: GoalWatermark}, time.Now())
			x := &Executor{Logger: testLogger(t), StatFS: fs.stat}
			if tt.moves {
				x.afterRename = func(int) {
					fs.mu.Lock()
					fs.avail += size + 4096
					fs.mu.Unlock()
				}
			}
			res, err := x.Execute(context.Background(), openDir(t, dir), Target{Target: tg}, plan, TriggerWebhook)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Deleted) != tt.deleted || res.Outcome != ResultInsufficient {
				t.Fatalf("result %s, deleted %+v; want %d deleted, insufficient", res.Outcome, res.Deleted, tt.deleted)
			}
			if (res.Stopped != "") != tt.stopped {
				t.Errorf("stopped %q, want stopped: %v", res.Stopped, tt.stopped)
			}
			if tt.stopped && !strings.Contains(res.Stopped, "free space did not change after deleting checkpoint_step_100.keras") {
				t.Errorf("stopped %q does not say why", res.Stopped)
			}
			var want int64
			for _, d := range res.Deleted {
				want += d.Bytes
			}
			if res.FreedBytes != want || want < int64(tt.deleted)*size {
				t.Errorf("freed %d, want %d: the disk usage of what was deleted", res.FreedBytes, want)
			}
		})
	}
}
