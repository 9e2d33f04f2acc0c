package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
)

type kind uint8

const (
	kindOther kind = iota
	kindFile
	kindDir
	kindSymlink
)

type dirent struct {
	name string
	kind kind
}

// listing is the top level of a target directory, read once per scan. Layouts
// read it, and the few small state files they need through it, relative to
// the directory's file descriptor so that a renamed path cannot redirect them.
type listing struct {
	fd      int
	entries []dirent
	index   map[string]int
	// own are the exporter's own entries (OwnPrefix): lock files, trash,
	// deletion records and anchors. They are never part of entries, so no
	// layout can take one for a checkpoint, whatever its name looks like.
	own []dirent
}

// OwnPrefix starts the name of every entry the exporter itself makes in a
// target directory (lock and lease files, trash, deletion records and
// anchors, the offload state). Scans never count such an entry, list it as
// ignored or hand it to a layout.
const OwnPrefix = ".checkpoint_exporter"

// maxStateFile bounds what a layout reads of a framework state file.
const maxStateFile = 1 << 20

// readListing reads the top level of the open target directory dir. The
// listing uses dir's descriptor, which stays the caller's to close.
func readListing(dir *Dir) (*listing, error) {
	fd, err := dirfs.OpenDirAt(dir.fd, []byte(".\x00"))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir.path, Err: err}
	}
	defer unix.Close(fd) // read through a descriptor of its own: dir's offset is left alone
	d := &listing{fd: dir.fd, index: map[string]int{}}
	buf := make([]byte, dirfs.BufSize)
	err = dirfs.ReadDirents(fd, buf, func(nameZ []byte, typ byte) bool {
		k := kindOf(typ)
		n := string(nameZ[:len(nameZ)-1])
		if k == kindOther && typ == unix.DT_UNKNOWN {
			var st unix.Stat_t
			if unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
				k = kindOfMode(st.Mode)
			}
		}
		if strings.HasPrefix(n, OwnPrefix) {
			d.own = append(d.own, dirent{name: n, kind: k})
			return true
		}
		d.index[n] = len(d.entries)
		d.entries = append(d.entries, dirent{name: n, kind: k})
		return true
	})
	if err != nil {
		return nil, &os.PathError{Op: "readdir", Path: dir.path, Err: err}
	}
	return d, nil
}

func (d *listing) get(name string) (dirent, bool) {
	i, ok := d.index[name]
	if !ok {
		return dirent{}, false
	}
	return d.entries[i], true
}

// anySuffix reports whether some entry's name ends in suffix.
func (d *listing) anySuffix(suffix string) bool {
	for _, e := range d.entries {
		if strings.HasSuffix(e.name, suffix) {
			return true
		}
	}
	return false
}

// anyKind reports whether some entry is of kind k.
func (d *listing) anyKind(k kind) bool {
	for _, e := range d.entries {
		if e.kind == k {
			return true
		}
	}
	return false
}

func (d *listing) has(name string) bool { _, ok := d.index[name]; return ok }

func (d *listing) readlink(name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(d.fd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func (d *listing) exists(rel string) bool {
	var st unix.Stat_t
	return unix.Fstatat(d.fd, rel, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// readSmall reads a small regular file below the directory, without following
// a symlink in its last component and without blocking on a FIFO. It returns
// the file's mtime in nanoseconds.
func (d *listing) readSmall(rel string) ([]byte, int64, error) {
	fd, err := unix.Openat(d.fd, rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, 0, fmt.Errorf("%s: not a regular file", rel)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err != nil {
		return nil, 0, err
	}
	if len(data) > maxStateFile {
		return nil, 0, errors.New(rel + ": too large for a state file")
	}
	return data, st.Mtim.Nano(), nil
}

func kindOf(typ byte) kind {
	switch typ {
	case unix.DT_REG:
		return kindFile
	case unix.DT_DIR:
		return kindDir
	case unix.DT_LNK:
		return kindSymlink
	}
	return kindOther
}

func kindOfMode(mode uint32) kind {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return kindFile
	case unix.S_IFDIR:
		return kindDir
	case unix.S_IFLNK:
		return kindSymlink
	}
	return kindOther
}
