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

// writeIntent records, durably, that checkpoint c (several top-level
// entries) is being deleted, before any of its entries is touched: the
// record is written under a temporary name, synced, renamed into place and
// the directory synced, so that it exists, whole, before the first rename
// to trash can reach the disk. Scans hide what it names
// (checkpoint.DeletingPrefix). It returns the record's name.
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

// dropIntent removes an intent record once every entry it names has a trash
// name, after making those renames durable.
func dropIntent(dirfd int, name string) error {
	if err := unix.Fsync(dirfd); err != nil {
		return fmt.Errorf("sync target directory: %w", err)
	}
	if err := unix.Unlinkat(dirfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "unlink", Path: name, Err: err}
	}
	return nil
}

// finishIntents completes the deletions that intent records in dirfd say
// were begun: every entry a record names that is still the same inode is
// renamed to trash (removed with the rest of the trash afterwards), then the
// record goes. Records never completed (temporary names) are removed: no
// entry was touched under them. It returns what it could not finish.
func finishIntents(logger log.Logger, dirfd int, names []string) (left []string) {
	for _, rec := range names {
		if !checkpoint.IsIntentRecord(rec) {
			unix.Unlinkat(dirfd, rec, 0)
			continue
		}
		if err := finishIntent(dirfd, rec); err != nil {
			level.Error(logger).Log("msg", "cannot finish a deletion an earlier prune began; what it names stays hidden from scans",
				"record", rec, "err", err)
			left = append(left, rec)
			continue
		}
		level.Info(logger).Log("msg", "finished a deletion an interrupted prune began", "record", rec)
	}
	return left
}

func finishIntent(dirfd int, rec string) error {
	data, err := checkpoint.ReadIntentAt(dirfd, rec)
	if err != nil {
		return err
	}
	named, err := checkpoint.ParseIntent(data)
	if err != nil {
		return err
	}
	for _, n := range named {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, n.Name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Ino != n.Ino {
			continue // renamed already, or a new entry under the name
		}
		if _, err := renameToTrash(dirfd, n.Name); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return dropIntent(dirfd, rec)
}

// isIntentName reports whether name is an intent record, complete or not.
func isIntentName(name string) bool { return strings.HasPrefix(name, checkpoint.DeletingPrefix) }
