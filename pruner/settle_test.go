package pruner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/hangfs"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

func duration(d time.Duration) *time.Duration { return &d }

// Where the filesystem's client may show attributes older than min_age, or
// for an unknown time, nothing is deleted, and the error says why and what
// to set.
func TestStaleFilesystemRefusesExecute(t *testing.T) {
	tests := []struct {
		name    string
		minAge  time.Duration
		cache   *time.Duration
		refused bool
		says    []string
	}{
		{"cache longer than min_age", time.Minute, duration(5 * time.Minute), true, []string{"min_age 1m0s", "raise min_age above 5m1s"}},
		{"cache as long as min_age", time.Minute + time.Second, duration(time.Minute), true, []string{"min_age 1m1s"}},
		{"cache shorter than min_age", 2 * time.Minute, duration(0), false, nil},
		{"no cache configured on a local filesystem", 0, nil, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			kerasFiles(t, dir, 100, 100, 200, 300)
			tg := checkpoint.Target{Name: "t", Path: dir, MinAge: tt.minAge}
			plan := MakePlan(scanDir(t, tg), Policy{KeepLast: 1}, Goal{Kind: GoalCount, Keep: 1}, time.Now())
			res, err := (&Executor{Logger: testLogger(t)}).Execute(context.Background(), openDir(t, dir),
				Target{Target: tg, Policy: Policy{AttributeCache: tt.cache}}, plan, TriggerCLI)
			if !tt.refused {
				if err != nil || len(res.Deleted) != 2 {
					t.Fatalf("deleted %+v, err %v; want 2 deleted", res.Deleted, err)
				}
				return
			}
			if !errors.Is(err, ErrStaleFilesystem) || res.Outcome != ResultError || len(res.Deleted) != 0 {
				t.Fatalf("result %q deleted %+v err %v; want an ErrStaleFilesystem error and nothing deleted", res.Outcome, res.Deleted, err)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if got := names(t, dir); len(got) != 3 {
				t.Errorf("left %v, want all 3", got)
			}
		})
	}
}

// A FUSE filesystem of unknown caching refuses deletions until
// prune.attribute_cache says what its daemon keeps; said to keep nothing,
// it is pruned as before.
func TestUnknownFUSERefusedUntilConfigured(t *testing.T) {
	backing, h := mountHangFS(t, hangfs.Options{})
	kerasFiles(t, backing, 100, 100, 200, 300)
	tg := checkpoint.Target{Name: "t", Path: h.Dir}
	plan := MakePlan(scanDir(t, tg), Policy{KeepLast: 1}, Goal{Kind: GoalCount, Keep: 1}, time.Now())
	x := &Executor{Logger: testLogger(t), LockWait: time.Second}
	res, err := x.Execute(context.Background(), openDir(t, h.Dir), Target{Target: tg}, plan, TriggerCLI)
	if !errors.Is(err, ErrStaleFilesystem) || len(res.Deleted) != 0 {
		t.Fatalf("unknown FUSE: deleted %+v err %v; want refused", res.Deleted, err)
	}
	for _, s := range []string{"fuse.hangfs", "prune.attribute_cache"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
	res, err = x.Execute(context.Background(), openDir(t, h.Dir), Target{Target: tg, Policy: Policy{AttributeCache: duration(0)}}, plan, TriggerCLI)
	if err != nil || len(res.Deleted) != 2 {
		t.Fatalf("with attribute_cache 0s: deleted %+v err %v; want 2", res.Deleted, err)
	}
}

// The final check before the first deletion comes no earlier than the
// cache's staleness after the scan the plan was made from began: what it
// reads was then read from the server after the scan.
func TestFinalCheckWaitsOutTheCache(t *testing.T) {
	for _, tt := range []struct {
		name    string
		scanned time.Duration // before now
	}{
		{"scan just now", 0},
		{"scan half a cache ago", 600 * time.Millisecond},
		{"scan longer ago than the cache", time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			kerasFiles(t, dir, 100, 100, 200)
			tg := checkpoint.Target{Name: "t", Path: dir, MinAge: time.Minute}
			plan := MakePlan(scanDir(t, tg), Policy{KeepLast: 1}, Goal{Kind: GoalCount, Keep: 1}, time.Now())
			plan.Scanned = time.Now().Add(-tt.scanned)
			cache := 200 * time.Millisecond
			var renamed time.Time
			x := &Executor{Logger: testLogger(t), afterRename: func(int) {
				if renamed.IsZero() {
					renamed = time.Now()
				}
			}}
			res, err := x.Execute(context.Background(), openDir(t, dir), Target{Target: tg, Policy: Policy{AttributeCache: &cache}}, plan, TriggerCLI)
			if err != nil || len(res.Deleted) != 1 {
				t.Fatalf("deleted %+v err %v", res.Deleted, err)
			}
			if earliest := plan.Scanned.Add(cache + targetdir.ClockGrain); renamed.Before(earliest) {
				t.Errorf("first rename at %s, before the cache could have expired at %s", renamed.Format(time.StampMilli), earliest.Format(time.StampMilli))
			}
		})
	}
}

