package targetdir

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A statfs that is slow but answers is not a hung one: a second caller
// (a prune re-measuring while the background scan measures) waits for the
// call in flight and then asks again itself, so what it gets was measured
// after it asked; the two calls never overlap.
func TestStatFSInFlightIsWaitedFor(t *testing.T) {
	var g StatGuard
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
		fs, err := g.Stat(context.Background(), time.Minute, fn, "/x")
		first <- answer{fs, err}
	}()
	<-entered
	go func() {
		fs, err := g.Stat(context.Background(), time.Minute, fn, "/x")
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
	var g StatGuard
	fn := func(string) (FSStats, error) { time.Sleep(call); return FSStats{}, nil }
	errs := make(chan error, 2)
	entered := make(chan struct{})
	go func() {
		_, err := g.Stat(context.Background(), timeout, func(p string) (FSStats, error) { close(entered); return fn(p) }, "/x")
		errs <- err
	}()
	<-entered
	start := time.Now()
	_, err := g.Stat(context.Background(), timeout, fn, "/x")
	if err != nil {
		t.Errorf("second caller after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if err := <-errs; err != nil {
		t.Errorf("first caller: %v", err)
	}
}

// A caller that gives up while waiting says so, not that the mount hangs.
func TestStatFSCallerCancelled(t *testing.T) {
	var g StatGuard
	release := make(chan struct{})
	defer close(release)
	entered := make(chan struct{})
	go g.Stat(context.Background(), time.Minute, func(string) (FSStats, error) {
		close(entered)
		<-release
		return FSStats{}, nil
	}, "/x")
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := g.Stat(ctx, time.Minute, func(string) (FSStats, error) { t.Error("second call made"); return FSStats{}, nil }, "/x")
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrStatFSHung) {
		t.Fatalf("err = %v; want context.Canceled, not hung", err)
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

// An error says once what failed and why, and still matches its sentinels.
func TestErrorsSayItOnce(t *testing.T) {
	h := &Hung{What: "statfs /data/ckpt", For: 5 * time.Second, statfs: true}
	if got, want := h.Error(), "statfs /data/ckpt: no answer for 5s (hung mount?)"; got != want {
		t.Errorf("Hung: %q, want %q", got, want)
	}
	if !errors.Is(h, ErrHung) || !errors.Is(h, ErrStatFSHung) {
		t.Error("a statfs's Hung is not ErrHung and ErrStatFSHung")
	}
	if scan := (&Hung{What: "scan of /x", For: time.Minute}); !errors.Is(scan, ErrHung) || errors.Is(scan, ErrStatFSHung) {
		t.Error("a scan's Hung must be ErrHung only")
	}
	cause := os.ErrNotExist
	r := refused(cause, "%s no longer names the directory that was scanned (%v)", "/x", cause)
	if strings.Contains(r.Error(), ErrRefused.Error()) || !errors.Is(r, ErrRefused) || !errors.Is(r, os.ErrNotExist) {
		t.Errorf("refusal %q: Is(ErrRefused)=%v Is(cause)=%v", r, errors.Is(r, ErrRefused), errors.Is(r, os.ErrNotExist))
	}
}
