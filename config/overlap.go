package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// dirOf is a target's directory as the kernel sees it: the path with every
// symlink resolved, if it exists its identity (device and inode), which sees
// through a bind mount of the directory or of a parent, and where it lies in
// its filesystem, which also sees through a bind mount of a subdirectory.
type dirOf struct {
	real string
	st   os.FileInfo // nil if the directory does not exist (yet)
	// loc is where the directory lies in its filesystem, or will lie once
	// created (below its nearest existing parent); Path "" if unknown.
	loc targetdir.Location
}

func resolveDir(p string) dirOf {
	real := realPath(p)
	st, err := os.Stat(real)
	if err != nil || !st.IsDir() {
		st = nil
	}
	return dirOf{real: real, st: st, loc: locate(real)}
}

// realPath resolves the symlinks of the longest existing prefix of p and
// appends the rest, so a directory the training job has not created yet is
// placed where it will appear.
func realPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	rest := ""
	for cur := abs; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// locate places real in its filesystem (targetdir.Locate). A directory not
// created yet is placed below its nearest existing parent, as realPath
// places it; one that cannot be located (a btrfs subvolume's device is in no
// mount) is compared by path and identity only.
func locate(real string) targetdir.Location {
	rest := ""
	for cur := real; ; {
		loc, err := targetdir.Locate(cur)
		if err == nil {
			loc.Path = filepath.Join(loc.Path, rest)
			return loc
		}
		parent := filepath.Dir(cur)
		if !errors.Is(err, fs.ErrNotExist) || parent == cur {
			return targetdir.Location{}
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// same reports whether a and b are one directory, and whether that shows
// only through a bind mount (the two resolved paths differ).
func (a dirOf) same(b dirOf) (same, bind bool) {
	switch {
	case a.real == b.real:
		return true, false
	case a.st != nil && b.st != nil && os.SameFile(a.st, b.st):
		return true, true
	case a.loc.Path != "" && a.loc == b.loc:
		return true, true // not created yet, below two mounts of one directory
	}
	return false, false
}

// inside reports whether a lies strictly below b, and whether that shows
// only through a bind mount: not by the resolved paths, but by the
// identity of one of a's parents or by where a and b lie in their
// filesystem.
func (a dirOf) inside(b dirOf) (inside, bind bool) {
	if strings.HasPrefix(a.real, b.real+string(filepath.Separator)) || (b.real == "/" && a.real != "/") {
		return true, false
	}
	for cur := filepath.Dir(a.real); b.st != nil; cur = filepath.Dir(cur) {
		if st, err := os.Stat(cur); err == nil && os.SameFile(st, b.st) {
			return true, true
		}
		if cur == filepath.Dir(cur) {
			break
		}
	}
	return a.loc.Within(b.loc), true
}

// devName is a device as mountinfo and ls -l spell it, major:minor.
func devName(dev uint64) string {
	return fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
}

// CheckOverlap refuses two targets on one directory and a target inside
// another, after resolving symlinks and comparing directory identities and
// where the directories lie in their filesystems. The outer target's layout
// would see the inner directory as a checkpoint and could delete it whole;
// two policies on one directory cannot both hold. Paths that do not exist
// are compared by name; nothing is created, opened or scanned.
func (c *Config) CheckOverlap(file string) error {
	dirs := make([]dirOf, len(c.Targets))
	for i, t := range c.Targets {
		dirs[i] = resolveDir(t.Path)
	}
	fail := func(i, j int, what string, bind bool) error {
		a, b := c.Targets[j], c.Targets[i]
		how := ""
		switch {
		case bind && dirs[i].loc.Path != "" && dirs[j].loc.Path != "":
			how = fmt.Sprintf(" through a bind mount (in their filesystem, device %s, they are %s and %s)",
				devName(dirs[i].loc.Dev), dirs[i].loc.Path, dirs[j].loc.Path)
		case bind:
			how = " through a bind mount"
		}
		key := fmt.Sprintf("targets[%d] (%s).path", i, b.Name)
		var reason string
		if what == "same" {
			reason = fmt.Sprintf("%q is the same directory as target %s's %q (targets[%d])%s: two targets on one directory are refused, their policies cannot both hold",
				b.Path, a.Name, a.Path, j, how)
		} else {
			reason = fmt.Sprintf("%q is inside target %s's directory %q (targets[%d])%s: nested targets are refused, the outer one could delete the inner one as a checkpoint",
				b.Path, a.Name, a.Path, j, how)
		}
		return &Error{File: file, Key: key, Reason: reason}
	}
	for j := range dirs {
		for i := range j {
			if same, bind := dirs[j].same(dirs[i]); same {
				return fail(j, i, "same", bind)
			}
			if in, bind := dirs[j].inside(dirs[i]); in {
				return fail(j, i, "inside", bind)
			}
			if in, bind := dirs[i].inside(dirs[j]); in {
				return fail(i, j, "inside", bind)
			}
		}
	}
	return nil
}
