package pruner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// Issue #10 item 5 (invariant 3): a checkpoint of many top-level files (a
// custom pattern's, TensorFlow's index and shards) killed with SIGKILL in
// the middle of its renames never looks valid to a scan, and recovery
// finishes its deletion.
func TestMultiFileCrashMidDeleteNeverLooksValid(t *testing.T) {
	if spec := os.Getenv("CKPT_MULTI_CRASH_CHILD"); spec != "" {
		dir, pattern, _ := strings.Cut(spec, "|")
		tg := checkpoint.Target{Name: "t", Path: dir, Pattern: pattern}
		snap := scanDir(t, tg)
		plan := MakePlan(snap, Policy{KeepLast: 1}, Goal{Kind: GoalCount, Keep: 1}, time.Now())
		x := &Executor{Logger: log.NewNopLogger(), afterRename: func(renamed int) {
			if renamed == 10 {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
		}}
		x.Execute(context.Background(), openDir(t, dir), Target{Target: tg}, plan, TriggerCLI)
		t.Fatal("the prune finished: it was to be killed mid-delete")
	}
	const files = 50
	tests := []struct {
		name, pattern string
		file          func(step, i int) string
	}{
		{"pattern", "model_{step}_*.bin", func(step, i int) string { return fmt.Sprintf("model_%d_%04d.bin", step, i) }},
		{"tensorflow", "", func(step, i int) string {
			if i == 0 {
				return fmt.Sprintf("ckpt-%d.index", step)
			}
			return fmt.Sprintf("ckpt-%d.data-%05d-of-%05d", step, i-1, files-1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for k, step := range []int{100, 200} {
				for i := range files {
					p := filepath.Join(dir, tt.file(step, i))
					must(t, os.WriteFile(p, []byte("weights"), 0o644))
					mt := old.Add(time.Duration(k) * time.Minute)
					must(t, os.Chtimes(p, mt, mt))
				}
			}
			tg := checkpoint.Target{Name: "t", Path: dir, Pattern: tt.pattern}
			before := scanDir(t, tg)
			if len(before.Complete()) != 2 || len(before.Checkpoints[0].Entries) != files {
				t.Fatalf("setup: %d complete checkpoints of %d entries, want 2 of %d", len(before.Complete()), len(before.Checkpoints[0].Entries), files)
			}

			cmd := exec.Command(os.Args[0], "-test.run=^TestMultiFileCrashMidDeleteNeverLooksValid$")
			cmd.Env = append(os.Environ(), "CKPT_MULTI_CRASH_CHILD="+dir+"|"+tt.pattern)
			out, err := cmd.CombinedOutput()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed mid-delete: %v\n%s", err, out)
			}
			left := names(t, dir)
			valid := 0
			for _, n := range left {
				if strings.Contains(n, "100") && !strings.HasPrefix(n, ".") {
					valid++
				}
			}
			if valid == 0 || valid == files {
				t.Fatalf("the kill did not land between renames: %d of %d files of step 100 under their names", valid, files)
			}
			after := scanDir(t, tg)
			for _, c := range after.Complete() {
				if c.Step == 100 {
					t.Errorf("after SIGKILL with %d of %d files renamed, the scan lists step 100 as a complete checkpoint (%d entries)",
						files-valid, files, len(c.Entries))
				}
			}

			rec, err := RecoverTrash(context.Background(), testLogger(t), Target{Target: tg}, time.Second)
			if err != nil || len(rec.Left) != 0 {
				t.Fatalf("recovery: %+v, %v", rec, err)
			}
			for _, n := range names(t, dir) {
				if strings.Contains(n, "100") || strings.HasPrefix(n, ".checkpoint_exporter-") && !strings.HasSuffix(n, ".lock") {
					t.Errorf("left after recovery: %s", n)
				}
			}
			if got := scanDir(t, tg); len(got.Complete()) != 1 || got.Complete()[0].Step != 200 {
				t.Errorf("after recovery: %d complete checkpoints, want only step 200", len(got.Complete()))
			}
		})
	}
}
