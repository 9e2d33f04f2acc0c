package pruner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// Results of a prune, as in checkpoint_prune_runs_total{result}.
const (
	ResultOK           = "ok"
	ResultDryRun       = "dry_run"
	ResultNoop         = "noop"
	ResultInsufficient = "insufficient"
	ResultError        = "error"
)

// Deleted is one checkpoint a prune deleted (or, in a dry run, would delete).
type Deleted struct {
	Name   string `json:"name"`
	Step   int64  `json:"step"`
	Bytes  int64  `json:"bytes"`
	Reason string `json:"reason"`
}

// Skipped is a planned deletion that did not happen, and why: Cause is one
// of CauseChanged, CauseMountPoint, CauseError; Reason says it in words.
type Skipped struct {
	Name   string `json:"name"`
	Step   int64  `json:"step"`
	Cause  string `json:"cause"`
	Reason string `json:"reason"`
}

// Result is what one prune of one target did.
type Result struct {
	Target string `json:"target"`
	// Outcome is one of the Result* constants (checkpoint_prune_runs_total's
	// result label; "result" in JSON).
	Outcome string    `json:"result"`
	Deleted []Deleted `json:"deleted"`
	Skipped []Skipped `json:"skipped,omitempty"`
	// PlannedBytes is the disk usage of what was planned; FreedBytes is
	// the disk usage of what was deleted (as measured by the scan the plan
	// came from and checked unchanged right before deletion; hard links
	// once; 0 in a dry run). FreeSpaceChange is how much the filesystem's
	// available space changed meanwhile, by statfs before and after: other
	// writers move it, so it is never called freed, and it can be negative.
	PlannedBytes    uint64 `json:"planned_bytes"`
	FreedBytes      int64  `json:"freed_bytes"`
	FreeSpaceChange int64  `json:"free_space_change_bytes"`
	ShortBytes      uint64 `json:"short_bytes,omitempty"`
	Error           string `json:"error,omitempty"`
	// TrashLeft are trash entries in the target (from this prune or an
	// earlier one) that could not be removed; trashChecked says whether the
	// prune looked (only a prune that deletes does).
	TrashLeft    []string `json:"trash_left,omitempty"`
	trashChecked bool
	// Stopped says why the prune stopped before its free-space goal
	// while it could have deleted more: the filesystem's free space did
	// not change after a deletion, so the goal cannot be judged there.
	Stopped string `json:"stopped,omitempty"`
}

// Executor carries out plans.
type Executor struct {
	Logger log.Logger
	// StatFS measures free space (nil: targetdir.StatFS).
	StatFS func(path string) (targetdir.FSStats, error)
	// LockWait is how long to wait for another pruner's lock on the target.
	LockWait time.Duration
	// LockTTL is how long a lock file (lockfile mode) stays valid without
	// renewal (0: DefaultLockTTL).
	LockTTL time.Duration
	// afterRename, if set, runs after each rename of a checkpoint's entries
	// to trash with the number renamed so far (tests use it to kill the
	// process mid-delete at a chosen point).
	afterRename func(renamed int)
}

func (x *Executor) lockOptions(t Target, cache targetdir.FSCaching) targetdir.LockOptions {
	return targetdir.LockOptions{Mode: t.Policy.Lock, Wait: x.LockWait, TTL: x.LockTTL, Logger: x.Logger, Target: t.Name, Cache: cache}
}

func (x *Executor) statfs(path string) (targetdir.FSStats, error) {
	if x.StatFS != nil {
		return x.StatFS(path)
	}
	return targetdir.StatFS(path)
}