// The wait ends with the prune's context: a SIGTERM does not wait out a
// five-minute cache.
func TestCacheWaitEndsWithContext(t *testing.T) {
	dir := t.TempDir()
	kerasFiles(t, dir, 100, 100, 200)
	tg := checkpoint.Target{Name: "t", Path: dir, MinAge: 10 * time.Minute}
	plan := MakePlan(scanDir(t, tg), Policy{KeepLast: 1}, Goal{Kind: GoalCount, Keep: 1}, time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := (&Executor{Logger: testLogger(t)}).Execute(ctx, openDir(t, dir),
		Target{Target: tg, Policy: Policy{AttributeCache: duration(5 * time.Minute)}}, plan, TriggerCLI)
	if !errors.Is(err, context.Canceled) || len(res.Deleted) != 0 {
		t.Fatalf("deleted %+v err %v; want context.Canceled and nothing deleted", res.Deleted, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoint_step_100.keras")); err != nil {
		t.Error(err)
	}
}

// A lock file is refused where the filesystem's client lists directories
// from a cache (another host's lock file would stay unseen), whether asked
// for or fallen back to for want of flock; where it caches nothing, the
// fallback works as before.
func TestLockfileRefusedOnCachedListings(t *testing.T) {
	backing, h := mountHangFS(t, hangfs.Options{NoFlock: true})
	kerasFiles(t, backing, 100, 100, 200, 300)
	tg := checkpoint.Target{Name: "t", Path: h.Dir, MinAge: 10 * time.Minute}
	plan := MakePlan(scanDir(t, tg), Policy{KeepLast: 1}, Goal{Kind: GoalCount, Keep: 1}, time.Now())
	x := &Executor{Logger: testLogger(t), LockWait: time.Second}
	for _, tt := range []struct {
		name    string
		mode    targetdir.LockMode
		cache   time.Duration
		refused bool
	}{
		{"lockfile asked for, listings cached", targetdir.LockLockfile, time.Second, true},
		{"flock missing, listings cached", targetdir.LockFlock, time.Second, true},
		{"flock missing, nothing cached", targetdir.LockFlock, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := x.Execute(context.Background(), openDir(t, h.Dir), Target{Target: tg, Policy: Policy{Lock: tt.mode, AttributeCache: &tt.cache}}, plan, TriggerCLI)
			if !tt.refused {
				if err != nil {
					t.Fatalf("deleted %+v err %v", res.Deleted, err)
				}
				return
			}
			if !errors.Is(err, targetdir.ErrLockfileUnsafe) || len(res.Deleted) != 0 {
				t.Fatalf("deleted %+v err %v; want targetdir.ErrLockfileUnsafe and nothing deleted", res.Deleted, err)
			}
			for _, s := range []string{"fuse.hangfs", "lock: flock", "one place only"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if _, err := os.Lstat(filepath.Join(h.Dir, targetdir.LeaseFile)); err == nil {
				t.Error("a lock file was made anyway")
			}
		})
	}
}
