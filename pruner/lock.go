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

// ErrLockPathOccupied is returned when something that is not a lock file
// (a symlink, a directory, a file that cannot be read) sits at the lock
// path for longer than the lock wait: a prune never removes it.
var ErrLockPathOccupied = errors.New("something that is not a lock file sits at the lock path")

// ErrLockLost is returned when a lock file was taken over while a prune held
// it (it expired: the prune stalled for longer than its TTL); the prune stops
// before its next deletion.
var ErrLockLost = errors.New("target lock lost")

// DefaultLockTTL is how long a lock file stays valid without renewal.
const DefaultLockTTL = 2 * time.Minute

// ErrLockfileUnsafe refuses a lock file on a filesystem whose client lists
// directories from a cache: another host's lock file is not seen there.
var ErrLockfileUnsafe = errors.New("a lock file cannot work on this filesystem")

// lockOptions say how to lock one target.
type lockOptions struct {
	mode   LockMode
	wait   time.Duration // how long to wait for another pruner
	ttl    time.Duration // lock file validity (lockfile mode)
	logger log.Logger
	target string
	// cache is what the target's filesystem caches: a lock file is
	// refused where listings are cached.
	cache fsCaching
}

// targetLock is a held lock on a target directory, with the directory's
// descriptor that the prune's *at calls go through.
type targetLock struct {
	dirfd   int
	dirLock int // -1 unless the directory itself is flocked
	flockFD int // -1 unless LockFile is flocked
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
// Releasing twice is harmless.
func (l *targetLock) release() {
	if l.lease != nil {
		l.lease.release()
		l.lease = nil
	}
	for _, fd := range []int{l.flockFD, l.dirLock} {
		if fd >= 0 {
			unix.Close(fd) // closing drops the flock
		}
	}
	l.flockFD, l.dirLock = -1, -1
}

// lockTarget locks the open target directory dir as opts.mode says, waiting
// up to opts.wait for another pruner. The lock is taken through dir, the
// handle the prune was planned with, never by path.
func lockTarget(ctx context.Context, dir *checkpoint.Dir, opts lockOptions) (*targetLock, error) {
	dirfd, path := dir.Fd(), dir.Path()
	l := &targetLock{dirfd: dirfd, dirLock: -1, flockFD: -1}
	deadline := time.Now().Add(opts.wait)
	if opts.mode != LockLockfile {
		err := flockTarget(ctx, l, path, deadline, opts.logger)
		if err == nil {
			return l, nil
		}
		if !noFlock(err) {
			l.release()
			return nil, err
		}
		level.Warn(opts.logger).Log("msg", "no flock on this filesystem: using a lock file instead (set prune.lock: lockfile to say so)",
			"target", opts.target, "path", path, "err", err)
	}
	if opts.cache.ListingCached {
		l.release()
		return nil, fmt.Errorf("lock %s: %s: %w", path, opts.cache.LockfileRefusal(path, opts.cache.mountpoint), ErrLockfileUnsafe)
	}
	if opts.ttl <= 0 {
		opts.ttl = DefaultLockTTL
	}
	ls, err := acquireLease(ctx, dirfd, path, opts, deadline)
	if err != nil {
		l.release()
		return nil, err
	}
	l.lease = ls
	return l, nil
}

// noFlock reports a filesystem without (cluster-wide) flock.
func noFlock(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOLCK)
}

// flockTarget takes flock on the target directory itself and on LockFile in
// it. The directory needs nothing created, so a prune can lock a filesystem
// with no free inode or block; LockFile (created at start-up by Provision,
// while there is room) is what earlier versions lock, and what a network
// filesystem that emulates flock with byte-range locks can lock (those refuse
// an exclusive lock on a directory opened read-only). One of the two must be
// had: LockFile is skipped only when there is no room to create it, the
// directory only where the filesystem cannot lock it.
func flockTarget(ctx context.Context, l *targetLock, path string, deadline time.Time, logger log.Logger) error {
	fd, err := unix.Openat(l.dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	switch err := flockWait(ctx, fd, path, deadline); {
	case err == nil:
		l.dirLock = fd
	case noFlock(err) || errors.Is(err, unix.EBADF) || errors.Is(err, unix.EINVAL):
		unix.Close(fd) // the file below is the lock
	default:
		unix.Close(fd)
		return err
	}
	fd, err = unix.Openat(l.dirfd, LockFile, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if l.dirLock >= 0 && noRoom(err) {
			level.Debug(logger).Log("msg", "no room to create the lock file: the target directory itself is locked", "path", path, "err", err)
			return nil
		}
		return &os.PathError{Op: "open lock file", Path: filepath.Join(path, LockFile), Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		if err == nil {
			err = fmt.Errorf("%s, not a regular file", fileType(st.Mode))
		}
		return fmt.Errorf("lock file %s: %w", filepath.Join(path, LockFile), err)
	}
	if err := flockWait(ctx, fd, filepath.Join(path, LockFile), deadline); err != nil {
		unix.Close(fd)
		return err
	}
	l.flockFD = fd
	return nil
}

// flockWait takes an exclusive flock on fd, polling until deadline.
func flockWait(ctx context.Context, fd int, what string, deadline time.Time) error {
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EINTR):
			if time.Now().After(deadline) {
				return fmt.Errorf("lock %s: %w", what, ErrLocked)
			}
			if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
				return err
			}
		default:
			return fmt.Errorf("flock %s: %w", what, err)
		}
	}
}

// fileType names the type of a file that is not a regular one, for messages.
func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symlink"
	case unix.S_IFIFO:
		return "a named pipe"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device"
	}
	return "a regular file"
}

// noRoom reports an error that says the filesystem has no free block or
// inode (or the user's quota is used up).
func noRoom(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
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
