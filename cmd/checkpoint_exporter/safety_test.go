package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// nobody is the user the permission tests run the binary as: root reads and
// removes everything, so a mode-000 directory only resists another user.
const nobody = 65534

// asNobody returns a copy of the binary that nobody can run, in a directory
// nobody can reach, and a workspace owned by nobody. It needs root.
func asNobody(t *testing.T) (bin, work string) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to run the binary as another user")
	}
	root := t.TempDir()
	for p := root; p != "/" && p != "."; p = filepath.Dir(p) {
		os.Chmod(p, 0o755) // let nobody reach the binary and the tree
		if p == os.TempDir() {
			break
		}
	}
	exe, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(root, "checkpoint_exporter")
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	work = filepath.Join(root, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, work
}

// chownTree gives the tree below dir (and dir) to nobody.
func chownTree(t *testing.T, dir string) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, nobody, nobody)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runAsNobody runs bin as nobody and returns stdout, stderr and exit code.
func runAsNobody(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// keras writes checkpoint_step_N.keras files, saved a minute apart two hours ago.
func keras(t *testing.T, dir string, steps ...int) {
	t.Helper()
	base := time.Now().Add(-2 * time.Hour)
	for i, s := range steps {
		p := filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s))
		if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := base.Add(time.Duration(i) * time.Minute)
		os.Chtimes(p, mt, mt)
	}
}

// Issue #10 item 9: trash that cannot be removed (a mode-000 directory left
// by an earlier prune) is reported, in the log, the output and a metric, and
// never stops later prunes.
func TestUnremovableTrashDoesNotBlockPrunes(t *testing.T) {
	bin, work := asNobody(t)
	dir := filepath.Join(work, "models")
	locked := filepath.Join(dir, ".checkpoint_exporter-trash-checkpoint_step_50.keras", "locked")
	if err := os.MkdirAll(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(locked, "shard"), []byte("x"), 0o644)
	keras(t, dir, 100, 200, 300, 400, 500, 600)
	chownTree(t, work)
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })

	out, stderr, code := runAsNobody(t, bin, "prune", "--checkpoint.dir="+dir, "--keep=3", "--execute")
	if code != exitOK {
		t.Errorf("prune --execute exited %d, want 0:\n%s\n%s", code, out, stderr)
	}
	want := []string{".checkpoint_exporter-trash-checkpoint_step_50.keras",
		"checkpoint_step_400.keras", "checkpoint_step_500.keras", "checkpoint_step_600.keras"}
	if got := remaining(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("left %v, want %v", got, want)
	}
	if !strings.Contains(out, "could not remove trash .checkpoint_exporter-trash-checkpoint_step_50.keras") ||
		!strings.Contains(stderr, "cannot be removed") {
		t.Errorf("unremovable trash not reported:\nstdout: %s\nstderr: %s", out, stderr)
	}

	// The server reports it as a metric from its start-up recovery.
	addr := freePort(t)
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--checkpoint.dir="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitUp(t, "http://"+addr, logs)
	scrapeUntil(t, "http://"+addr+"/metrics", `checkpoint_prune_trash_entries{target="models"} 1`)
}

// waitUp waits until the exporter at base answers.
func waitUp(t *testing.T, base string, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/metrics"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("exporter did not come up; logs:\n%s", logs.String())
}

// Issue #10 item 10 (invariant 2): the start-up refusals hold at run time. A
// target path that is a symlink re-pointed to /, to a file or to another
// target's directory is reported down by the next scan and not pruned; when
// it points back, the target comes back.
func TestRepointedTargetIsRefusedAtEveryScan(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	os.Mkdir(a, 0o755)
	os.Mkdir(b, 0o755)
	keras(t, a, 100, 200, 300, 400)
	keras(t, b, 100, 200)
	file := filepath.Join(root, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	link := filepath.Join(root, "current")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	repoint := func(to string) {
		t.Helper()
		tmp := link + ".new"
		os.Remove(tmp)
		if err := os.Symlink(to, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, link); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(root, "c.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("scan_interval: 100ms\ntargets:\n"+
		"  - {name: a, path: %s, keep_last: 1, min_age: 0s, prune: {high_watermark: 1%%, low_watermark: 0.5%%}}\n"+
		"  - {name: b, path: %s}\n", link, b)), 0o644)
	base, logs := serve(t, "--config.file="+cfg)
	scrapeUntil(t, base+"/metrics", `checkpoint_dir_checkpoints{target="a"} 4`)

	for _, tt := range []struct{ to, why string }{
		{"/", "is the root directory"},
		{file, "is not a directory"},
		{b, "also target b's"},
		{root, "contains target b's"},
	} {
		repoint(tt.to)
		scrapeUntil(t, base+"/metrics", `checkpoint_dir_up{target="a"} 0`)
		if !strings.Contains(logs.String(), tt.why) {
			t.Errorf("re-pointed to %s: log does not say %q", tt.to, tt.why)
		}
		// A prune of the refused target is an error, not a plan for the
		// wrong directory (here: a dry run, as prune.execute is off).
		resp := alertBody(t, base, "a")
		if !strings.Contains(resp, `"result":"error"`) || strings.Contains(resp, `"result":"dry_run"`) {
			t.Errorf("re-pointed to %s: webhook answered %s, want result error", tt.to, resp)
		}
		repoint(a)
		scrapeUntil(t, base+"/metrics", `checkpoint_dir_up{target="a"} 1`)
		scrapeUntil(t, base+"/metrics", `checkpoint_dir_up{target="b"} 1`)
	}
	if got := remaining(t, b); len(got) != 2 {
		t.Errorf("target b changed: %v", got)
	}
}

// alertBody sends one firing alert for target to the webhook and returns the
// response body.
func alertBody(t *testing.T, base, target string) string {
	t.Helper()
	body := fmt.Sprintf(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"CheckpointDiskPruneNeeded","target":%q}}]}`, target)
	resp, err := http.Post(base+"/webhook", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
