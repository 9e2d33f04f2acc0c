package pruner

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
)

// removeTree removes the directory name (relative to dirfd) and everything
// in it, without following symlinks: entries are unlinked relative to their
// directory's descriptor, and a symlink is an entry like any file. Every call
// is blocking-aware (internal/dirfs), so a hung network filesystem stalls
// only this prune, never the rest of the process. A directory on another
// filesystem or mount than fs (a mount point) is never entered: removal stops
// there with ErrMountPoint, before deleting anything of that filesystem.
func removeTree(dirfd int, name string, fs mountID) error {
	fd, err := dirfs.OpenDirAt(dirfd, append([]byte(name), 0))
	if errors.Is(err, unix.ENOENT) {
		return nil // removed meanwhile (another pruner finishing the same trash)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	if got, err := mountIDOf(fd); err != nil || !got.same(fs) {
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("stat %s: %w", name, err)
		}
		return fmt.Errorf("%s: %w", name, ErrMountPoint)
	}
	buf := make([]byte, dirfs.BufSize)
	var firstErr error
	for {
		// Unlinking while reading a directory can make getdents skip entries,
		// so the directory is read again until nothing is left in it.
		seen := 0
		err := dirfs.ReadDirents(fd, buf, func(nameZ []byte, typ byte) bool {
			seen++
			if err := removeEntry(fd, nameZ, typ, fs); err != nil {
				firstErr = err
				return false
			}
			return true
		})
		if errors.Is(err, unix.ENOENT) {
			break // removed meanwhile, by another pruner finishing it too
		}
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("read %s: %w", name, err)
		}
		if seen == 0 || firstErr != nil {
			break
		}
		if _, err := unix.Seek(fd, 0, 0); err != nil {
			firstErr = err
			break
		}
	}
	unix.Close(fd)
	if firstErr != nil {
		return firstErr
	}
	if err := dirfs.UnlinkAt(dirfd, append([]byte(name), 0), unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("rmdir %s: %w", name, err)
	}
	return nil
}

func removeEntry(dirfd int, nameZ []byte, typ byte, fs mountID) error {
	if typ != unix.DT_DIR {
		err := dirfs.UnlinkAt(dirfd, nameZ, 0)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EISDIR) { // DT_UNKNOWN on some filesystems
			return fmt.Errorf("unlink %s: %w", dirfs.Name(nameZ), err)
		}
	}
	return removeTree(dirfd, string(nameZ[:len(nameZ)-1]), fs)
}
