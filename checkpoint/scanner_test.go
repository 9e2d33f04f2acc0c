package checkpoint

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

func TestSizesMatchDu(t *testing.T) {
	dir := tree(t, map[string]int{
		"checkpoint-100/model.safetensors": 1 << 20, "checkpoint-100/optimizer.pt": 300_000,
		"checkpoint-100/sub/deeper/x": 5000, "checkpoint-200/model.safetensors": 1 << 20,
	})
	// A hard link inside one checkpoint counts once; a symlink to a big file
	// outside counts as the link only.
	outside := filepath.Join(t.TempDir(), "big")
	os.WriteFile(outside, make([]byte, 4<<20), 0o644)
	must(t, os.Link(filepath.Join(dir, "checkpoint-100/model.safetensors"), filepath.Join(dir, "checkpoint-100/sub/hardlink")))
	must(t, os.Symlink(outside, filepath.Join(dir, "checkpoint-200/link")))
	snap := scan(t, Target{Name: "t", Path: dir}, ScanOptions{})
	if len(snap.Checkpoints) != 2 {
		t.Fatalf("got %d checkpoints", len(snap.Checkpoints))
	}
	for _, c := range snap.Checkpoints {
		want := testenv.DuBytes(t, filepath.Join(dir, c.Name))
		if c.Bytes != want {
			t.Errorf("%s: bytes = %d, du says %d", c.Name, c.Bytes, want)
		}
	}
	if c := snap.Checkpoints[1]; c.Bytes > 2<<20 {
		t.Errorf("checkpoint-200 counts %d bytes: the symlink was followed", c.Bytes)
	}
}

func TestHardLinksAcrossCheckpointsCountOnce(t *testing.T) {
	dir := tree(t, map[string]int{"checkpoint-1/w": 1 << 20})
	must(t, os.Mkdir(filepath.Join(dir, "checkpoint-2"), 0o755))
	must(t, os.Link(filepath.Join(dir, "checkpoint-1/w"), filepath.Join(dir, "checkpoint-2/w")))
	snap := scan(t, Target{Name: "t", Path: dir}, ScanOptions{})
	{
		want := testenv.DuBytes(t, dir)
		// du counts the target directory itself too.
		var st unix.Stat_t
		must(t, unix.Lstat(dir, &st))
		if got := snap.Bytes() + st.Blocks*512; got != want {
			t.Errorf("bytes = %d (+ dir), du says %d", got, want)
		}
	}
}

func TestSymlinkCheckpointIsNotFollowed(t *testing.T) {
	dir := tree(t, map[string]int{"checkpoint_step_1.keras": 100, "checkpoint_step_2.keras": 100})
	outside := filepath.Join(t.TempDir(), "elsewhere.keras")
	os.WriteFile(outside, make([]byte, 8<<20), 0o644)
	must(t, os.Symlink(outside, filepath.Join(dir, "checkpoint_step_3.keras")))
	snap := scan(t, Target{Name: "t", Path: dir}, ScanOptions{})
	c := snap.Checkpoints[2]
	if !c.Entries[0].Symlink || c.Bytes > 8192 {
		t.Errorf("symlinked checkpoint: symlink=%v bytes=%d; want the link only", c.Entries[0].Symlink, c.Bytes)
	}
}

func TestOtherFilesystemNotCrossed(t *testing.T) {
	dir := tree(t, map[string]int{"checkpoint-1/w": 4096, "checkpoint-1/mnt/": 0})
	mnt := filepath.Join(dir, "checkpoint-1/mnt")
	testenv.MountTmpfs(t, mnt, "16m")
	os.WriteFile(filepath.Join(mnt, "big"), make([]byte, 8<<20), 0o644)
	snap := scan(t, Target{Name: "t", Path: dir}, ScanOptions{})
	if b := snap.Checkpoints[0].Bytes; b > 1<<20 {
		t.Errorf("bytes = %d: the walk entered another filesystem", b)
	}
}

