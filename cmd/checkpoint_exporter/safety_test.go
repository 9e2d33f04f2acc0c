package main

import (
	"bytes"
	"fmt"
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
