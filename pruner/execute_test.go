package pruner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

func TestExecuteKeepsNewestAndPinnedByRename(t *testing.T) {
	dir := t.TempDir()
	kerasFiles(t, dir, 4096, 100, 200, 300, 400, 500)
	os.Rename(filepath.Join(dir, "checkpoint_step_200.keras"), filepath.Join(dir, "important_backup_200.keras"))
	tg := checkpoint.Target{Name: "t", Path: dir}
	snap := scanDir(t, tg)
	plan := MakePlan(snap, Policy{KeepLast: 2}, Goal{Kind: GoalCount, Keep: 2}, time.Now())
	x := &Executor{Logger: testLogger(t)}

	// Dry run deletes nothing.
	res := dryRun(testLogger(t), plan)
	if res.Outcome != ResultDryRun || len(res.Deleted) != 2 || len(names(t, dir)) != 5 {
		t.Fatalf("dry run: %+v, files %v", res, names(t, dir))
	}
	res, err := x.Execute(context.Background(), openDir(t, tg.Path), Target{Target: tg}, plan, TriggerCLI)
	if err != nil || res.Outcome != ResultOK {
		t.Fatalf("execute: %+v %v", res, err)
	}
	want := []string{"checkpoint_step_400.keras", "checkpoint_step_500.keras", "important_backup_200.keras"}
	if got := names(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
}

// Invariant 2: a checkpoint that is a symlink loses only its link.
func TestSymlinkCheckpointLosesOnlyTheLink(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	kerasFiles(t, dir, 100, 200, 300, 400)
	target := filepath.Join(outside, "precious.keras")
	os.WriteFile(target, []byte("do not delete"), 0o644)
	os.Symlink(target, filepath.Join(dir, "checkpoint_step_100.keras"))
	sub := filepath.Join(outside, "tree")
	os.MkdirAll(filepath.Join(sub, "inner"), 0o755)
	os.WriteFile(filepath.Join(sub, "inner", "w"), []byte("keep"), 0o644)
	os.Symlink(sub, filepath.Join(dir, "checkpoint_step_150.keras"))
	for _, n := range []string{"checkpoint_step_100.keras", "checkpoint_step_150.keras"} {
		syscall.Lchown(filepath.Join(dir, n), 0, 0)
		// Older than the files: keep_last also keeps the most recently written.
		tv := unix.NsecToTimeval(old.Add(-time.Hour).UnixNano())
		unix.Lutimes(filepath.Join(dir, n), []unix.Timeval{tv, tv})
	}
	tg := checkpoint.Target{Name: "t", Path: dir}
	plan := MakePlan(scanDir(t, tg), Policy{KeepLast: 1}, Goal{Kind: GoalCount, Keep: 1}, time.Now())
	if len(plan.Delete) != 4 {
		t.Fatalf("planned %d deletions, want 4 (two symlinks, two files)", len(plan.Delete))
	}
	if _, err := (&Executor{Logger: testLogger(t)}).Execute(context.Background(), openDir(t, tg.Path), Target{Target: tg}, plan, TriggerCLI); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "do not delete" {
		t.Errorf("file outside the target: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(sub, "inner", "w")); err != nil || string(b) != "keep" {
		t.Errorf("tree outside the target: %q, %v", b, err)
	}
	if got := names(t, dir); !reflect.DeepEqual(got, []string{"checkpoint_step_400.keras"}) {
		t.Errorf("left %v", got)
	}
}

// Invariant 5: a checkpoint changed between plan and deletion is skipped.
func TestModifiedBetweenPlanAndDeleteIsSkipped(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{"rewritten", func(t *testing.T, p string) { os.WriteFile(p, []byte("new content"), 0o644) }},
		{"touched", func(t *testing.T, p string) { now := time.Now(); os.Chtimes(p, now, now) }},
		{"replaced", func(t *testing.T, p string) {
			os.Remove(p)
			os.WriteFile(p, []byte("another file"), 0o644)
			os.Chtimes(p, old, old)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			kerasFiles(t, dir, 100, 100, 200, 300)
			tg := checkpoint.Target{Name: "t", Path: dir}
			plan := MakePlan(scanDir(t, tg), Policy{KeepLast: 1}, Goal{Kind: GoalCount, Keep: 1}, time.Now())
			tt.change(t, filepath.Join(dir, "checkpoint_step_100.keras"))
			res, err := (&Executor{Logger: testLogger(t)}).Execute(context.Background(), openDir(t, tg.Path), Target{Target: tg}, plan, TriggerCLI)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Skipped) != 1 || res.Skipped[0].Step != 100 || len(res.Deleted) != 1 || res.Deleted[0].Step != 200 {
				t.Errorf("deleted %+v skipped %+v; want 200 deleted, 100 skipped", res.Deleted, res.Skipped)
			}
			if _, err := os.Stat(filepath.Join(dir, "checkpoint_step_100.keras")); err != nil {
				t.Errorf("changed checkpoint was deleted: %v", err)
			}
		})
	}
}

