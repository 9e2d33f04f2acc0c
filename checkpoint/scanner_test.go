package checkpoint

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
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
		StatFS: func(p string) (FSStats, error) {
			calls.Add(1)
			<-release
			return StatFS(p)
		},
	})
	snap := s.Scan(context.Background())
	if snap.Up() || !errors.Is(snap.Err, ErrStatFSHung) {
		t.Fatalf("up=%v err=%v; want down with ErrStatFSHung", snap.Up(), snap.Err)
	}
	// While the first call hangs, later scans do not pile up more calls.
	snap = s.Scan(context.Background())
	if !errors.Is(snap.Err, ErrStatFSHung) || calls.Load() != 1 {
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

// A statfs that is slow but answers is not a hung one: a second caller
// (a prune re-measuring while the background scan measures) waits for the
// call in flight and then asks again itself, so what it gets was measured
// after it asked; the two calls never overlap.
func TestStatFSInFlightIsWaitedFor(t *testing.T) {
	var g statGuard
	entered := make(chan int, 2)
	release := make(chan struct{})
	var calls, inside, overlapped atomic.Int32
	fn := func(string) (FSStats, error) {
		n := calls.Add(1)
		if inside.Add(1) > 1 {
			overlapped.Store(1)
		}
		defer inside.Add(-1)
		entered <- int(n)
		<-release
		return FSStats{FreeBytes: uint64(n)}, nil
	}
	type answer struct {
		fs  FSStats
		err error
	}
	first, second := make(chan answer, 1), make(chan answer, 1)
	go func() {
		fs, err := g.stat(context.Background(), time.Minute, fn, "/x")
		first <- answer{fs, err}
	}()
	<-entered
	go func() {
		fs, err := g.stat(context.Background(), time.Minute, fn, "/x")
		second <- answer{fs, err}
	}()
	select {
	case a := <-second:
		t.Fatalf("second caller answered while the first call was in flight: %+v", a)
	case <-time.After(50 * time.Millisecond):
	}
	release <- struct{}{}
	if a := <-first; a.err != nil || a.fs.FreeBytes != 1 {
		t.Fatalf("first caller: %+v", a)
	}
	if n := <-entered; n != 2 {
		t.Fatalf("second call is call %d", n)
	}
	release <- struct{}{}
	if a := <-second; a.err != nil || a.fs.FreeBytes != 2 {
		t.Fatalf("second caller got %+v; want its own call's answer (2)", a)
	}
	if overlapped.Load() != 0 {
		t.Error("two statfs calls of one target overlapped")
	}
}

// Two calls that each answer within the timeout are not taken for a hang,
// even when the second caller, having waited for the first call, needs
// longer than the timeout in all.
func TestStatFSSlowIsNotHung(t *testing.T) {
	const timeout, call = time.Second, 600 * time.Millisecond
	var g statGuard
	fn := func(string) (FSStats, error) { time.Sleep(call); return FSStats{}, nil }
	errs := make(chan error, 2)
	entered := make(chan struct{})
	go func() {
		_, err := g.stat(context.Background(), timeout, func(p string) (FSStats, error) { close(entered); return fn(p) }, "/x")
		errs <- err
	}()
	<-entered
	start := time.Now()
	_, err := g.stat(context.Background(), timeout, fn, "/x")
	if err != nil {
		t.Errorf("second caller after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if err := <-errs; err != nil {
		t.Errorf("first caller: %v", err)
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
		StatFS: func(p string) (FSStats, error) {
			if calls.Add(1) == 1 {
				close(entered)
				<-release
			}
			return StatFS(p)
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

// A caller that gives up while waiting says so, not that the mount hangs.
func TestStatFSCallerCancelled(t *testing.T) {
	var g statGuard
	release := make(chan struct{})
	defer close(release)
	entered := make(chan struct{})
	go g.stat(context.Background(), time.Minute, func(string) (FSStats, error) {
		close(entered)
		<-release
		return FSStats{}, nil
	}, "/x")
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := g.stat(ctx, time.Minute, func(string) (FSStats, error) { t.Error("second call made"); return FSStats{}, nil }, "/x")
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrStatFSHung) {
		t.Fatalf("err = %v; want context.Canceled, not hung", err)
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

func TestParseMountinfo(t *testing.T) {
	const mi = `22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
31 22 0:27 /sub /mnt/bind\040dir rw - xfs /dev/sdb1 rw
30 22 0:27 / /data rw,relatime shared:2 - xfs /dev/sdb1 rw
40 22 0:50 / /data/models rw - nfs4 server:/export rw
41 40 0:50 /other /data/models rw - nfs4 server:/export rw,vers=4.2,actimeo=30
`
	mounts, err := parseMounts(strings.NewReader(mi))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dev  uint64
		path string
		want mount
		inFS string
	}{
		{"root filesystem", unix.Mkdev(252, 1), "/home/x", mount{"/", "/", "/dev/vda1", "ext4", "rw"}, "/home/x"},
		// The bind mount is listed first and its mount point is longer:
		// still, the path is not below it.
		{"device mounted twice", unix.Mkdev(0, 27), "/data/run1", mount{"/data", "/", "/dev/sdb1", "xfs", "rw"}, "/run1"},
		{"bind mount of a subdirectory, escaped name", unix.Mkdev(0, 27), "/mnt/bind dir/x", mount{"/mnt/bind dir", "/sub", "/dev/sdb1", "xfs", "rw"}, "/sub/x"},
		{"mount point itself", unix.Mkdev(0, 27), "/mnt/bind dir", mount{"/mnt/bind dir", "/sub", "/dev/sdb1", "xfs", "rw"}, "/sub"},
		{"mounted on top of another at one point", unix.Mkdev(0, 50), "/data/models/a", mount{"/data/models", "/other", "server:/export", "nfs4", "rw,vers=4.2,actimeo=30"}, "/other/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := mounts.of(tt.dev, tt.path)
			if !ok || got != tt.want || got.inFS(tt.path) != tt.inFS {
				t.Errorf("dev %d path %s: got %+v (%q), %v; want %+v (%q)", tt.dev, tt.path, got, got.inFS(tt.path), ok, tt.want, tt.inFS)
			}
		})
	}
	if m, ok := mounts.of(unix.Mkdev(9, 9), "/"); ok {
		t.Errorf("unknown device: got %+v", m)
	}
	if m, ok := mounts.of(unix.Mkdev(0, 27), "/srv"); ok {
		t.Errorf("a path over no mount of the device: got %+v", m)
	}
	for path, want := range map[string]Location{
		"/data/models/x": {unix.Mkdev(0, 50), "/other/x"},
		"/data/run":      {unix.Mkdev(0, 27), "/run"},
		"/datas":         {unix.Mkdev(252, 1), "/datas"},
	} {
		if e, ok := mounts.at(path); !ok || (Location{e.dev, e.inFS(path)}) != want {
			t.Errorf("at(%s): %+v, %v; want %v", path, e, ok, want)
		}
	}
}

func TestLocationWithin(t *testing.T) {
	d1, d2 := unix.Mkdev(0, 27), unix.Mkdev(0, 28)
	for _, tt := range []struct {
		l, o Location
		want bool
	}{
		{Location{d1, "/a"}, Location{d1, "/a"}, true},
		{Location{d1, "/a/b"}, Location{d1, "/a"}, true},
		{Location{d1, "/a"}, Location{d1, "/a/b"}, false},
		{Location{d1, "/ab"}, Location{d1, "/a"}, false},
		{Location{d1, "/a"}, Location{d1, "/"}, true},
		{Location{d1, "/a/b"}, Location{d2, "/a"}, false},
		{Location{d1, ""}, Location{d1, "/"}, false},
		{Location{d1, "/"}, Location{d1, ""}, false},
	} {
		if got := tt.l.Within(tt.o); got != tt.want {
			t.Errorf("%v within %v: %v, want %v", tt.l, tt.o, got, tt.want)
		}
	}
}

func TestStatFSReal(t *testing.T) {
	fs, err := StatFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if fs.SizeBytes == 0 || fs.AvailBytes > fs.SizeBytes || fs.Mountpoint == "" || fs.FSType == "" {
		t.Errorf("implausible stats: %+v", fs)
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
