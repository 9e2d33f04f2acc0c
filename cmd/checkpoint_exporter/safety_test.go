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

	"golang.org/x/sys/unix"

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
	// Up to, not including, the temporary directory itself: /tmp is
	// setup-writable and sticky, and must stay so.
	for p := root; p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
		os.Chmod(p, 0o755) // let nobody reach the binary and the tree
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

// hfDeep writes Hugging Face checkpoint-N/ directories (weights,
// trainer_state.json, sub/opt.bin), saved a minute apart two hours ago.
func hfDeep(t *testing.T, dir string, steps ...int) {
	t.Helper()
	base := time.Now().Add(-2 * time.Hour)
	for i, s := range steps {
		c := filepath.Join(dir, fmt.Sprintf("checkpoint-%d", s))
		if err := os.MkdirAll(filepath.Join(c, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(c, "model.safetensors"), make([]byte, 8192), 0o644)
		os.WriteFile(filepath.Join(c, "sub", "opt.bin"), make([]byte, 4096), 0o644)
		os.WriteFile(filepath.Join(c, "trainer_state.json"), []byte(fmt.Sprintf(`{"global_step": %d}`, s)), 0o644)
		oldTimes(t, c, base.Add(time.Duration(i)*time.Minute))
	}
}

// oldTimes sets the mtime of everything below dir (and dir) to mt.
func oldTimes(t *testing.T, dir string, mt time.Time) {
	t.Helper()
	var paths []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	})
	for i := len(paths) - 1; i >= 0; i-- { // children first: a parent's mtime stays
		os.Chtimes(paths[i], mt, mt)
	}
}

// Issue #10 item 1 (invariant 2): removal never crosses into another
// filesystem. A checkpoint with a tmpfs or a bind mount inside is left in
// place, whole, with the mounted files; it is logged and counted; the prune
// goes on with the others.
func TestPruneNeverCrossesMountPoints(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to mount")
	}
	root := t.TempDir()
	// Whatever happens (a failing pruner renames the checkpoints), nothing
	// stays mounted below root.
	t.Cleanup(func() { unmountBelow(root) })
	dir := filepath.Join(root, "models")
	hfDeep(t, dir, 1, 2, 3, 4, 5)
	// Another disk (a tmpfs) inside checkpoint-1, and a bind mount of a
	// directory of the same filesystem (same st_dev, another mount) inside
	// checkpoint-2.
	scratch := filepath.Join(dir, "checkpoint-1", "scratch")
	testenv.MountTmpfs(t, scratch, "8m")
	elsewhere := filepath.Join(root, "elsewhere")
	os.Mkdir(elsewhere, 0o755)
	data := filepath.Join(dir, "checkpoint-2", "data")
	os.Mkdir(data, 0o755)
	if err := unix.Mount(elsewhere, data, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(data, unix.MNT_DETACH) })
	var precious []string
	for i, d := range []string{scratch, elsewhere} {
		for j := range 5 {
			p := filepath.Join(d, fmt.Sprintf("file-%d", j))
			os.WriteFile(p, []byte("on another mount"), 0o644)
			precious = append(precious, p)
		}
		oldTimes(t, d, time.Now().Add(-3*time.Hour+time.Duration(i)*time.Second))
	}
	oldTimes(t, filepath.Join(dir, "checkpoint-1"), time.Now().Add(-2*time.Hour))
	oldTimes(t, filepath.Join(dir, "checkpoint-2"), time.Now().Add(-2*time.Hour+time.Minute))

	out, stderr, code := runCLI(t, "prune", "--checkpoint.dir="+dir, "--keep=1", "--execute")
	if code != exitOK {
		t.Errorf("prune exited %d:\n%s\n%s", code, out, stderr)
	}
	for _, p := range precious {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("a file on another mount was deleted: %v", err)
		}
	}
	want := []string{"checkpoint-1", "checkpoint-2", "checkpoint-5"}
	if got := remaining(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("left %v, want %v (mounts left in place, 3 and 4 deleted, 5 kept)", got, want)
	}
	for _, n := range []string{"skipped checkpoint-1: checkpoint-1/scratch is a mount point", "skipped checkpoint-2: checkpoint-2/data is a mount point"} {
		if !strings.Contains(out, n) {
			t.Errorf("output does not say %q:\n%s", n, out)
		}
	}
	if strings.Count(stderr, "cause=mount_point") != 2 {
		t.Errorf("log does not give cause=mount_point twice:\n%s", stderr)
	}
}

// unmountBelow lazily unmounts every mount below root, deepest first.
func unmountBelow(root string) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], root+"/") {
			points = append(points, f[1])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		unix.Unmount(points[i], unix.MNT_DETACH)
	}
}

// Issue #10 item 2 (invariant 5): the webhook's prune reuses the scan cache
// for settled checkpoints, so a writer appending deep inside an old one
// (checkpoint-2/sub/opt.bin) is invisible to the plan; the fresh walk before
// deletion sees it and leaves that checkpoint in place, counted as changed.
func TestWebhookSkipsCheckpointWrittenDeepInside(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "models")
	hfDeep(t, dir, 1, 2, 3, 4)
	token := filepath.Join(root, "token")
	os.WriteFile(token, []byte("s3cret\n"), 0o600)
	cfg := filepath.Join(root, "c.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("scan_interval: 100ms\ntargets:\n"+
		"  - {name: t, path: %s, keep_last: 1, min_age: 1m, prune: {execute: true, high_watermark: 1%%, low_watermark: 0.5%%, headroom: 0s}}\n", dir)), 0o644)
	base, logs := serve(t, "--config.file="+cfg, "--webhook.token-file="+token)
	scrapeUntil(t, base+"/metrics", `checkpoint_dir_checkpoints{target="t"} 4`)
	// Let a background scan cache the settled checkpoints, then append deep
	// inside one; the top-level entry does not change.
	time.Sleep(300 * time.Millisecond)
	f, err := os.OpenFile(filepath.Join(dir, "checkpoint-2", "sub", "opt.bin"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("more optimizer state"))
	f.Close()

	if code := postAlert(t, base, "s3cret", "t"); code != http.StatusOK && code != http.StatusInternalServerError {
		t.Fatalf("webhook answered %d; logs:\n%s", code, logs)
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoint-2", "sub", "opt.bin")); err != nil {
		t.Errorf("checkpoint being written deep inside was deleted: %v", err)
	}
	want := []string{"checkpoint-2", "checkpoint-4"}
	if got := remaining(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("left %v, want %v", got, want)
	}
	scrapeUntil(t, base+"/metrics", `checkpoint_prune_skipped_checkpoints_total{cause="changed",target="t"} 1`)
}
