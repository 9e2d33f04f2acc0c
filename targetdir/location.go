package targetdir

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Location is where a directory lies in its filesystem, whichever mount
// leads to it. A bind mount of a subdirectory shows that directory at
// another path, and its ".." is the mount point's parent, so neither the
// path nor the chain of parents shows what the directory lies inside; the
// filesystem's own name for it does.
type Location struct {
	// Dev is the filesystem's device: st_dev, mountinfo's major:minor.
	Dev uint64
	// Path is the directory's path as the filesystem names it: the mount's
	// root (mountinfo's fourth field) joined with the path below the mount
	// point. Empty when unknown.
	Path string
}

func (l Location) String() string {
	return fmt.Sprintf("%s on device %d:%d", l.Path, unix.Major(l.Dev), unix.Minor(l.Dev))
}

// Within reports whether l is o or lies below it: the same filesystem and
// o's path a prefix of l's, component by component (/a/bc is not within
// /a/b). An unknown location is within none and contains none.
func (l Location) Within(o Location) bool {
	if l.Path == "" || o.Path == "" || l.Dev != o.Dev {
		return false
	}
	return l.Path == o.Path || o.Path == "/" || strings.HasPrefix(l.Path, o.Path+"/")
}

// Locate places the directory (or file) path in its filesystem: its
// device, and the mount it lies in from /proc/self/mountinfo (the one of
// that device with the longest mount point over the path, with symlinks
// resolved), as StatFS does. It fails for a path that does not exist
// (errors.Is fs.ErrNotExist) and for a device no mount lies over (a btrfs
// subvolume has a device of its own that mountinfo does not list).
func Locate(path string) (Location, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return Location{}, err
	}
	if real, err = filepath.Abs(real); err != nil {
		return Location{}, err
	}
	var st unix.Stat_t
	if err := unix.Stat(real, &st); err != nil {
		return Location{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	mounts, err := readMounts(mountinfoFile)
	if err != nil {
		return Location{}, fmt.Errorf("locate %s: %w", path, err)
	}
	loc, ok := mounts.locate(uint64(st.Dev), real)
	if !ok {
		return Location{}, fmt.Errorf("locate %s: no mount of device %d:%d in %s lies over %s",
			path, unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)), mountinfoFile, real)
	}
	return loc, nil
}

// locate is Locate's lookup: path (absolute, symlinks resolved) on device dev.
func (mt mountTable) locate(dev uint64, path string) (Location, bool) {
	m, ok := mt.of(dev, path)
	if !ok {
		return Location{}, false
	}
	return Location{Dev: dev, Path: m.inFS(path)}, true
}
