package sizing

import (
	"context"
	"errors"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
)

// Usage is what a walk adds up for one entry (a checkpoint's file or
// directory, and everything below it).
type Usage struct {
	Bytes  int64  // disk usage, st_blocks*512, hard links once
	Files  int64  // entries, the walked one included
	Mtime  int64  // newest modification, nanoseconds
	Ctime  int64  // newest status change, nanoseconds
	Errors uint64 // entries that could not be read
}

// Progress is a scan's clock of progress: a walk moves it on as it goes,
// so a walk stuck in one system call (a hung mount) shows as stalled.
type Progress interface{ Beat() }

func (u *Usage) add(st *unix.Stat_t, counted bool) {
	if counted {
		u.Bytes += st.Blocks * 512
	}
	u.Files++
	u.Mtime = max(u.Mtime, st.Mtim.Nano())
	u.Ctime = max(u.Ctime, st.Ctim.Nano())
}

// Sizer measures disk Usage the way du -x does: st_blocks*512, every hard
// link counted once per target, symlinks never followed, other filesystems
// never entered. It is safe for concurrent use by several walks of one target.
type Sizer struct {
	dev uint64

	mu    sync.Mutex // guards links
	links map[[2]uint64]struct{}
}

// NewSizer returns a Sizer for a target on device dev.
func NewSizer(dev uint64) *Sizer {
	return &Sizer{dev: dev, links: map[[2]uint64]struct{}{}}
}

// Dev is the device of the target's filesystem: entries on another are
// never entered.
func (s *Sizer) Dev() uint64 { return s.dev }

// firstLink reports whether a multiply-linked inode is seen for the first time.
func (s *Sizer) firstLink(st *unix.Stat_t) bool {
	if st.Nlink <= 1 || st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return true
	}
	key := [2]uint64{st.Dev, st.Ino}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen := s.links[key]; seen {
		return false
	}
	s.links[key] = struct{}{}
	return true
}

// Walker walks entries for one worker of one scan, holding one getdents
// buffer per directory depth, so a walk allocates nothing per file. With a
// walker process (start), directories and multiply-linked files are sized
// there, at idle priority; if the process fails, the Walker sizes the rest
// itself (Err says why).
type Walker struct {
	s   *Sizer
	ctx context.Context // checked when yielding: a cancelled walk stops
	// alive is the scanner's progress clock (or, in a walker process, the
	// parent's), moved on when yielding, so a walk stuck in one system call
	// (a hung mount) shows as stalled.
	alive Progress
	tree  dirfs.Tree
	n     int // entries seen, for yielding

	// startProc, when set, starts the walker process that walks for this
	// walker, at the first entry that needs a walk.
	startProc func() (*Proc, error)
	proc      *Proc
	procErr   error // why the walker process was given up
}

// NewWalker returns a Walker for the scan ctx, with its progress clock and
// the start of a walker process (nil: walk in this process).
func NewWalker(ctx context.Context, s *Sizer, alive Progress, start func() (*Proc, error)) *Walker {
	return &Walker{s: s, ctx: ctx, alive: alive, startProc: start}
}

// Size measures the top-level entry nameZ (its name with a NUL) of the
// directory dirfd, whose lstat is st: in the walker process when there is
// one and the entry needs a walk, else here.
func (w *Walker) Size(dirfd int, nameZ []byte, st *unix.Stat_t) Usage {
	if u, ok := w.viaProc(string(nameZ[:len(nameZ)-1]), st); ok {
		return u
	}
	return w.measure(dirfd, nameZ, st)
}

// Dev is the device of the target's filesystem (Sizer.Dev).
func (w *Walker) Dev() uint64 { return w.s.dev }

// Err is why the walker process was given up, if it was.
func (w *Walker) Err() error { return w.procErr }

// viaProc sizes the top-level entry name (whose lstat is st) in the walker
// process, if there is one (ok false otherwise). Only directories and
// multiply-linked files go there: a plain file needs no walk, and a link to
// a file the walker counts must be counted by the walker. A walker that
// fails is given up for the rest of the scan: the caller then sizes the
// entry itself.
func (w *Walker) viaProc(name string, st *unix.Stat_t) (u Usage, ok bool) {
	if w.startProc == nil || (st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink <= 1) {
		return u, false
	}
	if w.proc == nil {
		if w.proc, w.procErr = w.startProc(); w.procErr != nil {
			w.startProc = nil
			return u, false
		}
	}
	u, err := w.proc.Size(name)
	if err != nil {
		w.proc.Close()
		w.proc, w.startProc = nil, nil
		if w.ctx.Err() != nil {
			return Usage{}, true // the scan is discarded: nothing to walk here
		}
		w.procErr = err
		return Usage{}, false
	}
	return u, true
}

// measure adds up the entry nameZ of the directory dirfd, whose lstat is st
// (on the target's filesystem): the entry itself and, for a directory,
// everything below it.
func (w *Walker) measure(dirfd int, nameZ []byte, st *unix.Stat_t) Usage {
	var u Usage
	u.add(st, w.s.firstLink(st))
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		w.walkDir(dirfd, nameZ, &u)
	}
	return u
}

// Close ends the walker process, if one was started.
func (w *Walker) Close() {
	if w.proc != nil {
		w.proc.Close()
		w.proc = nil
	}
}

// yieldEvery: a walk is a tight loop of short syscalls that keeps its P;
// yielding now and then lets the HTTP server answer a scrape at once
// instead of after the scheduler's 10ms time slice.
const yieldEvery = 256

// walkDir adds up everything below the directory dirfd/nameZ (the directory
// itself is counted by the caller). An entry that vanishes is skipped; one
// that cannot be read is counted in u.Errors. Another filesystem is never
// entered.
func (w *Walker) walkDir(dirfd int, nameZ []byte, u *Usage) {
	var st unix.Stat_t
	w.tree.Walk(dirfd, nameZ, func(fd int, child []byte, _ byte, _ int) (bool, error) {
		if w.n++; w.n%yieldEvery == 0 {
			if err := w.ctx.Err(); err != nil {
				return false, err // the scan is discarded: stop walking
			}
			w.alive.Beat()
			runtime.Gosched()
		}
		if err := dirfs.LstatAt(fd, child, &st); err != nil {
			if !errors.Is(err, unix.ENOENT) {
				u.Errors++
			}
			return false, nil
		}
		if st.Dev != w.s.dev {
			return false, nil
		}
		u.add(&st, w.s.firstLink(&st))
		return st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
	}, func(_ []byte, _ int, err error) error {
		if !errors.Is(err, unix.ENOENT) {
			u.Errors++
		}
		return nil
	})
}
