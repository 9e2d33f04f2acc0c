package pruner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
)

// TrashPrefix starts the hidden name a checkpoint is renamed to before it is
// removed. No layout recognises it, so a crash mid-delete never leaves a
// partial checkpoint under a name that looks valid.
const TrashPrefix = ".checkpoint_exporter-trash-"

// Recovery is what a pass over a target's trash did.
type Recovery struct {
	// Removed counts trash entries removed.
	Removed int
	// Left are trash entries that could not be removed (each is logged);
	// they take space but never stop a prune.
	Left []string
}

func renameToTrash(dirfd int, name string) (string, error) {
	return renameUnique(dirfd, name, trashName(name))
}

// trashName is the trash name an entry called name is renamed to (before a
// suffix that makes it unique).
func trashName(name string) string {
	base := TrashPrefix + name
	if len(base) > 200 {
		base = base[:200]
	}
	return base
}

// renameUnique renames name to base, or base.1, base.2... if taken, never
// replacing an entry; it returns the new name.
func renameUnique(dirfd int, name, base string) (string, error) {
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

// removeTrash removes one trash entry: a file or symlink is unlinked (a
// symlink loses only its link), a directory is removed recursively without
// following symlinks and without leaving dir.
func removeTrash(dirfd int, dir, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return &os.PathError{Op: "unlink", Path: filepath.Join(dir, name), Err: err}
	}
	fs, err := fsOf(dirfd)
	if err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	if err := removeTree(dirfd, name, fs); err != nil {
		return fmt.Errorf("remove %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// RecoverTrash finishes deletions that a crash interrupted: it removes every
// trash entry left in the target directory. It takes the target lock so it
// never races a running prune. Trash that cannot be removed is logged and
// listed in Recovery.Left, and recovery goes on past it; the error is only
// for a target that cannot be locked or listed.
func RecoverTrash(ctx context.Context, logger log.Logger, t Target, wait time.Duration) (Recovery, error) {
	dir, err := checkpoint.OpenDir(t.Path)
	if err != nil {
		return Recovery{}, err
	}
	defer dir.Close()
	// Nothing to recover (the usual case, and always for a watch-only
	// target): no lock, so a directory the exporter may only read gets no
	// lock file and no warning.
	if names, err := listNames(dir.Fd(), func(n string) bool { return isTrashName(n) || isMarkName(n) }); err == nil && len(names) == 0 {
		return Recovery{}, nil
	}
	cache, err := caching(dir, t.Policy)
	if err != nil {
		return Recovery{}, err
	}
	x := &Executor{Logger: logger, LockWait: wait}
	lk, err := lockTarget(ctx, dir, x.lockOptions(t, cache))
	if err != nil {
		return Recovery{}, err
	}
	defer lk.release()
	if err := dir.Recheck(); err != nil {
		return Recovery{}, err
	}
	return recoverTrash(log.With(logger, "target", t.Name), dir, t.Target)
}

// recoverTrash is RecoverTrash on the locked target directory dir.
func recoverTrash(logger log.Logger, dir *checkpoint.Dir, t checkpoint.Target) (Recovery, error) {
	var rec Recovery
	dirfd, path := dir.Fd(), t.Path
	// Multi-file deletions that were begun are finished first: their
	// entries get trash names, removed below with the rest of the trash.
	left, err := finishPending(logger, dir, t)
	if err != nil {
		return rec, fmt.Errorf("list %s: %w", path, err)
	}
	rec.Left = left
	names, err := listNames(dirfd, isTrashName)
	if err != nil {
		return rec, fmt.Errorf("list %s: %w", path, err)
	}
	for _, name := range names {
		if err := removeTrash(dirfd, path, name); err != nil {
			level.Error(logger).Log("msg", "trash left by an earlier prune cannot be removed; it takes space until removed by hand, and prunes go on",
				"name", name, "err", err)
			rec.Left = append(rec.Left, name)
			continue
		}
		level.Info(logger).Log("msg", "removed trash left by an interrupted prune", "name", name)
		rec.Removed++
	}
	return rec, nil
}

func isTrashName(name string) bool { return strings.HasPrefix(name, TrashPrefix) }

// listNames lists the entries of the directory dirfd whose names match,
// reading it through a descriptor of its own so that dirfd's offset is left
// alone.
func listNames(dirfd int, match func(string) bool) ([]string, error) {
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
