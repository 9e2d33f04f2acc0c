package pruner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// LockMode says how a prune keeps other pruners of the same target
// directory out (DESIGN invariant 4).
type LockMode string

const (
	// LockFlock takes flock(2) on LockFile in the target directory; where
	// the filesystem has no flock (ENOSYS, EOPNOTSUPP, ENOLCK: Lustre
	// noflock, NFS without a lock manager) it falls back to LockLockfile.
	LockFlock LockMode = "flock"
	// LockLockfile creates LeaseFile with O_EXCL, naming its owner, host, pid
	// and expiry, and renews it while the prune runs: safe across nodes
	// where flock is missing or only node-local (Lustre localflock).
	LockLockfile LockMode = "lockfile"
)

// ParseLockMode reads a prune.lock setting ("" is the default, flock).
func ParseLockMode(s string) (LockMode, error) {
	switch LockMode(s) {
	case "", LockFlock:
		return LockFlock, nil
	case LockLockfile:
		return LockLockfile, nil
	}
	return "", fmt.Errorf("unknown lock mode %q (want flock or lockfile)", s)
}

// LockFile is the file a prune flocks in the target directory.
const LockFile = ".checkpoint_exporter.lock"

// ErrLocked is returned when another pruner holds the target's lock for
// longer than the lock wait.
var ErrLocked = errors.New("another prune holds the target lock")

// ErrLockLost is returned when a lock file was taken over while a prune held
// it (it expired: the prune stalled for longer than its TTL); the prune stops
// before its next deletion.
var ErrLockLost = errors.New("target lock lost")

// DefaultLockTTL is how long a lock file stays valid without renewal.
const DefaultLockTTL = 2 * time.Minute

// lockOptions say how to lock one target.
type lockOptions struct {
	mode   LockMode
	wait   time.Duration // how long to wait for another pruner
	ttl    time.Duration // lock file validity (lockfile mode)
	logger log.Logger
	target string
}

// targetLock is a held lock on a target directory, with the directory's
// descriptor that the prune's *at calls go through.
type targetLock struct {
	dirfd   int
	flockFD int // -1 unless flocked
	lease   *lease
}

// check returns nil while the lock is still this prune's.
func (l *targetLock) check() error {
	if l.lease == nil {
		return nil
	}
	return l.lease.check()
}

// release drops the lock; the directory stays open (its owner closes it).
func (l *targetLock) release() {
	if l.lease != nil {
		l.lease.release()
	}
	if l.flockFD >= 0 {
		unix.Close(l.flockFD) // closing drops the flock
	}
}

// lockTarget locks the open target directory dir as opts.mode says, waiting
// up to opts.wait for another pruner. The lock is taken through dir, the
// handle the prune was planned with, never by path.
func lockTarget(ctx context.Context, dir *checkpoint.Dir, opts lockOptions) (*targetLock, error) {
	dirfd, path := dir.Fd(), dir.Path()
	l := &targetLock{dirfd: dirfd, flockFD: -1}
	deadline := time.Now().Add(opts.wait)
	if opts.mode != LockLockfile {
		err := flockTarget(ctx, l, path, deadline)
		if err == nil {
			return l, nil
		}
		if !noFlock(err) {
			return nil, err
		}
		level.Warn(opts.logger).Log("msg", "no flock on this filesystem: using a lock file instead (set prune.lock: lockfile to say so)",
			"target", opts.target, "path", path, "err", err)
	}
	if opts.ttl <= 0 {
		opts.ttl = DefaultLockTTL
	}
	ls, err := acquireLease(ctx, dirfd, path, opts, deadline)
	if err != nil {
		return nil, err
	}
	l.lease = ls
	return l, nil
}

// noFlock reports a filesystem without (cluster-wide) flock.
func noFlock(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOLCK)
}

func flockTarget(ctx context.Context, l *targetLock, path string, deadline time.Time) error {
	fd, err := unix.Openat(l.dirfd, LockFile, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "open", Path: filepath.Join(path, LockFile), Err: err}
	}
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			l.flockFD = fd
			return nil
		case errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EINTR):
			if time.Now().After(deadline) {
				unix.Close(fd)
				return fmt.Errorf("lock %s: %w", path, ErrLocked)
			}
			if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
				unix.Close(fd)
				return err
			}
		default:
			unix.Close(fd)
			return fmt.Errorf("flock %s: %w", filepath.Join(path, LockFile), err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
