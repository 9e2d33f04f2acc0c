package targetdir

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

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
)

// LockMode says how a prune keeps other pruners of the same target
// directory out (docs/architecture.md, invariant 4).
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

// LockOptions say how to lock one target.
type LockOptions struct {
	Mode LockMode
	// Wait is how long to wait for another pruner.
	Wait time.Duration
	// TTL is a lock file's validity without renewal (0: DefaultLockTTL).
	TTL    time.Duration
	Logger log.Logger
	// Target names the target, for log lines.
	Target string
	// Cache is what the target's filesystem caches: a lock file is
	// refused where listings are cached.
	Cache FSCaching
}

// Lock is a held lock on a target directory, with the directory's
// descriptor that the prune's *at calls go through.
type Lock struct {
	dirfd   int
	dirLock int // -1 unless the directory itself is flocked
	flockFD int // -1 unless LockFile is flocked
	lease   *lease
}

// Check returns nil while the lock is still this prune's.
func (l *Lock) Check() error {
	if l.lease == nil {
		return nil
	}
	return l.lease.check()
}

// Release drops the lock; the directory stays open (its owner closes it).
// Releasing twice is harmless.
func (l *Lock) Release() {
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

// Acquire locks the open target directory dir as opts.Mode says, waiting
// up to opts.Wait for another pruner. The lock is taken through dir, the
// handle the prune was planned with, never by path.
func Acquire(ctx context.Context, dir *Dir, opts LockOptions) (*Lock, error) {
	dirfd, path := dir.Fd(), dir.Path()
	l := &Lock{dirfd: dirfd, dirLock: -1, flockFD: -1}
	deadline := time.Now().Add(opts.Wait)
	if opts.Mode != LockLockfile {
		err := flockTarget(ctx, l, path, deadline, opts.Logger)
		if err == nil {
			return l, nil
		}
		if !noFlock(err) {
			l.Release()
			return nil, err
		}
		level.Warn(opts.Logger).Log("msg", "no flock on this filesystem: using a lock file instead (set prune.lock: lockfile to say so)",
			"target", opts.Target, "path", path, "err", err)
	}
	if opts.Cache.ListingCached {
		l.Release()
		return nil, fmt.Errorf("lock %s: %s: %w", path, opts.Cache.LockfileRefusal(path, opts.Cache.Mountpoint), ErrLockfileUnsafe)
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultLockTTL
	}
	ls, err := acquireLease(ctx, dirfd, path, opts, deadline)
	if err != nil {
		l.Release()
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
func flockTarget(ctx context.Context, l *Lock, path string, deadline time.Time, logger log.Logger) error {
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
			err = fmt.Errorf("%s, not a regular file", dirfs.FileType(st.Mode))
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