func TestMissingDirectoryIsDown(t *testing.T) {
	s, _ := NewScanner(Target{Name: "t", Path: filepath.Join(t.TempDir(), "nope")}, ScanOptions{})
	snap := s.Scan(context.Background())
	if snap.Up() || !errors.Is(snap.Err, os.ErrNotExist) {
		t.Errorf("up=%v err=%v; want down with not-exist", snap.Up(), snap.Err)
	}
}

func TestStatFSHangReportsDown(t *testing.T) {
	dir := t.TempDir()
	release := make(chan struct{})
	var calls atomic.Int32
	s, _ := NewScanner(Target{Name: "t", Path: dir}, ScanOptions{
		StatFSTimeout: 50 * time.Millisecond,
		StatFS: func(p string) (targetdir.FSStats, error) {
			calls.Add(1)
			<-release
			return targetdir.StatFS(p)
		},
	})
	snap := s.Scan(context.Background())
	if snap.Up() || !errors.Is(snap.Err, targetdir.ErrStatFSHung) {
		t.Fatalf("up=%v err=%v; want down with targetdir.ErrStatFSHung", snap.Up(), snap.Err)
	}
	// While the first call hangs, later scans do not pile up more calls.
	snap = s.Scan(context.Background())
	if !errors.Is(snap.Err, targetdir.ErrStatFSHung) || calls.Load() != 1 {
		t.Fatalf("second scan: err=%v calls=%d; want hung error and no new call", snap.Err, calls.Load())
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if snap = s.Scan(context.Background()); snap.Up() || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !snap.Up() {
		t.Fatalf("after the mount recovered: %v", snap.Err)
	}
}

// How CI met it: a prune's on-demand scan preempts the background scan
// while that scan waits in a slow statfs. The cancelled call goes on in the
// background; the on-demand scan must wait for it and measure, not report
// the filesystem hung.
func TestPreemptedStatFSDoesNotMarkHung(t *testing.T) {
	dir := tree(t, map[string]int{"checkpoint-1/a": 10})
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	s, _ := NewScanner(Target{Name: "t", Path: dir}, ScanOptions{
		StatFSTimeout: time.Minute,
		StatFS: func(p string) (targetdir.FSStats, error) {
			if calls.Add(1) == 1 {
				close(entered)
				<-release
			}
			return targetdir.StatFS(p)
		},
	})
	bg := make(chan bool, 1)
	go func() {
		_, ok := s.ScanBackground(context.Background())
		bg <- ok
	}()
	<-entered
	onDemand := make(chan *Snapshot, 1)
	go func() { onDemand <- s.Scan(context.Background()) }()
	if ok := <-bg; ok {
		t.Fatal("the background scan was not preempted")
	}
	close(release)
	snap := <-onDemand
	if !snap.Up() || len(snap.Checkpoints) != 1 {
		t.Fatalf("on-demand scan: up=%v err=%v checkpoints=%d", snap.Up(), snap.Err, len(snap.Checkpoints))
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("statfs called %d times; want the preempted call and one of the on-demand scan's own", n)
	}
}

// A checkpoint deleted between scans is neither an error nor kept in the cache.
func TestDeletedCheckpointLeavesCache(t *testing.T) {
	dir := tree(t, map[string]int{"checkpoint-1/a": 10, "checkpoint-2/a": 10})
	s, _ := NewScanner(Target{Name: "t", Path: dir}, ScanOptions{})
	if snap := s.Scan(context.Background()); len(snap.Checkpoints) != 2 {
		t.Fatalf("want 2 checkpoints, got %d", len(snap.Checkpoints))
	}
	must(t, os.RemoveAll(filepath.Join(dir, "checkpoint-1")))
	snap := s.Scan(context.Background())
	if len(snap.Checkpoints) != 1 || snap.Errors != 0 {
		t.Errorf("after removal: %d checkpoints, %d errors; want 1, 0", len(snap.Checkpoints), snap.Errors)
	}
	if _, ok := s.cache["checkpoint-1"]; ok {
		t.Error("deleted checkpoint still cached")
	}
}

// Incremental rescans: settled checkpoints are not walked again unless their
// top-level entry changed or a full rescan is due.
func TestIncrementalRescan(t *testing.T) {
	dir := tree(t, map[string]int{"checkpoint-1/w": 4096, "checkpoint-2/w": 4096})
	now := time.Now()
	clock := func() time.Time { return now }
	s, _ := NewScanner(Target{Name: "t", Path: dir}, ScanOptions{FullRescanInterval: time.Hour, Now: clock})
	first := s.Scan(context.Background())
	size1 := first.Checkpoints[0].Bytes

	// Rewritten in place: the directory's mtime does not change, so only the
	// full verification catches it.
	old := time.Now().Add(-time.Hour)
	must(t, os.WriteFile(filepath.Join(dir, "checkpoint-1/w"), make([]byte, 64<<10), 0o644))
	must(t, os.Chtimes(filepath.Join(dir, "checkpoint-1/w"), old, old))
	now = now.Add(time.Minute)
	if got := s.Scan(context.Background()).Checkpoints[0].Bytes; got != size1 {
		t.Fatalf("settled checkpoint re-walked before the full rescan: %d, cached %d", got, size1)
	}
	now = now.Add(time.Hour)
	if got := s.Scan(context.Background()).Checkpoints[0].Bytes; got <= size1 {
		t.Fatalf("full rescan missed the in-place rewrite: %d bytes, was %d", got, size1)
	}

	// A new file in a settled directory changes its mtime: re-walked at once.
	size2 := s.Scan(context.Background()).Checkpoints[1].Bytes
	must(t, os.WriteFile(filepath.Join(dir, "checkpoint-2/extra"), make([]byte, 64<<10), 0o644))
	now = now.Add(time.Minute)
	if got := s.Scan(context.Background()).Checkpoints[1].Bytes; got <= size2 {
		t.Fatalf("new file in settled checkpoint not seen: %d bytes, was %d", got, size2)
	}
}

func TestYoungCheckpointsAreAlwaysWalked(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "checkpoint-1/w"), "x")
	s, _ := NewScanner(Target{Name: "t", Path: dir, MinAge: time.Hour}, ScanOptions{})
	s.Scan(context.Background())
	if c := s.cache["checkpoint-1"]; c.settled {
		t.Fatal("a checkpoint younger than min_age is settled")
	}
}

