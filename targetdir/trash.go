package targetdir

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
)

// A checkpoint is deleted by renaming each of its top-level entries to a
// trash name first (atomic, needing no free block or inode), then removing
// the trash: a crash mid-delete leaves trash, which scans never count and
// recovery removes, never part of a checkpoint under a name that looks
// valid.

// RenameToTrash renames the entry name to a trash name and returns it.
func RenameToTrash(dirfd int, name string) (string, error) {
	return RenameUnique(dirfd, name, TrashName(name))
}

// TrashName is the trash name an entry called name is renamed to (before a
// suffix that makes it unique).
func TrashName(name string) string {
	base := TrashPrefix + name
	if len(base) > 200 {
		base = base[:200]
	}
	return base
}

// RenameUnique renames name to base, or base.1, base.2... if taken, never
// replacing an entry; it returns the new name.
func RenameUnique(dirfd int, name, base string) (string, error) {
	for i := 0; ; i++ {
		to := base
		if i > 0 {
			to = base + "." + strconv.Itoa(i)
		}
		err := unix.Renameat2(dirfd, name, dirfd, to, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			// No RENAME_NOREPLACE on this filesystem: check, then rename.
			var st unix.Stat_t
			if unix.Fstatat(dirfd, to, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
				continue
			}
			err = unix.Renameat(dirfd, name, dirfd, to)
		}
		if errors.Is(err, unix.EEXIST) && i < 100 {
			continue
		}
		if err != nil {
			return "", &os.LinkError{Op: "rename", Old: name, New: to, Err: err}
		}
		return to, nil
	}
}

// ListNames lists the entries of the directory dirfd whose names match,
// reading it through a descriptor of its own so that dirfd's offset is left
// alone.
func ListNames(dirfd int, match func(string) bool) ([]string, error) {
	fd, err := dirfs.OpenDirAt(dirfd, []byte(".\x00"))
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var names []string
	err = dirfs.ReadDirents(fd, make([]byte, dirfs.BufSize), func(nameZ []byte, _ byte) bool {
		if name := dirfs.Name(nameZ); match(name) {
			names = append(names, strings.Clone(name))
		}
		return true
	})
	return names, err
}