// Invariant 4: two executors at once on one directory delete each
// checkpoint once and keep keep_last.
func TestConcurrentExecutors(t *testing.T) {
	dir := t.TempDir()
	kerasFiles(t, dir, 1000, 100, 200, 300, 400, 500, 600, 700, 800)
	tg := checkpoint.Target{Name: "t", Path: dir}
	p := Policy{KeepLast: 3}
	plan1 := MakePlan(scanDir(t, tg), p, Goal{Kind: GoalCount, Keep: 3}, time.Now())
	plan2 := MakePlan(scanDir(t, tg), p, Goal{Kind: GoalCount, Keep: 3}, time.Now())
	var wg sync.WaitGroup
	results := make([]Result, 2)
	for i, plan := range []Plan{plan1, plan2} {
		wg.Add(1)
		d := openDir(t, tg.Path)
		go func() {
			defer wg.Done()
			x := &Executor{Logger: log.NewNopLogger(), LockWait: 10 * time.Second}
			results[i], _ = x.Execute(context.Background(), d, Target{Target: tg}, plan, TriggerCLI)
		}()
	}
	wg.Wait()
	deleted := map[int64]int{}
	for _, r := range results {
		if r.Outcome != ResultOK {
			t.Errorf("result %+v", r)
		}
		for _, d := range r.Deleted {
			deleted[d.Step]++
		}
	}
	for step, n := range deleted {
		if n != 1 {
			t.Errorf("step %d deleted %d times", step, n)
		}
	}
	if len(deleted) != 5 {
		t.Errorf("deleted %v, want the 5 oldest", deleted)
	}
	want := []string{"checkpoint_step_600.keras", "checkpoint_step_700.keras", "checkpoint_step_800.keras"}
	if got := names(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
}

func TestTensorflowIndexRenamedFirst(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []int{1, 2} {
		for _, f := range []string{"index", "data-00000-of-00001"} {
			p := filepath.Join(dir, fmt.Sprintf("ckpt-%d.%s", s, f))
			os.WriteFile(p, []byte("x"), 0o644)
			os.Chtimes(p, old, old)
		}
	}
	tg := checkpoint.Target{Name: "t", Path: dir}
	plan := MakePlan(scanDir(t, tg), Policy{KeepLast: 1}, Goal{Kind: GoalCount, Keep: 1}, time.Now())
	if _, err := (&Executor{Logger: testLogger(t)}).Execute(context.Background(), openDir(t, tg.Path), Target{Target: tg}, plan, TriggerCLI); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); !reflect.DeepEqual(got, []string{"ckpt-2.data-00000-of-00001", "ckpt-2.index"}) {
		t.Errorf("left %v", got)
	}
}