// Permission errors are counted and the scan goes on. Root reads everything,
// so the scan runs in a child process as nobody.
func TestPermissionErrorsCounted(t *testing.T) {
	if os.Getenv("CKPT_TEST_AS_NOBODY") != "" {
		s, _ := NewScanner(Target{Name: "t", Path: os.Getenv("CKPT_TEST_AS_NOBODY")}, ScanOptions{})
		snap := s.Scan(context.Background())
		if snap.Err != nil || snap.Errors == 0 || len(snap.Checkpoints) != 2 {
			t.Fatalf("err=%v errors=%d checkpoints=%d; want no error, errors > 0, 2 checkpoints", snap.Err, snap.Errors, len(snap.Checkpoints))
		}
		return
	}
	dir := tree(t, map[string]int{"checkpoint-1/w": 10, "checkpoint-2/secret/w": 10})
	bin := filepath.Join(dir, "scanner.test")
	exe, err := os.ReadFile(os.Args[0])
	must(t, err)
	must(t, os.WriteFile(bin, exe, 0o755))
	// Up to, not including, the temporary directory itself: /tmp is
	// world-writable and sticky, and must stay so.
	for p := dir; p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
		os.Chmod(p, 0o755) // let nobody reach the tree and the test binary
	}
	must(t, os.Chmod(filepath.Join(dir, "checkpoint-2/secret"), 0o000))
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "checkpoint-2/secret"), 0o755) })
	if os.Geteuid() != 0 {
		s, _ := NewScanner(Target{Name: "t", Path: dir}, ScanOptions{})
		if snap := s.Scan(context.Background()); snap.Errors == 0 {
			t.Fatal("unreadable directory not counted")
		}
		return
	}
	cmd := exec.Command(bin, "-test.run=^TestPermissionErrorsCounted$", "-test.v")
	cmd.Env = append(os.Environ(), "CKPT_TEST_AS_NOBODY="+dir)
	cmd.SysProcAttr = &unixSysProcAttrNobody
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scan as nobody: %v\n%s", err, out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
