package targetdir

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

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
			p := NewPeers()
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
			p := NewPeers()
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
