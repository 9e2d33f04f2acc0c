package pruner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// Recovery is what a pass over a target's trash did.
type Recovery struct {
	// Removed counts trash entries removed.
	Removed int
	// Left are trash entries that could not be removed (each is logged);
	// they take space but never stop a prune.
	Left []string
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
	fs, err := mountIDOf(dirfd)
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
	dir, err := targetdir.OpenDir(t.Path)
	if err != nil {
		return Recovery{}, err
	}
	defer dir.Close()
	// Nothing to recover (the usual case, and always for a watch-only
	// target): no lock, so a directory the exporter may only read gets no
	// lock file and no warning.
	if names, err := targetdir.ListNames(dir.Fd(), func(n string) bool { return targetdir.IsTrash(n) || targetdir.IsMark(n) }); err == nil && len(names) == 0 {
		return Recovery{}, nil
	}
	cache, err := dir.Caching(t.Policy.AttributeCache)
	if err != nil {
		return Recovery{}, err
	}
	x := &Executor{Logger: logger, LockWait: wait}
	lk, err := targetdir.Acquire(ctx, dir, x.lockOptions(t, cache))
	if err != nil {
		return Recovery{}, err
	}
	defer lk.Release()
	if err := dir.Recheck(); err != nil {
		return Recovery{}, err
	}
	return recoverTrash(log.With(logger, "target", t.Name), dir, t.Target)
}

// recoverTrash is RecoverTrash on the locked target directory dir.
func recoverTrash(logger log.Logger, dir *targetdir.Dir, t checkpoint.Target) (Recovery, error) {
	var rec Recovery
	dirfd, path := dir.Fd(), t.Path
	// Multi-file deletions that were begun are finished first: their
	// entries get trash names, removed below with the rest of the trash.
	left, err := finishPending(logger, dir, t)
	if err != nil {
		return rec, fmt.Errorf("list %s: %w", path, err)
	}
	rec.Left = left
	names, err := targetdir.ListNames(dirfd, targetdir.IsTrash)
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

// finishPending completes the deletions that a crash cut short in the
// locked target directory dir: every entry a mark still covers is renamed to
// trash (removed with the rest of the trash afterwards), then the mark goes.
// Intent records never completed (temporary names) are removed: no entry was
// touched under them. It returns the marks it could not finish.
func finishPending(logger log.Logger, dir *targetdir.Dir, t checkpoint.Target) (left []string, err error) {
	dirfd := dir.Fd()
	stale, err := targetdir.ListNames(dirfd, func(n string) bool {
		return strings.HasPrefix(n, targetdir.DeletingPrefix) && !targetdir.IsIntentRecord(n)
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
		if _, err := targetdir.RenameToTrash(dirfd, n); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	_, err := targetdir.Unmark(dirfd, p.Mark)
	if errors.Is(err, unix.ENOENT) {
		return nil // finished by another pruner meanwhile
	}
	return err
}
