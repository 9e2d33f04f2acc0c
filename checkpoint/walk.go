package checkpoint

import (
	"context"
	"errors"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
)

// usage is what a walk adds up for one checkpoint.
type usage struct {
	bytes  int64
	files  int64
	mtime  int64 // newest, nanoseconds
	ctime  int64 // newest status change, nanoseconds
	errors uint64
}

func (u *usage) add(st *unix.Stat_t, counted bool) {
	if counted {
		u.bytes += st.Blocks * 512
	}
	u.files++
	u.mtime = max(u.mtime, st.Mtim.Nano())
	u.ctime = max(u.ctime, st.Ctim.Nano())
}

// sizer measures disk usage the way du -x does: st_blocks*512, every hard
// link counted once per target, symlinks never followed, other filesystems
// never entered. It is safe for concurrent use by several walks of one target.
type sizer struct {
	dev uint64

	mu    sync.Mutex // guards links
	links map[[2]uint64]struct{}
}

func newSizer(dev uint64) *sizer {
	return &sizer{dev: dev, links: map[[2]uint64]struct{}{}}
}

// firstLink reports whether a multiply-linked inode is seen for the first time.
func (s *sizer) firstLink(st *unix.Stat_t) bool {
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

// walker holds one getdents buffer per directory depth, so a walk allocates
// nothing per file.
type walker struct {
	s   *sizer
	ctx context.Context // checked when yielding: a cancelled walk stops
	// alive is the scanner's progress clock (or, in a walker process, the
	// parent's), moved on when yielding, so a walk stuck in one system call
	// (a hung mount) shows as stalled.
	alive interface{ beat() }
	bufs  [][]byte
	n     int // entries seen, for yielding

	// startProc, when set, starts the walker process that walks for this
	// walker, at the first entry that needs a walk.
	startProc func() (*walkProc, error)
	proc      *walkProc
	procErr   error // why the walker process was given up
}

// viaProc sizes the top-level entry name (whose lstat is st) in the walker
// process, if there is one (ok false otherwise). Only directories and
// multiply-linked files go there: a plain file needs no walk, and a link to
// a file the walker counts must be counted by the walker. A walker that
// fails is given up for the rest of the scan: the caller then sizes the
// entry itself.
func (w *walker) viaProc(name string, st *unix.Stat_t) (u usage, ok bool) {
	if w.startProc == nil || (st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink <= 1) {
		return u, false
	}
	if w.proc == nil {
		if w.proc, w.procErr = w.startProc(); w.procErr != nil {
			w.startProc = nil
			return u, false
		}
	}
	u, err := w.proc.size(name)
	if err != nil {
		w.proc.close()
		w.proc, w.startProc = nil, nil
		if w.ctx.Err() != nil {
			return usage{}, true // the scan is discarded: nothing to walk here
		}
		w.procErr = err
		return usage{}, false
	}
	return u, true
}

// measure adds up the entry nameZ of the directory dirfd, whose lstat is st
// (on the target's filesystem): the entry itself and, for a directory,
// everything below it.
func (w *walker) measure(dirfd int, nameZ []byte, st *unix.Stat_t) usage {
	var u usage
	u.add(st, w.s.firstLink(st))
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		w.walkDir(dirfd, nameZ, 0, &u)
	}
	return u
}

// closeProc ends the walker process, if one was started.
func (w *walker) closeProc() {
	if w.proc != nil {
		w.proc.close()
		w.proc = nil
	}
}

// yieldEvery: a walk is a tight loop of short syscalls that keeps its P;
// yielding now and then lets the HTTP server answer a scrape at once
// instead of after the scheduler's 10ms time slice.
const yieldEvery = 256

// walkDir adds up everything below the directory dirfd/nameZ (the directory
// itself is counted by the caller). An entry that vanishes is skipped; one
// that cannot be read is counted in u.errors.
func (w *walker) walkDir(dirfd int, nameZ []byte, depth int, u *usage) {
	fd, err := dirfs.OpenDirAt(dirfd, nameZ)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) {
			u.errors++
		}
		return
	}
	defer unix.Close(fd)
	for len(w.bufs) <= depth {
		w.bufs = append(w.bufs, make([]byte, dirfs.BufSize))
	}
	var st unix.Stat_t
	err = dirfs.ReadDirents(fd, w.bufs[depth], func(child []byte, typ byte) bool {
		if w.n++; w.n%yieldEvery == 0 {
			if w.ctx.Err() != nil {
				return false // the scan is discarded: stop walking
			}
			w.alive.beat()
			runtime.Gosched()
		}
		if err := dirfs.LstatAt(fd, child, &st); err != nil {
			if !errors.Is(err, unix.ENOENT) {
				u.errors++
			}
			return true
		}
		if st.Dev != w.s.dev {
			return true
		}
		u.add(&st, w.s.firstLink(&st))
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			w.walkDir(fd, child, depth+1, u)
		}
		return true
	})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		u.errors++
	}
}
