package checkpoint

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
	"github.com/checkpoint-exporter/checkpoint_exporter/layout"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// listing is the top level of a target directory, read once per scan. The
// layouts read it, and the few small state files they need through it,
// relative to the directory's file descriptor so that a renamed path cannot
// redirect them.
type listing struct {
	fd      int
	entries []layout.Entry
	// own are the exporter's own entries (targetdir.OwnPrefix): lock files, trash,
	// deletion marks. They are never part of entries, so no layout can
	// take one for a checkpoint, whatever its name looks like.
	own []layout.Entry
}

// maxStateFile bounds what a layout reads of a framework state file.
const maxStateFile = 1 << 20

// readListing reads the top level of the open target directory dir. The
// listing uses dir's descriptor, which stays the caller's to close.
func readListing(dir *targetdir.Dir) (*listing, error) {
	d := &listing{fd: dir.Fd()}
	err := readEntries(dir.Fd(), ".", func(e layout.Entry) {
		if targetdir.IsOwn(e.Name) {
			d.own = append(d.own, e)
		} else {
			d.entries = append(d.entries, e)
		}
	})
	if err != nil {
		return nil, &os.PathError{Op: "readdir", Path: dir.Path(), Err: err}
	}
	return d, nil
}

// readEntries lists the directory name below dirfd (without following a
// symlink), with each entry's kind (from d_type, or lstat where the
// filesystem does not fill it in). It reads through a descriptor of its
// own, so dirfd's offset is left alone.
func readEntries(dirfd int, name string, fn func(layout.Entry)) error {
	fd, err := dirfs.OpenDirAt(dirfd, append([]byte(name), 0))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return dirfs.ReadDirents(fd, make([]byte, dirfs.BufSize), func(nameZ []byte, typ byte) bool {
		e := layout.Entry{Name: string(nameZ[:len(nameZ)-1]), Kind: kindOf(typ)}
		if typ == unix.DT_UNKNOWN {
			var st unix.Stat_t
			if dirfs.LstatAt(fd, nameZ, &st) == nil {
				e.Kind = kindOfMode(st.Mode)
			}
		}
		fn(e)
		return true
	})
}

func (d *listing) readlink(name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(d.fd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// readSmall reads a small regular file below the directory (a framework's
// state file: at most maxStateFile bytes), without following a symlink in
// its last component and without blocking on a FIFO. It returns the file's
// mtime in nanoseconds.
func (d *listing) readSmall(rel string) ([]byte, int64, error) {
	data, st, err := dirfs.ReadSmall(d.fd, rel, maxStateFile)
	if err != nil {
		return nil, 0, err
	}
	return data, st.Mtim.Nano(), nil
}

func kindOf(typ byte) layout.Kind {
	switch typ {
	case unix.DT_REG:
		return layout.KindFile
	case unix.DT_DIR:
		return layout.KindDir
	case unix.DT_LNK:
		return layout.KindSymlink
	}
	return layout.KindOther
}

func kindOfMode(mode uint32) layout.Kind {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return layout.KindFile
	case unix.S_IFDIR:
		return layout.KindDir
	case unix.S_IFLNK:
		return layout.KindSymlink
	}
	return layout.KindOther
}
