package targetdir

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
)

// LeaseFile is the lock file of the lockfile mode: it exists while a
// pruner holds the target, and says who and until when.
const LeaseFile = ".checkpoint_exporter.lockfile"

// leaseRecord is the content of LeaseFile.
type leaseRecord struct {
	Owner string // random, one per acquisition
	Host  string
	PID   int
	// PIDNS names the PID namespace PID is in (/proc/self/ns/pid,
	// "pid:[4026531836]"). Two containers can share a hostname (pods with
	// hostNetwork on one node) and not each other's PIDs: a PID is judged
	// gone only by a process of the same host and namespace. Empty in
	// lock files of earlier versions: those wait for their expiry.
	PIDNS   string
	Expires time.Time
}

func (r leaseRecord) String() string {
	return fmt.Sprintf("owner=%s\nhost=%s\npid=%d\npidns=%s\nexpires=%s\n", r.Owner, r.Host, r.PID, r.PIDNS, r.Expires.UTC().Format(time.RFC3339Nano))
}

// pidNamespace names this process's PID namespace ("" if unknown).
func pidNamespace() string {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return ns
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
		case "pidns":
			r.PIDNS = v
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

// SpareLeaseFile is a lock file made ahead of need (Provision), while the
// filesystem has room: on a filesystem with no free block or inode, a
// lockfile-mode prune writes its record into it in place and links it to
// LeaseFile, which needs neither. It is put back when the lease is released.
const SpareLeaseFile = ".checkpoint_exporter-spare.lockfile"

// spareSize is how much of SpareLeaseFile is written ahead: a record is
// about 150 bytes, and a whole block keeps the write in place from needing
// a new one.
const spareSize = 4096

// lease is a held lock file, renewed in the background until released.
type lease struct {
	dirfd  int
	path   string // of the target, for messages
	rec    leaseRecord
	ttl    time.Duration
	logger log.Logger
	// fromSpare: the lock file is SpareLeaseFile's inode, given back on release.
	fromSpare bool

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
// Whatever sits at LeaseFile (another pruner's lock, a symlink, a directory,
// a file that cannot be read or taken over), it tries again every 50ms and
// gives up at deadline or when ctx ends, saying what was there.
func acquireLease(ctx context.Context, dirfd int, path string, opts LockOptions, deadline time.Time) (*lease, error) {
	host, _ := os.Hostname()
	l := &lease{dirfd: dirfd, path: path, ttl: opts.TTL, logger: opts.Logger,
		rec: leaseRecord{Owner: newOwner(), Host: host, PID: os.Getpid(), PIDNS: pidNamespace()}}
	file := filepath.Join(path, LeaseFile)
	for takeovers := 0; ; {
		l.rec.Expires = time.Now().Add(l.ttl)
		err := l.create()
		if err == nil {
			l.stop, l.done = make(chan struct{}), make(chan struct{})
			go l.renew()
			return l, nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return nil, err
		}
		var why string
		blocked := ErrLocked
		holder, stale, err := l.inspect()
		switch {
		case errors.Is(err, unix.ENOENT):
			why = "a lock file that came and went"
		case err != nil:
			why, blocked = fmt.Sprintf("%s cannot be read as a lock file: %v", file, err), ErrLockPathOccupied
		case stale && takeovers < 3:
			if err := l.takeOver(holder); err != nil {
				why = fmt.Sprintf("stale lock file of host %s pid %d cannot be taken over: %v", holder.Host, holder.PID, err)
				break
			}
			takeovers++
			continue // try again at once
		default:
			why = fmt.Sprintf("lock file of host %s pid %d, expires %s", holder.Host, holder.PID, holder.Expires.UTC().Format(time.RFC3339))
		}
		takeovers = 0
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock %s: %w (%s)", path, blocked, why)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return nil, fmt.Errorf("lock %s: %w (%s)", path, err, why)
		}
	}
}

// create makes LeaseFile with this lease's record, exclusively: EEXIST says
// someone else's is there. Where the filesystem has no room for a new file,
// the spare made ahead of need becomes the lock file.
func (l *lease) create() error {
	fd, err := unix.Openat(l.dirfd, LeaseFile, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err == nil {
		werr := writeAll(fd, []byte(l.rec.String()))
		unix.Close(fd)
		if werr == nil {
			return nil
		}
		unix.Unlinkat(l.dirfd, LeaseFile, 0)
		err = werr
		if !noRoom(err) {
			return fmt.Errorf("write %s: %w", filepath.Join(l.path, LeaseFile), err)
		}
	}
	if errors.Is(err, unix.EEXIST) {
		return err
	}
	if !noRoom(err) {
		return &os.PathError{Op: "create", Path: filepath.Join(l.path, LeaseFile), Err: err}
	}
	if serr := l.fromSpareFile(); serr != nil {
		if errors.Is(serr, unix.EEXIST) {
			return serr
		}
		if errors.Is(serr, unix.ENOENT) {
			return fmt.Errorf("create %s: %w, and there is no spare lock file %s (it is made at start-up and after a prune, while the filesystem has room)",
				filepath.Join(l.path, LeaseFile), err, SpareLeaseFile)
		}
		return fmt.Errorf("create %s: %w (and from the spare lock file %s: %w)", filepath.Join(l.path, LeaseFile), err, SpareLeaseFile, serr)
	}
	return nil
}

// fromSpareFile writes the record into SpareLeaseFile in place (its blocks
// are already allocated), then links it to LeaseFile: link is exclusive
// (EEXIST) on every filesystem that has it, NFS included, and needs no new
// inode.
func (l *lease) fromSpareFile() error {
	fd, err := unix.Openat(l.dirfd, SpareLeaseFile, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	rec := []byte(l.rec.String())
	_, err = unix.Pwrite(fd, rec, 0)
	if err == nil {
		err = unix.Ftruncate(fd, int64(len(rec)))
	}
	if err == nil {
		err = unix.Fsync(fd)
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	err = unix.Linkat(l.dirfd, SpareLeaseFile, l.dirfd, LeaseFile, 0)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) || noRoom(err) {
		// No hard links here, or (tmpfs) a link counts as an inode:
		// a rename that never replaces is as exclusive on a local
		// filesystem.
		err = RenameNoReplace(l.dirfd, SpareLeaseFile, LeaseFile)
	} else if err == nil {
		unix.Unlinkat(l.dirfd, SpareLeaseFile, 0)
	}
	if err != nil {
		return err
	}
	l.fromSpare = true
	return nil
}

// inspect reads the current lock file, by name and as the server has it
// (readAt), and says whether it is stale: expired, left by a process of
// this host and PID namespace that is gone, or unreadable and older than a
// TTL (a holder that died between creating and writing it). An error says
// the lock path holds something that is not a readable lock file (a
// symlink, a directory, a file this process may not read): it is never
// taken for stale.
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
	case rec.Host == l.rec.Host && rec.PIDNS != "" && rec.PIDNS == l.rec.PIDNS && rec.PID != l.rec.PID && !processAlive(rec.PID):
		return rec, true, nil
	}
	return rec, false, nil
}

// takeOver removes a stale lock file safely against other pruners taking it
// over at the same moment: it renames the file aside (atomic: only one
// renamer gets any given file), checks that what it moved is the stale file
// it judged, and puts it back if it is not (someone else's fresh lock). An
// error says the file could not be moved aside.
func (l *lease) takeOver(stale leaseRecord) error {
	aside := LeaseFile + ".stale." + l.rec.Owner
	if err := unix.Renameat(l.dirfd, LeaseFile, l.dirfd, aside); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // gone already: another pruner took it over
		}
		return err
	}
	data, _, err := readAt(l.dirfd, aside)
	moved, perr := parseLease(data)
	if err == nil && (moved.Owner == stale.Owner || (perr != nil && stale.Owner == "")) {
		unix.Unlinkat(l.dirfd, aside, 0)
		level.Warn(l.logger).Log("msg", "took over a stale lock file", "path", l.path,
			"host", stale.Host, "pid", stale.PID, "expired", stale.Expires.UTC().Format(time.RFC3339))
		return nil
	}
	// A fresh lock: give it back to its owner.
	if err := unix.Renameat2(l.dirfd, aside, l.dirfd, LeaseFile, unix.RENAME_NOREPLACE); err != nil {
		unix.Unlinkat(l.dirfd, aside, 0) // its owner sees the loss before its next deletion
	}
	return nil
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
	if l.check() != nil {
		return
	}
	if l.fromSpare && RenameNoReplace(l.dirfd, LeaseFile, SpareLeaseFile) == nil {
		return // the spare is ready for the next full disk
	}
	unix.Unlinkat(l.dirfd, LeaseFile, 0)
}

// readAt reads a small file below dirfd without following symlinks, and
// returns its mtime. Another host's lock file is read as the server has it:
// the directory's attributes first (an NFS client trusts the names it
// cached while the directory's cached attributes look unchanged), then the
// name's, both forced (StatxFresh); opening the file revalidates its data
// (close-to-open). A filesystem whose client lists directories from a
// cache of its own cannot promise even that: lock files are refused there
// (LockOptions.Cache).
func readAt(dirfd int, name string) ([]byte, time.Time, error) {
	var stx unix.Statx_t
	StatxFresh(dirfd, "", unix.AT_EMPTY_PATH, &stx) // refreshes the names below; the open says what is wrong
	if err := StatxFresh(dirfd, name, 0, &stx); err != nil {
		return nil, time.Time{}, err
	}
	data, st, err := dirfs.ReadSmall(dirfd, name, maxLease)
	return data, time.Unix(st.Mtim.Unix()), err
}

// maxLease bounds what is read of a lock record (a line of text).
const maxLease = 4096

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
