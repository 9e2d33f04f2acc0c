package pruner

import (
	"errors"
	"fmt"
	"path"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// Causes of a planned deletion that did not happen, as in
// checkpoint_prune_skipped_checkpoints_total{cause}.
const (
	// CauseChanged: the checkpoint changed since the scan the plan was made
	// from (replaced, written to, at any depth).
	CauseChanged = "changed"
	// CauseGone: the checkpoint was deleted by someone else meanwhile.
	CauseGone = "gone"
	// CauseMountPoint: another filesystem (or a bind mount) is mounted
	// inside the checkpoint; it is left in place, untouched.
	CauseMountPoint = "mount_point"
	// CauseError: the checkpoint could not be checked or deleted.
	CauseError = "error"
)

// mountID is the filesystem and mount a removal must stay on: st_dev alone does
// not tell a bind mount of the same filesystem apart, the mount ID does.
type mountID struct {
	dev    uint64
	mnt    uint64
	hasMnt bool // the kernel reports mount IDs (statx STATX_MNT_ID, Linux 5.8)
}

// mountIDOf returns the filesystem and mount of the open directory fd.
func mountIDOf(fd int) (mountID, error) {
	var stx unix.Statx_t
	if err := targetdir.StatxFresh(fd, "", unix.AT_EMPTY_PATH, &stx); err != nil {
		return mountID{}, err
	}
	return mountID{dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), mnt: stx.Mnt_id, hasMnt: stx.Mask&unix.STATX_MNT_ID != 0}, nil
}

// ErrMountPoint stops a removal at a directory of another filesystem or mount.
var ErrMountPoint = errors.New("mount point: another filesystem is never deleted")

// same reports whether g is the filesystem and mount f.
func (f mountID) same(g mountID) bool {
	return f.dev == g.dev && (!f.hasMnt || !g.hasMnt || f.mnt == g.mnt)
}

// other reports whether stx is on another filesystem or mount than f.
func (f mountID) other(stx *unix.Statx_t) bool {
	if unix.Mkdev(stx.Dev_major, stx.Dev_minor) != f.dev {
		return true
	}
	return f.hasMnt && stx.Mask&unix.STATX_MNT_ID != 0 && stx.Mnt_id != f.mnt
}

// inspection is one fresh walk of a checkpoint about to be deleted.
type inspection struct {
	fs    mountID
	files int64
	mtime int64
	ctime int64
	tree  dirfs.Tree
	// mount is the path (inside the checkpoint) of a mount point found.
	mount string
}

func (in *inspection) add(stx *unix.Statx_t) {
	in.files++
	in.mtime = max(in.mtime, stx.Mtime.Sec*int64(time.Second)+int64(stx.Mtime.Nsec))
	in.ctime = max(in.ctime, stx.Ctime.Sec*int64(time.Second)+int64(stx.Ctime.Nsec))
}

// inspect walks checkpoint c afresh through the target directory dirfd, just
// before it is deleted, and says why it must not be: another filesystem or
// bind mount anywhere inside (removal would delete that filesystem's files),
// or anything changed at any depth since the walk the plan was made from
// (the scan cache reuses a settled checkpoint's walk until the next full
// rescan, and a writer may be appending deep inside). cause is "" when c may go.
func inspect(dirfd int, c checkpoint.Checkpoint) (cause, why string) {
	fs, err := mountIDOf(dirfd)
	if err != nil {
		return CauseError, "cannot check the target directory: " + err.Error()
	}
	in := &inspection{fs: fs}
	for _, e := range c.Entries {
		var stx unix.Statx_t
		if err := targetdir.StatxFresh(dirfd, e.Name, 0, &stx); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return CauseGone, whyGone
			}
			return CauseError, "cannot check: " + err.Error()
		}
		if fs.other(&stx) {
			return CauseMountPoint, fmt.Sprintf("%s is a mount point: another filesystem is never deleted", e.Name)
		}
		in.add(&stx)
		if stx.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := in.walk(dirfd, e.Name, e.Name); err != nil {
				if errors.Is(err, unix.ENOENT) {
					return CauseChanged, "changed inside since the scan (an entry vanished)"
				}
				return CauseError, "cannot check inside: " + err.Error()
			}
			if in.mount != "" {
				return CauseMountPoint, fmt.Sprintf("%s is a mount point: another filesystem is never deleted", in.mount)
			}
		}
	}
	switch {
	case in.files != c.Files:
		return CauseChanged, fmt.Sprintf("changed inside since the scan (%d entries, the scan saw %d)", in.files, c.Files)
	case in.mtime != c.ModTime.UnixNano():
		return CauseChanged, fmt.Sprintf("written to inside since the scan (newest mtime %s, the scan saw %s)",
			time.Unix(0, in.mtime).UTC().Format(time.RFC3339Nano), c.ModTime.UTC().Format(time.RFC3339Nano))
	case !c.ChangeTime.IsZero() && in.ctime != c.ChangeTime.UnixNano():
		return CauseChanged, fmt.Sprintf("changed inside since the scan (newest ctime %s, the scan saw %s)",
			time.Unix(0, in.ctime).UTC().Format(time.RFC3339Nano), c.ChangeTime.UTC().Format(time.RFC3339Nano))
	}
	return "", ""
}

// errMountFound ends a walk at a mount point (inspection.mount).
var errMountFound = errors.New("mount point found")

// walk adds up the directory name below dirfd (rel is its path inside the
// checkpoint), stopping at the first mount point (recorded in in.mount).
func (in *inspection) walk(dirfd int, name, rel string) error {
	// dirs[d] is the path inside the checkpoint of the directory whose
	// entries are visited at depth d.
	dirs := []string{rel}
	err := in.tree.Walk(dirfd, append([]byte(name), 0), func(fd int, nameZ []byte, _ byte, depth int) (bool, error) {
		child := string(nameZ[:len(nameZ)-1])
		var stx unix.Statx_t
		if err := targetdir.StatxFresh(fd, child, 0, &stx); err != nil {
			return false, fmt.Errorf("%s: %w", path.Join(dirs[depth], child), err)
		}
		if in.fs.other(&stx) {
			in.mount = path.Join(dirs[depth], child)
			return false, errMountFound
		}
		in.add(&stx)
		if stx.Mode&unix.S_IFMT != unix.S_IFDIR {
			return false, nil
		}
		dirs = append(dirs[:depth+1], path.Join(dirs[depth], child))
		return true, nil
	}, func(nameZ []byte, depth int, err error) error {
		return fmt.Errorf("read %s: %w", dirs[depth], err)
	})
	if errors.Is(err, errMountFound) {
		return nil
	}
	return err
}