// Execute deletes what plan says on target t: it refuses a filesystem whose
// caching it cannot allow for and waits out a FUSE daemon's cache (settle),
// takes the target's lock, re-checks each checkpoint afresh (same inode and
// mtime as scanned, nothing changed inside, or it is skipped), stops as soon
// as the plan's free-space goal is met, renames each checkpoint to a trash
// name and then removes it, and measures the bytes freed. A dry run never
// gets here (see Service.Prune).
func (x *Executor) Execute(ctx context.Context, dir *targetdir.Dir, t Target, plan Plan, trigger string) (Result, error) {
	logger := log.With(x.Logger, "target", t.Name, "trigger", trigger)
	res := Result{Target: t.Name, Deleted: []Deleted{}, PlannedBytes: plan.DeleteBytes, ShortBytes: plan.ShortBytes}
	if plan.Noop || len(plan.Delete) == 0 {
		res.Outcome = ResultNoop
		if plan.Insufficient {
			res.Outcome = ResultInsufficient
		}
		return res, nil
	}

	// What this node sees of other clients' changes: a deletion is
	// refused where that cannot be trusted, and waits for a FUSE daemon's
	// cache to be younger than the scan.
	cache, err := dir.Caching(t.Policy.AttributeCache)
	if err == nil {
		err = refuseStale(t, cache)
	}
	if err == nil {
		err = cache.Settle(ctx, logger, plan.Scanned)
	}
	if err != nil {
		err = fmt.Errorf("target %s not pruned: %w", t.Name, err)
		res.Outcome, res.Error = ResultError, err.Error()
		return res, err
	}

	lk, err := targetdir.Acquire(ctx, dir, x.lockOptions(t, cache))
	if err != nil {
		res.Outcome, res.Error = ResultError, err.Error()
		return res, err
	}
	defer lk.Release()
	// The plan was made in dir: the configured path must still name it (a
	// symlinked target may have been re-pointed since), or nothing is deleted.
	if err := dir.Recheck(); err != nil {
		res.Outcome, res.Error = ResultError, err.Error()
		return res, fmt.Errorf("target %s not pruned: %w", t.Name, err)
	}
	dirfd := dir.Fd()

	// Trash left by an interrupted or failed deletion is removed first; what
	// cannot be removed is reported and the prune goes on.
	rec, err := recoverTrash(logger, dir, t.Target)
	if err != nil {
		level.Warn(logger).Log("msg", "could not look for trash left by earlier prunes", "err", err)
	}
	res.TrashLeft, res.trashChecked = rec.Left, err == nil

	before, err := x.statfs(t.Path)
	if err != nil {
		res.Outcome, res.Error = ResultError, err.Error()
		return res, fmt.Errorf("measure before prune: %w", err)
	}
	// covered counts the planned bytes that are gone, deleted here or by
	// another pruner: the plan's max_bytes part is met once it reaches
	// OverBytes, never earlier (the watermark part may be met sooner).
	var covered uint64
	goalMet := func() bool {
		if plan.Free.IsZero() || plan.Goal.Kind != GoalWatermark || covered < plan.OverBytes {
			return false
		}
		fs, err := x.statfs(t.Path)
		return err == nil && need(fs, plan.Free, plan.Goal.Headroom) == 0
	}
	// A free-space goal is judged by statfs; where statfs does not show
	// the deletions (rclone's cached figure, a made-up one), every
	// checkpoint prunable would go for nothing. After the first deletion
	// the free space must have changed, or only the max_bytes part, which
	// is counted from the checkpoints' sizes, goes on.
	freeGoal := !plan.Free.IsZero() && plan.Goal.Kind == GoalWatermark
	var firstErr error
	for _, it := range plan.Delete {
		if err := ctx.Err(); err != nil {
			firstErr = err
			break
		}
		if res.Stopped != "" && covered >= plan.OverBytes {
			break
		}
		if goalMet() {
			break
		}
		if err := lk.Check(); err != nil {
			firstErr = err
			break
		}
		c := it.Checkpoint
		if cause, why := recheck(dirfd, c, cache.InventsInodes); cause != "" {
			level.Warn(logger).Log("msg", "not deleting checkpoint", "name", c.Name, "step", c.Step, "cause", cause, "why", why)
			res.Skipped = append(res.Skipped, Skipped{Name: c.Name, Step: c.Step, Cause: cause, Reason: why})
			if cause == CauseGone {
				covered += uint64(max(c.Bytes, 0))
			}
			continue
		}
		left, err := removeCheckpoint(dirfd, t.Path, c, x.afterRename)
		res.TrashLeft = append(res.TrashLeft, left...)
		if errors.Is(err, errGone) {
			level.Warn(logger).Log("msg", "not deleting checkpoint", "name", c.Name, "step", c.Step, "cause", CauseGone, "why", whyGone)
			res.Skipped = append(res.Skipped, Skipped{Name: c.Name, Step: c.Step, Cause: CauseGone, Reason: whyGone})
			covered += uint64(max(c.Bytes, 0))
			continue
		}
		if err != nil {
			level.Error(logger).Log("msg", "deleting checkpoint failed", "name", c.Name, "step", c.Step, "trash_left", strings.Join(left, ","), "err", err)
			res.Skipped = append(res.Skipped, Skipped{Name: c.Name, Step: c.Step, Cause: CauseError, Reason: err.Error()})
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		covered += uint64(max(c.Bytes, 0))
		res.FreedBytes += max(c.Bytes, 0)
		level.Info(logger).Log("msg", "deleted checkpoint", "name", c.Name, "step", c.Step, "bytes", c.Bytes, "reason", it.Reason)
		res.Deleted = append(res.Deleted, Deleted{Name: c.Name, Step: c.Step, Bytes: c.Bytes, Reason: it.Reason})
		if freeGoal && len(res.Deleted) == 1 && c.Bytes > 0 && x.statfsUnmoved(dirfd, t.Path, before) {
			res.Stopped = fmt.Sprintf("free space did not change after deleting %s (%d bytes): %s does not show deletions in its statfs (a cached or made-up figure), so the free-space goal cannot be judged; stopped after one checkpoint",
				c.Name, c.Bytes, cache.FSType)
			level.Warn(logger).Log("msg", "free space did not change after a deletion: the free-space goal cannot be judged here, stopping", "name", c.Name,
				"bytes", c.Bytes, "fstype", cache.FSType, "avail_bytes", before.AvailBytes)
		}
	}

	if len(res.Deleted) > 0 {
		// There is room again: make what the next prune of a full disk needs.
		if err := dir.Provision(t.Policy.Lock); err != nil {
			level.Debug(logger).Log("msg", "could not make the files a prune needs on a full disk", "err", err)
		}
	}
	after, err := x.statfs(t.Path)
	if err == nil {
		res.FreeSpaceChange = int64(after.AvailBytes) - int64(before.AvailBytes)
	} else if firstErr == nil {
		firstErr = fmt.Errorf("measure after prune: %w", err)
	}
	// Trash that another pruner removed since (one that took an expired
	// lease over finishes what it finds) is no longer left.
	res.TrashLeft = stillThere(dirfd, res.TrashLeft)
	res.ShortBytes = 0
	if err == nil && !plan.Free.IsZero() {
		res.ShortBytes = need(after, plan.Free, plan.Goal.Headroom)
	}
	if cache.WriteBack > 0 && len(res.Deleted) > 0 {
		// The lock is not needed to wait: other pruners may go on.
		lk.Release()
		if left, err := x.verifyTrash(ctx, logger, dir, t, cache); err != nil {
			level.Warn(logger).Log("msg", "could not check that the trash is gone from the server", "err", err)
		} else {
			res.TrashLeft = left
		}
	}
	switch {
	case firstErr != nil:
		res.Outcome, res.Error = ResultError, firstErr.Error()
	case res.ShortBytes > 0:
		res.Outcome = ResultInsufficient
	default:
		res.Outcome = ResultOK
	}
	return res, firstErr
}

// statfsUnmoved reports whether the filesystem of path still shows exactly
// the free space measured before (before) after a deletion, even once
// synced: syncfs makes a filesystem that frees at its next commit (btrfs,
// XFS's background inode inactivation) apply the frees now, so only a
// statfs that does not reflect deletions at all stays unmoved.
func (x *Executor) statfsUnmoved(dirfd int, path string, before targetdir.FSStats) bool {
	same := func() bool {
		fs, err := x.statfs(path)
		return err == nil && fs.AvailBytes == before.AvailBytes && fs.FreeBytes == before.FreeBytes
	}
	if !same() {
		return false
	}
	unix.Syncfs(dirfd)
	return same()
}

// recheck compares every entry of c with what the scan saw, read afresh
// (targetdir.StatxFresh), then walks c afresh (inspect: nothing changed at any depth, no
// mount point inside). Where the filesystem makes inode numbers up
// (inventedInodes: sshfs, rclone), they are not compared: the same file can
// get another number once the kernel forgot it, and a replaced file shows
// in its ctime anyway. It returns why c must not be deleted (a Cause* and
// words), or "".
func recheck(dirfd int, c checkpoint.Checkpoint, inventedInodes bool) (cause, why string) {
	for _, e := range c.Entries {
		var stx unix.Statx_t
		if err := targetdir.StatxFresh(dirfd, e.Name, 0, &stx); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return CauseGone, whyGone
			}
			return CauseError, "cannot check: " + err.Error()
		}
		if unix.Mkdev(stx.Dev_major, stx.Dev_minor) != e.Dev || (!inventedInodes && stx.Ino != e.Ino) {
			return CauseChanged, "replaced since the scan (different inode)"
		}
		// ctime as well: it changes with any write or metadata change and
		// cannot be set back, and an inode number can be reused at once.
		if nanos(stx.Mtime) != e.Mtime || nanos(stx.Ctime) != e.Ctime || (!e.Dir && int64(stx.Size) != e.Size) {
			return CauseChanged, "modified since the scan"
		}
	}
	return inspect(dirfd, c)
}