// Invariant 3: a prune killed mid-delete leaves no partial checkpoint under
// its real name, and the next start finishes the job.
func TestCrashMidDeleteIsFinishedAtNextStart(t *testing.T) {
	if dir := os.Getenv("CKPT_CRASH_CHILD"); dir != "" {
		tg := checkpoint.Target{Name: "t", Path: dir}
		s, _ := checkpoint.NewScanner(tg, checkpoint.ScanOptions{})
		snap := s.Scan(context.Background())
		plan := MakePlan(snap, Policy{KeepLast: 1}, Goal{Kind: GoalCount, Keep: 1}, time.Now())
		// Killed in the middle of removing the trash, at a point chosen
		// here rather than by a race with the parent: once the checkpoint
		// is renamed, half of its shards go, then the process dies.
		x := &Executor{Logger: log.NewNopLogger(), afterRename: func(int) {
			trash, _ := filepath.Glob(filepath.Join(dir, targetdir.TrashPrefix+"*"))
			for _, tr := range trash {
				shards, _ := filepath.Glob(filepath.Join(tr, "shard-*"))
				for _, sh := range shards[:len(shards)/2] {
					os.RemoveAll(sh)
				}
			}
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}}
		x.Execute(context.Background(), openDir(t, tg.Path), Target{Target: tg}, plan, TriggerCLI)
		t.Fatal("the prune finished: it was to be killed mid-delete")
	}
	dir := t.TempDir()
	// A directory checkpoint of many files, killed half removed.
	big := filepath.Join(dir, "checkpoint-100")
	for i := range 100 {
		sub := filepath.Join(big, fmt.Sprintf("shard-%03d", i))
		os.MkdirAll(sub, 0o755)
		for j := range 100 {
			os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", j)), nil, 0o644)
		}
	}
	os.MkdirAll(filepath.Join(dir, "checkpoint-200"), 0o755)
	os.WriteFile(filepath.Join(dir, "checkpoint-200", "w"), []byte("x"), 0o644)
	// All old, checkpoint-100 older: keep_last also keeps the most recently written.
	filepath.Walk(big, func(p string, _ os.FileInfo, _ error) error {
		return os.Chtimes(p, old.Add(-time.Hour), old.Add(-time.Hour))
	})
	for _, p := range []string{big, filepath.Join(dir, "checkpoint-200", "w"), filepath.Join(dir, "checkpoint-200")} {
		os.Chtimes(p, old, old)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashMidDeleteIsFinishedAtNextStart$")
	cmd.Env = append(os.Environ(), "CKPT_CRASH_CHILD="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was to be killed mid-delete; it ended with %v", err)
	}
	var trash string
	for _, n := range names(t, dir) {
		if strings.HasPrefix(n, targetdir.TrashPrefix) {
			trash = n
		}
	}
	if trash == "" {
		t.Fatal("no trash left by the killed prune")
	}
	left := names(t, dir)
	t.Logf("after SIGKILL: %v", left)
	for _, n := range left {
		if n == "checkpoint-100" {
			t.Fatalf("checkpoint-100 still visible under its name after the rename: %v", left)
		}
	}
	rec, err := RecoverTrash(context.Background(), testLogger(t), Target{Target: checkpoint.Target{Name: "t", Path: dir}}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Removed == 0 && len(left) > 1 {
		t.Errorf("recovery removed nothing, but %v were left", left)
	}
	noTrash(t, dir)
	if got := names(t, dir); !reflect.DeepEqual(got, []string{"checkpoint-200"}) {
		t.Errorf("after recovery %v, want only checkpoint-200", got)
	}
}

// The watermark goal on a real, small filesystem: statfs must agree.
func TestWatermarkOnTmpfs(t *testing.T) {
	dir := tmpfs(t, "64m")
	fs, err := targetdir.StatFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Fill to 90% with 2 MiB checkpoints.
	var stepsList []int
	for s := 1; ; s++ {
		fs, _ = targetdir.StatFS(dir)
		if fs.UsedRatio() >= 0.90 {
			break
		}
		kerasFiles(t, dir, 2<<20, s)
		stepsList = append(stepsList, s)
	}
	// kerasFiles wrote each with the same mtime base; rewrite mtimes in order.
	for i, s := range stepsList {
		mt := old.Add(time.Duration(i) * time.Minute)
		os.Chtimes(filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s)), mt, mt)
	}
	tg := checkpoint.Target{Name: "t", Path: dir}
	snap := scanDir(t, tg)
	p := Policy{KeepLast: 3, High: checkpoint.MustWatermark("85%"), Low: checkpoint.MustWatermark("60%")}
	plan := MakePlan(snap, p, Goal{Kind: GoalWatermark}, time.Now())
	if plan.Noop || plan.Insufficient || len(plan.Delete) == 0 {
		t.Fatalf("plan at %.0f%% used: %+v", 100*snap.FS.UsedRatio(), plan)
	}
	res, err := (&Executor{Logger: testLogger(t)}).Execute(context.Background(), openDir(t, tg.Path), Target{Target: tg}, plan, TriggerCLI)
	if err != nil || res.Outcome != ResultOK {
		t.Fatalf("execute: %+v %v", res, err)
	}
	after, _ := targetdir.StatFS(dir)
	if after.UsedRatio() > 0.60 {
		t.Errorf("usage %.1f%% after prune, want at most 60%%", 100*after.UsedRatio())
	}
	if after.UsedRatio() < 0.50 {
		t.Errorf("usage %.1f%% after prune: deleted far more than needed", 100*after.UsedRatio())
	}
	if res.FreeSpaceChange != int64(after.AvailBytes)-int64(fs.AvailBytes) {
		t.Errorf("reported a change in free space of %d, statfs says %d", res.FreeSpaceChange, int64(after.AvailBytes)-int64(fs.AvailBytes))
	}
	var deleted int64
	for _, d := range res.Deleted {
		deleted += d.Bytes
	}
	if res.FreedBytes != deleted || deleted <= 0 {
		t.Errorf("reported freed %d, the deleted checkpoints' disk usage is %d", res.FreedBytes, deleted)
	}
	left := names(t, dir)
	sort.Strings(left)
	last := fmt.Sprintf("checkpoint_step_%d.keras", stepsList[len(stepsList)-1])
	found := false
	for _, n := range left {
		found = found || n == last
	}
	if !found || len(left) < 3 {
		t.Errorf("newest checkpoint or keep_last lost: %v", left)
	}
}
