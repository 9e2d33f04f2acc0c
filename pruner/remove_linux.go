package pruner

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// removeTree removes the directory name (relative to dirfd) and everything
// in it, without following symlinks: entries are unlinked relative to their
// directory's descriptor, and a symlink is an entry like any file.
//
// unlinkat is issued as a raw syscall: on a journaling filesystem each one
// takes tens of microseconds, long enough for the Go scheduler to hand the
// thread's P to another thread on every call, which made deleting 100 000
// files 30% slower than rm -rf. A raw syscall keeps the P for the short wait.
func removeTree(dirfd int, name string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	buf := make([]byte, 64<<10)
	var firstErr error
	for {
		// Unlinking while reading a directory can make getdents skip entries,
		// so the directory is read again until nothing is left in it.
		seen := 0
		err := checkpoint.ReadDirents(fd, buf, func(nameZ []byte, typ byte) bool {
			seen++
			if err := removeEntry(fd, nameZ, typ); err != nil {
				firstErr = err
				return false
			}
			return true
		})
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
	if err := unlinkatRaw(dirfd, append([]byte(name), 0), unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("rmdir %s: %w", name, err)
	}
	return nil
}

func removeEntry(dirfd int, nameZ []byte, typ byte) error {
	if typ != unix.DT_DIR {
		err := unlinkatRaw(dirfd, nameZ, 0)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EISDIR) { // DT_UNKNOWN on some filesystems
			return fmt.Errorf("unlink %s: %w", nameZ[:len(nameZ)-1], err)
		}
	}
	return removeTree(dirfd, string(nameZ[:len(nameZ)-1]))
}

func unlinkatRaw(dirfd int, nameZ []byte, flags int) error {
	_, _, e := unix.RawSyscall(unix.SYS_UNLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(&nameZ[0])), uintptr(flags))
	if e != 0 {
		return e
	}
	return nil
}