// stillThere returns the names of trash that still exist in dirfd.
func stillThere(dirfd int, names []string) []string {
	var out []string
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, n, &st, unix.AT_SYMLINK_NOFOLLOW); !errors.Is(err, unix.ENOENT) {
			out = append(out, n)
		}
	}
	return out
}
func nanos(t unix.StatxTimestamp) int64 { return t.Sec*int64(time.Second) + int64(t.Nsec) }

// whyGone is why a planned checkpoint that is no longer there is skipped.
const whyGone = "gone since the scan (deleted by someone else)"

// errGone: the checkpoint vanished between the re-check and the rename.
var errGone = errors.New(whyGone)

// removeCheckpoint renames every entry of c to a trash name in the same
// directory (atomic, needs no space), then removes the trash without
// following symlinks. A checkpoint of several entries is first marked as
// being deleted (targetdir.MarkDeletion: its first entry, the index where there is
// one, renamed to an anchor), so that a crash between two renames never
// leaves the rest looking valid. afterRename, if set (tests), runs after each
// rename. It returns the trash it could not remove.
func removeCheckpoint(dirfd int, dir string, c checkpoint.Checkpoint, afterRename func(int)) ([]string, error) {
	entries := append([]checkpoint.Entry(nil), c.Entries...)
	sort.SliceStable(entries, func(i, j int) bool {
		return strings.HasSuffix(entries[i].Name, ".index") && !strings.HasSuffix(entries[j].Name, ".index")
	})
	var mark string
	rest := entries
	trash := make([]string, 0, len(entries))
	if len(entries) > 1 {
		m, anchored, err := targetdir.MarkDeletion(dirfd, c.Name, intentEntries(c.Entries), entries[0].Name)
		if errors.Is(err, unix.ENOENT) {
			// Another pruner (on a node the lock does not reach) began
			// first: the checkpoint is being deleted once, by it.
			return nil, errGone
		}
		if err != nil {
			if m != "" && !anchored {
				unix.Unlinkat(dirfd, m, 0)
			}
			// An anchor that stays is finished by recovery.
			return nil, err
		}
		mark = m
		if anchored {
			rest = entries[1:]
			if afterRename != nil {
				afterRename(1)
			}
			trash = append(trash, "") // counted; the anchor becomes trash in unmark
		}
	}
	for i, e := range rest {
		name, err := targetdir.RenameToTrash(dirfd, e.Name)
		if errors.Is(err, unix.ENOENT) {
			// Another pruner renamed it first: the checkpoint is being
			// deleted once, by it.
			if i == 0 && mark == "" {
				return nil, errGone
			}
			continue
		}
		if err != nil {
			// The mark stays: recovery finishes what was begun.
			return nil, err
		}
		trash = append(trash, name)
		if afterRename != nil {
			afterRename(len(trash))
		}
	}
	if mark != "" {
		name, err := targetdir.Unmark(dirfd, mark)
		if err != nil {
			return nil, err
		}
		if name != "" {
			trash[0] = name
		}
	}
	var left []string
	var firstErr error
	for _, name := range trash {
		if name == "" {
			continue
		}
		if err := removeTrash(dirfd, dir, name); err != nil {
			left = append(left, name)
			firstErr = cmp.Or(firstErr, err)
		}
	}
	return left, firstErr
}

// intentEntries are a checkpoint's entries as an intent record names them.
func intentEntries(entries []checkpoint.Entry) []targetdir.IntentEntry {
	out := make([]targetdir.IntentEntry, len(entries))
	for i, e := range entries {
		out[i] = targetdir.IntentEntry{Name: e.Name, Ino: e.Ino}
	}
	return out
}
