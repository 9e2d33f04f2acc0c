package pruner

import (
	"context"
	"fmt"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// verifyTrash checks, after a prune on a filesystem whose client holds
// written files before sending them (rclone mount with --vfs-cache-mode
// writes or full), that the trash is gone from the server. A file written
// through the mount shortly before and renamed to trash is sent later under
// its trash name, after its removal: the trash directory comes back on the
// server with its contents, and the mount, listing from its cache, does not
// show it. Once the write-back delay and the listing cache have passed
// since the last removal, the listing is read from the server: trash found
// there is removed again, under the lock; what still cannot be removed is
// returned (Result.TrashLeft, checkpoint_prune_trash_entries), and every
// later prune tries again (recoverTrash). A file whose upload takes longer
// than that shows later and is removed by the next prune.
func (x *Executor) verifyTrash(ctx context.Context, logger log.Logger, dir *targetdir.Dir, t Target, cache targetdir.FSCaching) ([]string, error) {
	if err := cache.WaitWriteBack(ctx, logger); err != nil {
		return nil, err
	}
	names, err := targetdir.ListNames(dir.Fd(), func(n string) bool { return targetdir.IsTrash(n) || targetdir.IsMark(n) })
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t.Path, err)
	}
	if len(names) == 0 {
		return nil, nil
	}
	level.Warn(logger).Log("msg", "trash came back after the write-back: removing it again", "names", fmt.Sprint(names))
	lk, err := targetdir.Acquire(ctx, dir, x.lockOptions(t, cache))
	if err != nil {
		return names, err
	}
	defer lk.Release()
	if err := dir.Recheck(); err != nil {
		return names, err
	}
	rec, err := recoverTrash(logger, dir, t.Target)
	if err != nil {
		return names, err
	}
	return rec.Left, nil
}
