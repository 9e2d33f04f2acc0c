package pruner

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// markDeletion marks the deletion of checkpoint c, made of several
// top-level entries, as begun, before any entry but first is touched (see
// checkpoint.AnchorPrefix): first is renamed to its anchor name, which needs
// no free block and no free inode, so a full disk can be pruned; a name too
// long for an anchor gets an intent record instead. The mark is made durable
// (the directory synced) before it returns, so it reaches the disk before any
// later rename. anchored says whether first was renamed into the mark.
func markDeletion(dirfd int, c checkpoint.Checkpoint, first string) (mark string, anchored bool, err error) {
	mark = checkpoint.AnchorPrefix + first
	err = renameNoReplace(dirfd, first, mark)
	switch {
	case errors.Is(err, unix.ENAMETOOLONG):
		mark, err = writeIntent(dirfd, c)
		if err != nil {
			if mark != "" {
				unix.Unlinkat(dirfd, mark, 0)
			}
			return "", false, err
		}
		return mark, false, nil
	case errors.Is(err, unix.EEXIST):
		return "", false, fmt.Errorf("an earlier deletion of %s is not finished (%s): %w", first, mark, err)
	case err != nil:
		return "", false, err
	}
	if err := unix.Fsync(dirfd); err != nil {
		return mark, true, fmt.Errorf("sync target directory: %w", err)
	}
	return mark, true, nil
}

// unmark ends a deletion once every entry the mark covers has a trash name:
// the renames are made durable first, then an anchor is renamed to trash
// itself (removed with the rest) and an intent record is removed.
func unmark(dirfd int, mark string) (trash string, err error) {
	if err := unix.Fsync(dirfd); err != nil {
		return "", fmt.Errorf("sync target directory: %w", err)
	}
	if orig, ok := checkpoint.IsAnchor(mark); ok {
		return renameUnique(dirfd, mark, trashName(orig))
	}
	if err := unix.Unlinkat(dirfd, mark, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return "", &os.PathError{Op: "unlink", Path: mark, Err: err}
	}
	return "", nil
}

// renameNoReplace renames from to to in dirfd, never replacing an entry.
// Where the filesystem has no RENAME_NOREPLACE (some NFS and FUSE
// filesystems), it checks first: under the target lock, nobody else makes
// the names this is used for.
func renameNoReplace(dirfd int, from, to string) error {
	err := unix.Renameat2(dirfd, from, dirfd, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, to, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: unix.EEXIST}
		}
		err = unix.Renameat(dirfd, from, dirfd, to)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// writeIntent records, durably, that checkpoint c is being deleted: the
// record is written under a temporary name, synced, renamed into place and
// the directory synced, so that it exists, whole, before the first rename to
// trash can reach the disk. It needs free space; markDeletion uses it only
// for names too long for an anchor. It returns the record's name.
func writeIntent(dirfd int, c checkpoint.Checkpoint) (string, error) {
	base := checkpoint.DeletingPrefix + c.Name
	if len(base) > 200 {
		base = base[:200]
	}
	tmp := base + "." + strconv.Itoa(os.Getpid()) + checkpoint.DeletingTmpSuffix
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return "", &os.PathError{Op: "create", Path: tmp, Err: err}
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, err = f.Write(checkpoint.EncodeIntent(c.Entries))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return "", fmt.Errorf("write intent record %s: %w", tmp, err)
	}
	name, err := renameUnique(dirfd, tmp, base)
	if err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return "", err
	}
	if err := unix.Fsync(dirfd); err != nil {
		return name, fmt.Errorf("sync target directory: %w", err)
	}
	return name, nil
}

// finishPending completes the deletions that a crash cut short in the
// locked target directory dir: every entry a mark still covers is renamed to
// trash (removed with the rest of the trash afterwards), then the mark goes.
// Intent records never completed (temporary names) are removed: no entry was
// touched under them. It returns the marks it could not finish.
func finishPending(logger log.Logger, dir *checkpoint.Dir, t checkpoint.Target) (left []string, err error) {
	dirfd := dir.Fd()
	stale, err := listNames(dirfd, func(n string) bool {
		return strings.HasPrefix(n, checkpoint.DeletingPrefix) && !checkpoint.IsIntentRecord(n)
	})
	if err != nil {
		return nil, err
	}
	for _, n := range stale {
		unix.Unlinkat(dirfd, n, 0)
	}
	pending, err := checkpoint.PendingDeletions(dir, t)
	if err != nil {
		return nil, err
	}
	for _, p := range pending {
		if err := finishOne(dirfd, p); err != nil {
			level.Error(logger).Log("msg", "cannot finish a deletion an earlier prune began; what it covers stays hidden from scans",
				"mark", p.Mark, "err", err)
			left = append(left, p.Mark)
			continue
		}
		level.Info(logger).Log("msg", "finished a deletion an interrupted prune began", "mark", p.Mark, "entries", len(p.Names))
	}
	return left, nil
}

func finishOne(dirfd int, p checkpoint.Pending) error {
	for _, n := range p.Names {
		if _, err := renameToTrash(dirfd, n); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	_, err := unmark(dirfd, p.Mark)
	if errors.Is(err, unix.ENOENT) {
		return nil // finished by another pruner meanwhile
	}
	return err
}

// isMarkName reports whether name is an anchor or an intent record,
// complete or not.
func isMarkName(name string) bool {
	_, anchor := checkpoint.IsAnchor(name)
	return anchor || strings.HasPrefix(name, checkpoint.DeletingPrefix)
}
