package pruner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// repointing is a Measurer that re-points the target's symlink to another
// directory right after the scan that plans a prune: the worst moment, after
// the plan and before the lock.
type repointing struct {
	*checkpoint.Inventory
	link, to string
}

func (r repointing) RescanHeld(ctx context.Context, name string) (*checkpoint.Snapshot, *targetdir.Dir, bool) {
	snap, dir, ok := r.Inventory.RescanHeld(ctx, name)
	if err := os.Remove(r.link); err == nil {
		os.Symlink(r.to, r.link)
	}
	return snap, dir, ok
}

// Issue #10 item 3 (invariant 2): a symlinked target re-pointed between the
// plan and the lock deletes nothing, neither in the directory that was
// planned (no longer the target) nor in the one the link now names, even
// when the two share hard links, which pass the per-checkpoint identity check.
func TestTargetRepointedBetweenPlanAndLockDeletesNothing(t *testing.T) {
	base := t.TempDir()
	planned, other := filepath.Join(base, "planned"), filepath.Join(base, "other")
	must(t, os.Mkdir(planned, 0o755))
	must(t, os.Mkdir(other, 0o755))
	kerasFiles(t, planned, 4096, 100, 200, 300, 400, 500)
	for _, n := range []string{"checkpoint_step_100.keras", "checkpoint_step_200.keras"} {
		must(t, os.Link(filepath.Join(planned, n), filepath.Join(other, n)))
	}
	kerasFiles(t, other, 4096, 900)
	link := filepath.Join(base, "current")
	must(t, os.Symlink(planned, link))

	tg := checkpoint.Target{Name: "t", Path: link}
	sc, err := checkpoint.NewScanner(tg, checkpoint.ScanOptions{})
	must(t, err)
	inv := checkpoint.NewInventory(testLogger(t), time.Hour, sc)
	svc := NewService(testLogger(t), repointing{Inventory: inv, link: link, to: other},
		withPolicy(Policy{KeepLast: 1}, tg), &Executor{Logger: testLogger(t), LockWait: time.Second}, nil)
	wantPlanned, wantOther := names(t, planned), names(t, other)

	run, err := svc.Prune(context.Background(), Request{Target: "t", Trigger: TriggerCLI, Mode: ModeExecute, Keep: 1})
	if len(run.Plan.Delete) != 4 {
		t.Fatalf("planned %d deletions, want 4: the test must plan deletions to prove anything", len(run.Plan.Delete))
	}
	if err == nil || !errors.Is(err, targetdir.ErrRefused) || run.Result.Outcome != ResultError {
		t.Errorf("prune after the target moved: result %q, err %v; want error (refused)", run.Result.Outcome, err)
	}
	if got := names(t, other); !reflect.DeepEqual(got, wantOther) {
		t.Errorf("the directory the link now names lost files: %v, want %v", got, wantOther)
	}
	if got := names(t, planned); !reflect.DeepEqual(got, wantPlanned) {
		t.Errorf("the directory that is no longer the target lost files: %v, want %v", got, wantPlanned)
	}
}
