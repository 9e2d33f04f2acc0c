package pruner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// fullDiskLayouts are trees of five checkpoints, steps 100 to 500, one per
// kind of deletion: single files, directories, and groups of files (a
// TensorFlow index and its shards, whose deletion is marked first).
var fullDiskLayouts = []struct {
	name string
	make func(t *testing.T, dir string, step, i int)
}{
	{"keras-files", func(t *testing.T, dir string, step, i int) {
		writeAged(t, filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", step)), 256<<10, i)
	}},
	{"hf-directories", func(t *testing.T, dir string, step, i int) {
		d := filepath.Join(dir, fmt.Sprintf("checkpoint-%d", step))
		must(t, os.Mkdir(d, 0o755))
		writeAged(t, filepath.Join(d, "model.safetensors"), 200<<10, i)
		writeAged(t, filepath.Join(d, "trainer_state.json"), 100, i)
		writeAged(t, d, -1, i)
	}},
	{"tensorflow-groups", func(t *testing.T, dir string, step, i int) {
		writeAged(t, filepath.Join(dir, fmt.Sprintf("ckpt-%d.index", step)), 4096, i)
		writeAged(t, filepath.Join(dir, fmt.Sprintf("ckpt-%d.data-00000-of-00002", step)), 128<<10, i)
		writeAged(t, filepath.Join(dir, fmt.Sprintf("ckpt-%d.data-00001-of-00002", step)), 128<<10, i)
	}},
}

// writeAged writes size bytes to p (size < 0: only sets the time) with the
// i-th save's mtime, a minute apart, an hour ago.
func writeAged(t *testing.T, p string, size, i int) {
	t.Helper()
	if size >= 0 {
		buf := make([]byte, size)
		for j := range buf {
			buf[j] = byte(j) | 1
		}
		must(t, os.WriteFile(p, buf, 0o644))
	}
	mt := old.Add(time.Duration(i) * time.Minute)
	must(t, os.Chtimes(p, mt, mt))
}

// fullTarget mounts a small tmpfs, writes layout's five checkpoints into
// models/ on it, makes what Provision makes if provisioned, and fills the
// filesystem's blocks or inodes to the last one.
func fullTarget(t *testing.T, layout func(*testing.T, string, int, int), fill string, lock targetdir.LockMode, provisioned bool) Target {
	t.Helper()
	root := t.TempDir()
	testenv.MountTmpfsWith(t, root, "size=8m,nr_inodes=400")
	dir := filepath.Join(root, "models")
	must(t, os.Mkdir(dir, 0o755))
	for i, step := range []int{100, 200, 300, 400, 500} {
		layout(t, dir, step, i)
	}
	tg := Target{Target: checkpoint.Target{Name: "full", Path: dir}, Policy: Policy{KeepLast: 2, Lock: lock, Execute: true}}
	if provisioned {
		must(t, targetdir.Provision(tg.Path, tg.Policy.Lock))
	}
	switch fill {
	case "blocks":
		testenv.FillBlocks(t, filepath.Join(root, "filler"))
	case "inodes":
		testenv.FillInodes(t, filepath.Join(root, "filler"))
	}
	return tg
}

// Invariant 8: on a filesystem with no free block, or no free inode, every
// kind of checkpoint can be deleted, in both lock modes, at the very first
// prune (nothing made ahead of need) as well as later ones. The one
// exception is the lockfile mode's first prune, which needs the spare lock
// file that start-up or any earlier prune makes: without it, the prune
// fails with a message that says so, and deletes nothing.
func TestPruneFullDisk(t *testing.T) {
	for _, lay := range fullDiskLayouts {
		for _, fill := range []string{"blocks", "inodes"} {
			for _, lock := range []targetdir.LockMode{targetdir.LockFlock, targetdir.LockLockfile} {
				for _, provisioned := range []bool{false, true} {
					name := fmt.Sprintf("%s/%s/%s/first=%v", lay.name, fill, lock, !provisioned)
					t.Run(name, func(t *testing.T) {
						tg := fullTarget(t, lay.make, fill, lock, provisioned)
						snap := scanDir(t, tg.Target)
						if len(snap.Complete()) != 5 {
							t.Fatalf("setup: %d complete checkpoints, want 5", len(snap.Complete()))
						}
						plan := MakePlan(snap, tg.Policy, Goal{Kind: GoalCount, Keep: 2}, time.Now())
						x := &Executor{Logger: testLogger(t), LockWait: time.Second}
						res, err := x.Execute(context.Background(), openDir(t, tg.Path), tg, plan, TriggerCLI)
						if lock == targetdir.LockLockfile && !provisioned {
							if err == nil || !strings.Contains(err.Error(), targetdir.SpareLeaseFile) || len(res.Deleted) != 0 {
								t.Fatalf("lockfile mode, full disk, no spare: %+v, %v; want an error naming %s and nothing deleted", res, err, targetdir.SpareLeaseFile)
							}
							if got := scanDir(t, tg.Target); len(got.Complete()) != 5 {
								t.Errorf("%d complete checkpoints left, want all 5", len(got.Complete()))
							}
							return
						}
						if err != nil || res.Outcome != ResultOK || len(res.Deleted) != 3 {
							t.Fatalf("prune of a full disk: %+v, %v; want 3 deleted", res, err)
						}
						var st unix.Statfs_t
						must(t, unix.Statfs(tg.Path, &st))
						if st.Bavail == 0 || st.Ffree == 0 {
							t.Errorf("after the prune: %d blocks, %d inodes free; want both freed", st.Bavail, st.Ffree)
						}
						got := scanDir(t, tg.Target)
						var steps []int64
						for _, c := range got.Complete() {
							steps = append(steps, c.Step)
						}
						if !slices.Equal(steps, []int64{400, 500}) {
							t.Errorf("left %v, want steps 400 and 500", steps)
						}
						for _, n := range names(t, tg.Path) {
							if strings.HasPrefix(n, targetdir.OwnPrefix) && n != targetdir.LeaseFile && n != targetdir.SpareLeaseFile {
								t.Errorf("left behind: %s", n)
							}
						}
						// The prune made what the next full disk needs.
						want := targetdir.LockFile
						if lock == targetdir.LockLockfile {
							want = targetdir.SpareLeaseFile
						}
						if _, err := os.Lstat(filepath.Join(tg.Path, want)); err != nil {
							t.Errorf("%s not made after the prune: %v", want, err)
						}
					})
				}
			}
		}
	}
}

// Invariant 3 on a full disk: a prune of TensorFlow checkpoints killed
// between the renames of one checkpoint's entries, with no free block and
// no free inode, leaves nothing that scans as a complete checkpoint of that
// step, and the next prune finishes the deletion.
func TestFullDiskCrashMidDeleteNeverLooksValid(t *testing.T) {
	const shards = 20
	if dir := os.Getenv("CKPT_FULL_CRASH_CHILD"); dir != "" {
		tg := checkpoint.Target{Name: "full", Path: dir}
		snap := scanDir(t, tg)
		plan := MakePlan(snap, Policy{KeepLast: 1}, Goal{Kind: GoalCount, Keep: 1}, time.Now())
		x := &Executor{Logger: log.NewNopLogger(), afterRename: func(renamed int) {
			if renamed == shards/2 {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
		}}
		x.Execute(context.Background(), openDir(t, dir), Target{Target: tg}, plan, TriggerCLI)
		t.Fatal("the prune finished: it was to be killed mid-delete")
	}
	for _, fill := range []string{"blocks", "inodes"} {
		t.Run(fill, func(t *testing.T) {
			tg := fullTarget(t, func(t *testing.T, dir string, step, i int) {
				if step > 200 {
					return
				}
				writeAged(t, filepath.Join(dir, fmt.Sprintf("ckpt-%d.index", step)), 4096, i)
				for s := range shards {
					writeAged(t, filepath.Join(dir, fmt.Sprintf("ckpt-%d.data-%05d-of-%05d", step, s, shards)), 8192, i)
				}
			}, fill, targetdir.LockFlock, false)
			cmd := exec.Command(os.Args[0], "-test.run=^TestFullDiskCrashMidDeleteNeverLooksValid$")
			cmd.Env = append(os.Environ(), "CKPT_FULL_CRASH_CHILD="+tg.Path)
			out, err := cmd.CombinedOutput()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed mid-delete: %v\n%s", err, out)
			}
			visible := 0
			for _, n := range names(t, tg.Path) {
				if strings.HasPrefix(n, "ckpt-100.") {
					visible++
				}
			}
			if visible == 0 || visible == shards+1 {
				t.Fatalf("the kill did not land between renames: %d of %d entries of step 100 under their names", visible, shards+1)
			}
			for _, c := range scanDir(t, tg.Target).Checkpoints {
				if c.Step == 100 {
					t.Errorf("after SIGKILL with %d of %d entries still named, the scan lists step 100 (%d entries, incomplete %v)",
						visible, shards+1, len(c.Entries), c.Incomplete)
				}
			}
			rec, err := RecoverTrash(context.Background(), testLogger(t), tg, time.Second)
			if err != nil || len(rec.Left) != 0 {
				t.Fatalf("recovery on the full disk: %+v, %v", rec, err)
			}
			for _, n := range names(t, tg.Path) {
				if strings.HasPrefix(n, "ckpt-100.") || strings.HasPrefix(n, targetdir.TrashPrefix) || strings.HasPrefix(n, targetdir.AnchorPrefix) {
					t.Errorf("left after recovery: %s", n)
				}
			}
			if got := scanDir(t, tg.Target); len(got.Complete()) != 1 || got.Complete()[0].Step != 200 {
				t.Errorf("after recovery: %+v, want only step 200", got.Checkpoints)
			}
		})
	}
}

// The anchor covers only what has not changed since the deletion began: a
// new save under a name of the checkpoint being deleted, made after a crash
// and before recovery, is neither hidden nor deleted.
func TestAnchorSparesANewSaveUnderTheSameName(t *testing.T) {
	dir := t.TempDir()
	for i, step := range []int{100, 200} {
		writeAged(t, filepath.Join(dir, fmt.Sprintf("ckpt-%d.index", step)), 4096, i)
		writeAged(t, filepath.Join(dir, fmt.Sprintf("ckpt-%d.data-00000-of-00001", step)), 8192, i)
	}
	// A deletion of ckpt-100 began (its index anchored), and the process died.
	must(t, os.Rename(filepath.Join(dir, "ckpt-100.index"), filepath.Join(dir, targetdir.AnchorPrefix+"ckpt-100.index")))
	tg := checkpoint.Target{Name: "t", Path: dir}
	if got := scanDir(t, tg); len(got.Checkpoints) != 1 || got.Checkpoints[0].Step != 200 {
		t.Fatalf("with the anchor: %+v, want only step 200 (the anchored checkpoint hidden)", got.Checkpoints)
	}
	// A new ckpt-100 is saved (a run resumed from an earlier step) after the
	// anchor was made: ctime newer than the anchor's.
	time.Sleep(20 * time.Millisecond)
	for _, n := range []string{"ckpt-100.index", "ckpt-100.data-00000-of-00001"} {
		os.Remove(filepath.Join(dir, n))
		must(t, os.WriteFile(filepath.Join(dir, n), []byte("new"), 0o644))
	}
	got := scanDir(t, tg)
	if len(got.Checkpoints) != 2 || got.Checkpoints[0].Step != 100 || len(got.Checkpoints[0].Entries) != 2 {
		t.Fatalf("after a new save: %+v, want the new step 100 counted whole", got.Checkpoints)
	}
	rec, err := RecoverTrash(context.Background(), testLogger(t), Target{Target: tg}, time.Second)
	if err != nil || len(rec.Left) != 0 {
		t.Fatalf("recovery: %+v, %v", rec, err)
	}
	for _, n := range []string{"ckpt-100.index", "ckpt-100.data-00000-of-00001"} {
		if data, err := os.ReadFile(filepath.Join(dir, n)); err != nil || string(data) != "new" {
			t.Errorf("recovery touched the new save's %s: %q, %v", n, data, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, targetdir.AnchorPrefix+"ckpt-100.index")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("anchor left after recovery: %v", err)
	}
}
