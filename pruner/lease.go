package pruner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"golang.org/x/sys/unix"
)

// LeaseFile is the lock file of the lockfile mode: it exists while a
// pruner holds the target, and says who and until when.
const LeaseFile = ".checkpoint_exporter.lockfile"

// leaseRecord is the content of LeaseFile.
type leaseRecord struct {
	Owner   string // random, one per acquisition
	Host    string
	PID     int
	Expires time.Time
}

func (r leaseRecord) String() string {
	return fmt.Sprintf("owner=%s\nhost=%s\npid=%d\nexpires=%s\n", r.Owner, r.Host, r.PID, r.Expires.UTC().Format(time.RFC3339Nano))
}

func parseLease(data []byte) (leaseRecord, error) {
	var r leaseRecord
	var err error
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "owner":
			r.Owner = v
		case "host":
			r.Host = v
		case "pid":
			r.PID, err = strconv.Atoi(v)
		case "expires":
			r.Expires, err = time.Parse(time.RFC3339Nano, v)
		}
		if err != nil {
			return r, err
		}
	}
	if r.Owner == "" || r.Expires.IsZero() {
		return r, errors.New("incomplete lock file")
	}
	return r, nil
}

// lease is a held lock file, renewed in the background until released.
type lease struct {
	dirfd  int
	path   string // of the target, for messages
	rec    leaseRecord
	ttl    time.Duration
	logger log.Logger

	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex // guards lost
	lost error
}

func newOwner() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// acquireLease creates LeaseFile with O_EXCL, which NFS (v3 and later),
// Lustre, GPFS, BeeGFS and CephFS make atomic across nodes. A lock file
// that expired, or whose process on this host is gone, is taken over.
func acquireLease(ctx context.Context, dirfd int, path string, opts lockOptions, deadline time.Time) (*lease, error) {
	host, _ := os.Hostname()
	l := &lease{dirfd: dirfd, path: path, ttl: opts.ttl, logger: opts.logger,
		rec: leaseRecord{Owner: newOwner(), Host: host, PID: os.Getpid()}}
	for {
		l.rec.Expires = time.Now().Add(l.ttl)
		fd, err := unix.Openat(dirfd, LeaseFile, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			werr := writeAll(fd, []byte(l.rec.String()))
			unix.Close(fd)
			if werr != nil {
				unix.Unlinkat(dirfd, LeaseFile, 0)
				return nil, fmt.Errorf("write %s: %w", filepath.Join(path, LeaseFile), werr)
			}
			l.stop, l.done = make(chan struct{}), make(chan struct{})
			go l.renew()
			return l, nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return nil, &os.PathError{Op: "create", Path: filepath.Join(path, LeaseFile), Err: err}
		}
		holder, stale, err := l.inspect()
		if err != nil {
			continue // gone meanwhile: try again at once
		}
		if stale {
			l.takeOver(holder)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock %s: %w (lock file of host %s pid %d, expires %s)", path, ErrLocked,
				holder.Host, holder.PID, holder.Expires.UTC().Format(time.RFC3339))
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// inspect reads the current lock file and says whether it is stale: expired,
// left by a process of this host that is gone, or unreadable and older than
// a TTL (a holder that died between creating and writing it).
func (l *lease) inspect() (leaseRecord, bool, error) {
	data, mtime, err := readAt(l.dirfd, LeaseFile)
	if err != nil {
		return leaseRecord{}, false, err
	}
	rec, perr := parseLease(data)
	now := time.Now()
	switch {
	case perr != nil:
		return rec, now.Sub(mtime) > l.ttl, nil
	case now.After(rec.Expires):
		return rec, true, nil
	case rec.Host == l.rec.Host && rec.PID != l.rec.PID && !processAlive(rec.PID):
		return rec, true, nil
	}
	return rec, false, nil
}

// takeOver removes a stale lock file safely against other pruners taking it
// over at the same moment: it renames the file aside (atomic: only one
// renamer gets any given file), checks that what it moved is the stale file
// it judged, and puts it back if it is not (someone else's fresh lock).
func (l *lease) takeOver(stale leaseRecord) {
	aside := LeaseFile + ".stale." + l.rec.Owner
	if err := unix.Renameat(l.dirfd, LeaseFile, l.dirfd, aside); err != nil {
		return // gone already: another pruner took it over
	}
	data, _, err := readAt(l.dirfd, aside)
	moved, perr := parseLease(data)
	if err == nil && (moved.Owner == stale.Owner || (perr != nil && stale.Owner == "")) {
		unix.Unlinkat(l.dirfd, aside, 0)
		level.Warn(l.logger).Log("msg", "took over a stale lock file", "path", l.path,
			"host", stale.Host, "pid", stale.PID, "expired", stale.Expires.UTC().Format(time.RFC3339))
		return
	}
	// A fresh lock: give it back to its owner.
	if err := unix.Renameat2(l.dirfd, aside, l.dirfd, LeaseFile, unix.RENAME_NOREPLACE); err != nil {
		unix.Unlinkat(l.dirfd, aside, 0) // its owner sees the loss before its next deletion
	}
}

// renew extends the expiry every third of the TTL, replacing the file
// atomically (write aside, rename over), until released or lost.
func (l *lease) renew() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if err := l.check(); err != nil {
			return
		}
		next := l.rec
		next.Expires = time.Now().Add(l.ttl)
		tmp := LeaseFile + ".new." + l.rec.Owner
		fd, err := unix.Openat(l.dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			err = writeAll(fd, []byte(next.String()))
			unix.Close(fd)
		}
		if err == nil {
			err = unix.Renameat(l.dirfd, tmp, l.dirfd, LeaseFile)
		}
		if err != nil {
			unix.Unlinkat(l.dirfd, tmp, 0)
			level.Warn(l.logger).Log("msg", "renewing the lock file failed", "path", l.path, "err", err)
		}
	}
}

// check returns nil while LeaseFile is still this lease's.
func (l *lease) check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	data, _, err := readAt(l.dirfd, LeaseFile)
	rec, perr := parseLease(data)
	switch {
	case err != nil:
		l.lost = fmt.Errorf("%s: %w: %w", filepath.Join(l.path, LeaseFile), ErrLockLost, err)
	case perr != nil || rec.Owner != l.rec.Owner:
		l.lost = fmt.Errorf("%s: %w to host %s pid %d", filepath.Join(l.path, LeaseFile), ErrLockLost, rec.Host, rec.PID)
	}
	return l.lost
}

func (l *lease) release() {
	close(l.stop)
	<-l.done
	if l.check() == nil {
		unix.Unlinkat(l.dirfd, LeaseFile, 0)
	}
}

// readAt reads a small file below dirfd without following symlinks, and
// returns its mtime.
func readAt(dirfd int, name string) ([]byte, time.Time, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, time.Time{}, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	return data, st.ModTime(), err
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return unix.Fsync(fd)
}

// processAlive reports whether pid exists on this host.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
