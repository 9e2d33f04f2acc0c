package targetdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// A prune is most needed when the filesystem is full, and then it cannot
// create a file: no free block, or no free inode. Everything it writes is
// therefore either made ahead of need, while there is room, or done by
// renames and links, which need neither:
//
//   - a multi-entry checkpoint's deletion is marked by renaming its first
//     entry to an anchor (MarkDeletion), not by writing a record;
//   - flock mode locks the target directory itself, and LockFile, made here;
//   - lockfile mode writes its record into SpareLeaseFile, made here, and
//     links that to LeaseFile.
//
// Provision runs at start-up for every target that deletes and after every
// prune that deleted something (there is room again then).

// Provision makes, in the target directory path and while its filesystem
// has room, the files a prune in mode needs on a full disk (see above). A file that
// exists is left alone; an error says what could not be made.
func Provision(path string, mode LockMode) error {
	dir, err := OpenDir(path)
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Provision(mode)
}

// Provision is the package's Provision in the open directory d (after a
// prune that deleted something: there is room again).
func (d *Dir) Provision(mode LockMode) error {
	dirfd, path := d.Fd(), d.Path()
	spare := mode == LockLockfile
	if !spare {
		fd, err := unix.Openat(dirfd, LockFile, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return &os.PathError{Op: "create", Path: filepath.Join(path, LockFile), Err: err}
		}
		// A filesystem without flock falls back to the lock file mode:
		// it needs the spare then.
		if err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); err == nil {
			unix.Flock(fd, unix.LOCK_UN)
		} else {
			spare = noFlock(err)
		}
		unix.Close(fd)
	}
	if !spare {
		return nil
	}
	var st unix.Stat_t
	if unix.Fstatat(dirfd, SpareLeaseFile, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		return nil
	}
	tmp := SpareLeaseFile + ".new"
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "create", Path: filepath.Join(path, tmp), Err: err}
	}
	err = writeAll(fd, make([]byte, spareSize))
	unix.Close(fd)
	if err == nil {
		err = RenameNoReplace(dirfd, tmp, SpareLeaseFile)
	}
	if err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		if errors.Is(err, unix.EEXIST) {
			return nil // another pruner made one meanwhile
		}
		return fmt.Errorf("make %s: %w", filepath.Join(path, SpareLeaseFile), err)
	}
	return nil
}
