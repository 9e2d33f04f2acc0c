package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// A bind mount of one of target a's checkpoints that appears on target b's
// directory after both were scanned: b's ".." is the mount point's parent,
// so the chains of parents do not meet, but the filesystem names b's
// directory as one below a's. Every scan of either refuses it, a's even
// before b is scanned again; without the mount both scan again. With a
// StatFS that reads no mounts (a test's), the scan reads them itself.
func TestScanRefusesTargetInsideAnotherThroughBindMount(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to bind-mount")
	}
	for _, tt := range []struct {
		name   string
		statFS func(string) (FSStats, error)
	}{
		{"the scan's statfs reads the mounts", nil},
		{"a statfs without mounts", func(string) (FSStats, error) { return FSStats{SizeBytes: 1 << 30, AvailBytes: 1 << 29}, nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			a, b := filepath.Join(root, "x", "a"), filepath.Join(root, "y", "b")
			for _, d := range []string{filepath.Join(a, "checkpoint-700"), b} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			var scanners []*Scanner
			for name, path := range map[string]string{"a": a, "b": b} {
				s, err := NewScanner(Target{Name: name, Path: path}, ScanOptions{StatFS: tt.statFS})
				if err != nil {
					t.Fatal(err)
				}
				scanners = append(scanners, s)
			}
			inv := NewInventory(log.NewNopLogger(), time.Hour, scanners...)
			scan := func(name, want string) {
				t.Helper()
				snap, _ := inv.Rescan(t.Context(), name)
				switch err := snap.Err; {
				case want == "" && err != nil:
					t.Errorf("scan of %s: %v, want none", name, err)
				case want != "" && (!errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want)):
					t.Errorf("scan of %s: %v, want a refusal saying %q", name, err, want)
				}
			}
			scan("a", "")
			scan("b", "")

			if err := unix.Mount(filepath.Join(a, "checkpoint-700"), b, "", unix.MS_BIND, ""); err != nil {
				t.Fatalf("bind mount: %v", err)
			}
			mounted := true
			t.Cleanup(func() {
				if mounted {
					unix.Unmount(b, unix.MNT_DETACH)
				}
			})
			scan("a", "contains target b's through a bind mount")
			scan("b", "inside target a's through a bind mount")
			scan("a", "contains target b's through a bind mount")

			if err := unix.Unmount(b, 0); err != nil {
				t.Fatal(err)
			}
			mounted = false
			scan("b", "")
			scan("a", "")
		})
	}
}

// peers compares where the two directories lie in their filesystems, as
// each scan found its own and as the scan's mount table puts the other's
// path now; component by component, on one device only.
func TestPeersCompareLocations(t *testing.T) {
	d, e := unix.Mkdev(254, 0), unix.Mkdev(0, 50)
	mounts := mountTable{
		{dev: d, mount: mount{mountpoint: "/", root: "/", source: "/dev/vda", fstype: "ext4"}},
		{dev: d, mount: mount{mountpoint: "/y/bound", root: "/x/a/checkpoint-700", source: "/dev/vda", fstype: "ext4"}},
		{dev: e, mount: mount{mountpoint: "/y/other", root: "/", source: "tmpfs", fstype: "tmpfs"}},
	}
	a := place{chain: []DirID{{d, 10}, {d, 2}}, loc: Location{d, "/x/a"}, path: "/x/a"}
	for _, tt := range []struct {
		name string
		b    place
		want string // what a's refusal says; "" if a is accepted
	}{
		{"b's directory inside a's", place{loc: Location{d, "/x/a/checkpoint-700"}, path: "/y/b"}, "contains target b's through a bind mount"},
		{"b's directory around a's", place{loc: Location{d, "/x"}, path: "/y/b"}, "is inside target b's through a bind mount"},
		{"one directory", place{loc: Location{d, "/x/a"}, path: "/y/b"}, "is also target b's through a bind mount"},
		{"a sibling sharing a prefix", place{loc: Location{d, "/x/ab"}, path: "/y/b"}, ""},
		{"another filesystem", place{loc: Location{e, "/x/a/checkpoint-700"}, path: "/y/other/b"}, ""},
		{"b not located", place{path: "/z/b"}, ""},
		{"b's path now on a mount of a's checkpoint", place{loc: Location{d, "/y/bound/b"}, path: "/y/bound/b"},
			"contains target b's through a bind mount (on device 254:0 this one is /x/a, b's is /x/a/checkpoint-700/b by the mount at /y/bound)"},
		{"b's path now on another filesystem", place{loc: Location{d, "/y/other/b"}, path: "/y/other/b"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &peers{places: map[string]place{}}
			b := tt.b
			b.chain = []DirID{{d, 20}, {d, 3}}
			if err := p.check("b", &b, nil); err != nil {
				t.Fatalf("b alone: %v", err)
			}
			pa := a
			err := p.check("a", &pa, mounts)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("a at %v, b at %v (path %s): %v, want none", a.loc, b.loc, b.path, err)
			case tt.want != "" && (!errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("a at %v, b at %v (path %s): %v, want a refusal saying %q", a.loc, b.loc, b.path, err, tt.want)
			}
		})
	}
}

// On a filesystem that makes inode numbers up (sshfs numbers nodes in
// lookup order; a remount starts again and reuses the device number),
// another target's directory can get the number this one had before: the
// IDs are not compared there, where the directories lie in the filesystem
// is. Before the fix, target hf was refused after a remount as "the
// directory is also target keras's".
func TestPeersDoNotTrustInventedInodes(t *testing.T) {
	fuse, disk := unix.Mkdev(0, 39), unix.Mkdev(254, 0)
	// keras's place from before the remount; hf's, after it, with the numbers keras had.
	keras := place{chain: []DirID{{fuse, 3}, {fuse, 2}, {fuse, 1}, {disk, 50}}, loc: Location{fuse, "/a/keras"}, path: "/mnt/a/keras"}
	hf := place{chain: []DirID{{fuse, 3}, {fuse, 2}, {fuse, 1}, {disk, 50}}, loc: Location{fuse, "/b/hf"}, path: "/mnt/b/hf"}
	for _, tt := range []struct {
		name     string
		invented bool
		hfLoc    Location
		want     string // "" if hf is accepted
	}{
		{"invented numbers, other paths", true, hf.loc, ""},
		{"invented numbers, the same path", true, keras.loc, "is also target keras's through a bind mount"},
		{"invented numbers, inside by path", true, Location{fuse, "/a/keras/checkpoint-100"}, "is inside target keras's"},
		{"real numbers", false, hf.loc, "is also target keras's"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &peers{places: map[string]place{}}
			k, h := keras, hf
			k.inventedInodes, h.inventedInodes, h.loc = tt.invented, tt.invented, tt.hfLoc
			if err := p.check("keras", &k, nil); err != nil {
				t.Fatal(err)
			}
			err := p.check("hf", &h, nil)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (!errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want a refusal saying %q", err, tt.want)
			}
		})
	}
}
