package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
)

// Target is one directory that a training job writes checkpoints into.
type Target struct {
	Name string
	Path string
	// Layout is LayoutAuto or the name of a built-in layout; Pattern, when
	// set, replaces layout detection.
	Layout  string
	Pattern string
	// MinAge: a checkpoint whose newest mtime is younger may still be written.
	MinAge time.Duration
	// HostPath, when set, is Path's name on the node (Path is the name in
	// this process's mount namespace, a container's): the filesystem's mount
	// point is then reported as the node sees it (FSStats.HostMountpoint), so
	// that node_exporter's mountpoint label matches.
	HostPath string
	// MaxBytes caps the disk usage of the target's checkpoints (0: no cap):
	// past it, the pruner deletes oldest first.
	MaxBytes uint64
}

// ScanOptions tune a Scanner. The zero value is usable.
type ScanOptions struct {
	// StatFS returns filesystem stats; nil means the real StatFS.
	StatFS func(path string) (FSStats, error)
	// StatFSTimeout bounds one statfs call (default 5s).
	StatFSTimeout time.Duration
	// HangTimeout: a scan that makes no progress for this long (one system
	// call that does not return: a hung network mount) reports the target
	// down until it returns (default 30s). See Inventory.
	HangTimeout time.Duration
	// FullRescanInterval is how often every checkpoint is walked again even if
	// its top-level entry looks unchanged (default 1h; negative: always).
	FullRescanInterval time.Duration
	// Workers sizes checkpoints in parallel (default GOMAXPROCS).
	Workers int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Walker, when set, is the command line of a walker process (one that
	// calls ServeWalker): background scans (ScanBackground) then size
	// checkpoints in it, one process per scan with every thread at idle CPU
	// and I/O priority. Scan is never affected. If the process fails, the
	// scan is finished here, at normal priority, and Snapshot.WalkerErr says
	// why.
	Walker []string
}

// maxIgnoredListed bounds how many ignored names a snapshot keeps.
const maxIgnoredListed = 200

// Scanner scans one target. A settled checkpoint (complete and older than
// MinAge) is not walked again while its top-level entry keeps its inode,
// mtime and ctime; the cached size is reused until the next full rescan.
type Scanner struct {
	target Target
	opts   ScanOptions
	guard  statGuard

	mu          sync.Mutex // serialises scans; guards cache, lastFull, errorsTotal, walkerFailures
	cache       map[string]cachedEntry
	facts       map[string]cachedFacts
	verdicts    map[string]cachedVerdict
	lastFull    time.Time
	errorsTotal uint64
	// walkerFailures counts background scans finished in-process because
	// their walker process failed or froze.
	walkerFailures uint64

	alive progress // of the scan running now, if any
	// peers are the directories of the other targets of the scanner's
	// inventory (nil outside one).
	peers *peers

	bgMu     sync.Mutex // guards urgent and bgCancel
	urgent   int        // Scan calls waiting or running
	bgCancel context.CancelCauseFunc

	// onWorker, when set (tests), runs on every sizing worker's thread
	// before it takes work.
	onWorker func()
	// onWalkerReply, when set (tests), runs after each answer of a walker
	// process, with its process ID.
	onWalkerReply func(pid int)
	// onJudge, when set (tests), runs when a checkpoint's files are read
	// for its verdict, with its name.
	onJudge func(name string)
}

// cachedFacts are a checkpoint directory's facts as of its entry.
type cachedFacts struct {
	entry Entry
	facts dirFacts
}

type cachedEntry struct {
	entry   Entry
	use     usage
	settled bool
}

// NewScanner returns a scanner for t. The pattern, if any, must compile.
func NewScanner(t Target, opts ScanOptions) (*Scanner, error) {
	if t.Pattern != "" {
		if _, err := CompilePattern(t.Pattern); err != nil {
			return nil, err
		}
	}
	if opts.StatFS == nil {
		opts.StatFS = StatFS
	}
	if opts.StatFSTimeout <= 0 {
		opts.StatFSTimeout = 5 * time.Second
	}
	if opts.HangTimeout <= 0 {
		opts.HangTimeout = 30 * time.Second
	}
	if opts.FullRescanInterval == 0 {
		opts.FullRescanInterval = time.Hour
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Scanner{target: t, opts: opts, cache: map[string]cachedEntry{}}, nil
}

// Target returns the scanned target.
func (s *Scanner) Target() Target { return s.target }

// scan does the work of Scan and ScanBackground; s.mu is held. Scanner state
// (cache, full-rescan time, error total) changes only if the scan was not
// cancelled. With hold, a successful scan returns the target directory open.
func (s *Scanner) scan(ctx context.Context, idle, hold bool) (_ *Snapshot, held *Dir) {
	s.alive.start()
	defer s.alive.stop()
	start := s.opts.Now()
	snap := &Snapshot{Target: s.target}
	defer func() {
		s.errorsTotal += snap.Errors
		snap.ErrorsTotal = s.errorsTotal
		snap.WalkerFailuresTotal = s.walkerFailures
		end := s.opts.Now()
		snap.Duration = end.Sub(start)
		snap.Time = end
	}()

	fs, err := s.guard.stat(ctx, s.opts.StatFSTimeout, s.opts.StatFS, s.target.Path)
	if err != nil {
		snap.Err = err
		return snap, nil
	}
	if s.target.HostPath != "" {
		if mp, ok := fs.HostMountpoint(s.target.HostPath); ok {
			fs.Mountpoint = mp
		}
	}
	snap.FS = &fs

	s.alive.beat()
	dir, err := s.openTarget(&fs)
	fs.mounts = nil // a snapshot outlives the scan: it keeps no mount table
	if err != nil {
		if errors.Is(err, unix.EACCES) {
			snap.Errors++
		}
		snap.Err = err
		return snap, nil
	}
	defer func() {
		if hold && snap.Err == nil {
			held = dir
			return
		}
		dir.Close()
	}()
	d, err := readListing(dir)
	if err != nil {
		if errors.Is(err, unix.EACCES) {
			snap.Errors++
		}
		snap.Err = err
		return snap, nil
	}
	// Entries of a checkpoint whose deletion has begun are no checkpoint.
	snap.Errors += d.hideDeleting(s.target.Layout, s.target.Pattern)
	s.alive.beat()
	m, err := classify(d, s.target.Layout, s.target.Pattern)
	if err != nil {
		snap.Err = err
		return snap, nil
	}
	if m.layout == "" {
		m.layout = "none"
	}

	full := s.opts.FullRescanInterval < 0 || s.lastFull.IsZero() || start.Sub(s.lastFull) >= s.opts.FullRescanInterval
	sized, werr := s.size(ctx, d, dir.id.Dev, m.found, full, idle)
	snap.WalkerErr = werr
	if err := ctx.Err(); err != nil {
		snap.Err = err
		return snap, nil
	}
	if werr != nil {
		s.walkerFailures++
	}
	if full {
		s.lastFull = start
	}
	facts := s.settle(d, &m, sized)
	s.judge(d, sized, facts, start)
	snap.Layout, snap.Series, snap.Evidence, snap.Framework = m.layout, m.series, m.evidence, framework(&m)

	claimed := map[string]bool{}
	next := make(map[string]cachedEntry, len(s.cache))
	for _, r := range sized {
		snap.Errors += r.use.errors
		if r.found.drop {
			continue
		}
		for _, e := range r.found.entries {
			claimed[e] = true
		}
		if len(r.entries) == 0 {
			continue // vanished while we looked
		}
		c := Checkpoint{
			Name:       r.found.name,
			Step:       r.found.step,
			Entries:    r.entries,
			Bytes:      r.use.bytes,
			Files:      r.use.files,
			ModTime:    time.Unix(0, r.use.mtime),
			ChangeTime: time.Unix(0, r.use.ctime),
			Incomplete: r.found.incomplete,
			Why:        r.found.why,
			Torn:       r.found.torn,
			Suspect:    r.found.suspect,
			Pinned:     r.found.pinned,
			Uncertain:  r.found.uncertain,
		}
		settled := !c.Incomplete && start.Sub(c.ModTime) >= s.target.MinAge
		for i, e := range r.entries {
			next[e.Name] = cachedEntry{entry: e, use: r.perEntry[i], settled: settled}
		}
		snap.Checkpoints = append(snap.Checkpoints, c)
	}
	s.cache = next
	if len(snap.Checkpoints) == 0 {
		snap.Framework = "" // every candidate was dropped: nothing recognised
	}
	for _, e := range d.entries {
		if !claimed[e.name] {
			if len(snap.Ignored) < maxIgnoredListed {
				snap.Ignored = append(snap.Ignored, e.name)
			}
		}
	}
	return snap, held
}

// openTarget opens the target directory and applies the refusals (the root
// directory, not a directory, another target's directory or one inside or
// around it, through a bind mount too) that the configuration check applies
// at start-up: a symlinked target can be re-pointed, and a mount made, at
// run time. fs is this scan's statfs of the target.
func (s *Scanner) openTarget(fs *FSStats) (*Dir, error) {
	dir, err := OpenDir(s.target.Path)
	if err != nil {
		s.peers.check(s.target.Name, nil, nil)
		return nil, err
	}
	pl := &place{}
	pl.chain, err = dir.ancestry()
	if err != nil {
		pl.chain = []DirID{dir.id} // parents unreadable: compare the directory alone
	}
	// The system calls are made here, before peers takes its lock.
	var mounts mountTable
	pl.path, pl.loc, mounts = dir.locate(fs)
	pl.inventedInodes = CachingOf(fs.FSType, fs.Options, nil).InventsInodes
	if err := s.peers.check(s.target.Name, pl, mounts); err != nil {
		dir.Close()
		return nil, fmt.Errorf("%s: %w", s.target.Path, err)
	}
	return dir, nil
}

type sizedCheckpoint struct {
	found    found
	entries  []Entry
	perEntry []usage
	use      usage
}

// size measures every found checkpoint, in parallel, reusing cached sizes of
// settled entries unless this is a full rescan. With idle and a walker
// command, one walker process does the walking; werr says why it could not.
func (s *Scanner) size(ctx context.Context, d *listing, dev uint64, fs []found, full, idle bool) (_ []sizedCheckpoint, werr error) {
	out := make([]sizedCheckpoint, len(fs))
	sz := newSizer(dev)
	workers := min(s.opts.Workers, max(1, len(fs)))
	var startProc func() (*walkProc, error)
	if idle && len(s.opts.Walker) > 0 {
		// One process sizes everything, so hard links are counted once; it
		// is started when the first entry needs a walk.
		workers = 1
		startProc = func() (*walkProc, error) {
			p, err := startWalkProc(ctx, s.opts.Walker, d.fd, dev, &s.alive, s.opts.HangTimeout/3, s.answers(ctx, d.fd))
			if err == nil {
				p.onReply = s.onWalkerReply
			}
			return p, err
		}
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.onWorker != nil {
				s.onWorker()
			}
			w := &walker{s: sz, ctx: ctx, alive: &s.alive, startProc: startProc}
			defer w.closeProc()
			for i := range work {
				s.alive.beat()
				out[i] = s.sizeOne(d, w, fs[i], full)
			}
			if w.procErr != nil {
				werr = w.procErr
			}
		}()
	}
	for i := range fs {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	return out, werr
}

func (s *Scanner) sizeOne(d *listing, w *walker, f found, full bool) sizedCheckpoint {
	r := sizedCheckpoint{found: f}
	nameZ := make([]byte, 0, 256)
	for _, name := range f.entries {
		nameZ = append(append(nameZ[:0], name...), 0)
		var st unix.Stat_t
		if err := dirfs.LstatAt(d.fd, nameZ, &st); err != nil {
			if !errors.Is(err, unix.ENOENT) {
				r.use.errors++
			}
			continue
		}
		if st.Dev != w.s.dev {
			continue // a mount point: another filesystem is never entered
		}
		e := Entry{
			Name:    name,
			Ino:     st.Ino,
			Dev:     st.Dev,
			Size:    st.Size,
			Mtime:   st.Mtim.Nano(),
			Ctime:   st.Ctim.Nano(),
			Dir:     st.Mode&unix.S_IFMT == unix.S_IFDIR,
			Symlink: st.Mode&unix.S_IFMT == unix.S_IFLNK,
		}
		var u usage
		var ok bool
		if c, cached := s.cache[name]; cached && !full && c.settled && c.entry == e {
			u = c.use
			u.errors = 0
		} else if u, ok = w.viaProc(name, &st); !ok {
			u = w.measure(d.fd, nameZ, &st)
		}
		r.entries = append(r.entries, e)
		r.perEntry = append(r.perEntry, u)
		r.use.bytes += u.bytes
		r.use.files += u.files
		r.use.mtime = max(r.use.mtime, u.mtime)
		r.use.ctime = max(r.use.ctime, u.ctime)
		r.use.errors += u.errors
	}
	return r
}
