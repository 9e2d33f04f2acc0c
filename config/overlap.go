package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// dirOf is a target's directory as the kernel sees it: the path with every
// symlink resolved and, if it exists, its identity (device and inode), which
// also sees through bind mounts.
type dirOf struct {
	real string
	st   os.FileInfo // nil if the directory does not exist (yet)
}

func resolveDir(p string) dirOf {
	real := realPath(p)
	st, err := os.Stat(real)
	if err != nil || !st.IsDir() {
		st = nil
	}
	return dirOf{real: real, st: st}
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

// same reports whether a and b are one directory.
func (a dirOf) same(b dirOf) bool {
	if a.real == b.real {
		return true
	}
	return a.st != nil && b.st != nil && os.SameFile(a.st, b.st)
}

// inside reports whether a lies strictly below b.
func (a dirOf) inside(b dirOf) bool {
	if strings.HasPrefix(a.real, b.real+string(filepath.Separator)) || (b.real == "/" && a.real != "/") {
		return true
	}
	if b.st == nil {
		return false
	}
	for cur := filepath.Dir(a.real); ; cur = filepath.Dir(cur) {
		if st, err := os.Stat(cur); err == nil && os.SameFile(st, b.st) {
			return true
		}
		if cur == filepath.Dir(cur) {
			return false
		}
	}
}

// checkOverlap refuses two targets on one directory and a target inside
// another, after resolving symlinks and comparing directory identities. The
// outer target's layout would see the inner directory as a checkpoint and
// could delete it whole; two policies on one directory cannot both hold.
func (c *Config) checkOverlap(file string) error {
	dirs := make([]dirOf, len(c.Targets))
	for i, t := range c.Targets {
		dirs[i] = resolveDir(t.Path)
	}
	fail := func(i int, format string, args ...any) error {
		key := fmt.Sprintf("targets[%d] (%s).path", i, c.Targets[i].Name)
		return &Error{File: file, Key: key, Reason: fmt.Sprintf(format, args...)}
	}
	for j := range dirs {
		for i := range j {
			a, b := c.Targets[i], c.Targets[j]
			switch {
			case dirs[j].same(dirs[i]):
				return fail(j, "%q is the same directory as target %s's %q (targets[%d]): two targets on one directory are refused, their policies cannot both hold",
					b.Path, a.Name, a.Path, i)
			case dirs[j].inside(dirs[i]):
				return fail(j, "%q is inside target %s's directory %q (targets[%d]): nested targets are refused, the outer one could delete the inner one as a checkpoint",
					b.Path, a.Name, a.Path, i)
			case dirs[i].inside(dirs[j]):
				return fail(i, "%q is inside target %s's directory %q (targets[%d]): nested targets are refused, the outer one could delete the inner one as a checkpoint",
					a.Path, b.Name, b.Path, j)
			}
		}
	}
	return nil
}
