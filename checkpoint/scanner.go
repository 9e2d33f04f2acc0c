package checkpoint

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/layout"
	"github.com/checkpoint-exporter/checkpoint_exporter/sizing"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// Target is one directory that a training job writes checkpoints into.
type Target struct {
	Name string
	Path string
	// Layout is layout.Auto or the name of a built-in layout; Pattern, when
	// set, replaces layout detection.
	Layout  string
	Pattern string
	// MinAge: a checkpoint whose newest mtime is younger may still be written.
	MinAge time.Duration
	// HostPath, when set, is Path's name on the node (Path is the name in
	// this process's mount namespace, a container's): the filesystem's mount
	// point is then reported as the node sees it (targetdir.FSStats.HostMountpoint), so
	// that node_exporter's mountpoint label matches.
	HostPath string
	// MaxBytes caps the disk usage of the target's checkpoints (0: no cap):
	// past it, the pruner deletes oldest first.
	MaxBytes uint64
}

// ScanOptions tune a Scanner. The zero value is usable.
type ScanOptions struct {
	// StatFS returns filesystem stats; nil means the real StatFS.
	StatFS func(path string) (targetdir.FSStats, error)
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
	// calls sizing.ServeWalker): background scans (ScanBackground) then size
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
	guard  targetdir.StatGuard

	mu          sync.Mutex // serialises scans; guards cache, lastFull, errorsTotal, walkerFailures
	cache       map[string]cachedEntry
	lists       map[string]cachedList    // checkpoint directories' top levels, by entry
	verdicts    map[string]cachedVerdict // checkpoint files' verdicts, by path
	lastFull    time.Time
	errorsTotal uint64
	// walkerFailures counts background scans finished in-process because
	// their walker process failed or froze.
	walkerFailures uint64

	alive progress // of the scan running now, if any
	// peers are the directories of the other targets of the scanner's
	// inventory (nil outside one).
	peers *targetdir.Peers

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

type cachedEntry struct {
	entry   Entry
	use     sizing.Usage
	settled bool
}

// NewScanner returns a scanner for t. The pattern, if any, must compile.
func NewScanner(t Target, opts ScanOptions) (*Scanner, error) {
	if t.Pattern != "" {
		if _, err := layout.CompilePattern(t.Pattern); err != nil {
			return nil, err
		}
	}
	if opts.StatFS == nil {
		opts.StatFS = targetdir.StatFS
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

// The ways into a scan: on demand (Scan, ScanHeld: normal priority, first in
// line) and in the background (ScanBackground: idle priority, gives way).

// errPreempted ends a background scan that a Scan call overtook.
var errPreempted = errors.New("background scan preempted by an on-demand scan")

// Scan measures the target now, at normal priority. A failed scan is
// reported in Snapshot.Err. A background scan in progress is preempted, so an
// on-demand caller (a prune while the disk fills) never waits behind a long
// idle-priority walk.
func (s *Scanner) Scan(ctx context.Context) *Snapshot {
	snap, _ := s.scanNow(ctx, false)
	return snap
}

// ScanHeld is Scan that also returns the target directory it scanned, still
// open, for a prune to lock and delete through (nil when the scan failed);
// the caller closes it.
func (s *Scanner) ScanHeld(ctx context.Context) (*Snapshot, *targetdir.Dir) {
	return s.scanNow(ctx, true)
}

func (s *Scanner) scanNow(ctx context.Context, hold bool) (*Snapshot, *targetdir.Dir) {
	s.bgMu.Lock()
	s.urgent++
	if s.bgCancel != nil {
		s.bgCancel(errPreempted)
	}
	s.bgMu.Unlock()
	defer func() {
		s.bgMu.Lock()
		s.urgent--
		s.bgMu.Unlock()
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scan(ctx, false, hold)
}

// ScanBackground is Scan for the periodic background refresh: it sizes
// checkpoints in a walker process at idle priority when ScanOptions.Walker
// is set, and it gives way to any
// Scan call. ok is false when it gave way; the scanner's state is then as if
// it had not run, and the caller keeps its previous snapshot.
func (s *Scanner) ScanBackground(ctx context.Context) (snap *Snapshot, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.bgMu.Lock()
	if s.urgent > 0 {
		s.bgMu.Unlock()
		return nil, false
	}
	s.bgCancel = cancel
	s.bgMu.Unlock()
	defer func() {
		s.bgMu.Lock()
		s.bgCancel = nil
		s.bgMu.Unlock()
	}()
	snap, _ = s.scan(ctx, true, false)
	if errors.Is(context.Cause(ctx), errPreempted) {
		return nil, false
	}
	return snap, true
}

// scan does the work of Scan and ScanBackground; s.mu is held. Scanner state
// (cache, full-rescan time, error total) changes only if the scan was not
// cancelled. With hold, a successful scan returns the target directory open.
func (s *Scanner) scan(ctx context.Context, idle, hold bool) (_ *Snapshot, held *targetdir.Dir) {
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

	fs, err := s.guard.Stat(ctx, s.opts.StatFSTimeout, s.opts.StatFS, s.target.Path)
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
	dir, err := s.peers.Open(s.target.Name, s.target.Path, &fs)
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
	v := newView(s, d)
	listed := layout.NewListing(v)
	r, err := layout.Classify(listed, s.target.Layout, s.target.Pattern)
	if err != nil {
		snap.Err = err
		return snap, nil
	}
	v.statEntries(r.Found)
	layout.Settle(v, listed, r, start, s.target.MinAge)
	if ctx.Err() == nil {
		s.lists, s.verdicts = v.lists, v.verdicts
	}

	full := s.opts.FullRescanInterval < 0 || s.lastFull.IsZero() || start.Sub(s.lastFull) >= s.opts.FullRescanInterval
	sized, werr := s.size(ctx, v, dir.ID().Dev, r.Found, full, idle)
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
	snap.Layout, snap.Series, snap.Evidence, snap.Framework = r.Layout, r.Series, r.Evidence, r.Framework
	snap.Suggested, snap.Candidates = r.Suggested, r.Candidates
	if snap.Layout == "" {
		snap.Layout = "none"
	}

	claimed := map[string]bool{}
	next := make(map[string]cachedEntry, len(s.cache))
	for _, sc := range sized {
		f := sc.found
		snap.Errors += sc.use.Errors
		for _, e := range f.Entries {
			claimed[e] = true
		}
		if len(sc.entries) == 0 {
			continue // vanished while we looked
		}
		c := Checkpoint{
			Name:       f.Name,
			Step:       f.Step,
			Entries:    sc.entries,
			Bytes:      sc.use.Bytes,
			Files:      sc.use.Files,
			ModTime:    time.Unix(0, sc.use.Mtime),
			ChangeTime: time.Unix(0, sc.use.Ctime),
			Incomplete: f.Incomplete,
			Why:        f.Why,
			Torn:       f.Torn,
			Suspect:    f.Suspect,
			Pinned:     f.Pinned,
			Uncertain:  f.Uncertain,
			// Read by the general series rule.
			Unrecognised: f.Unrecognised,
			NoStep:       f.NoStep,
		}
		settled := !c.Incomplete && start.Sub(c.ModTime) >= s.target.MinAge
		for i, e := range sc.entries {
			next[e.Name] = cachedEntry{entry: e, use: sc.perEntry[i], settled: settled}
		}
		snap.Checkpoints = append(snap.Checkpoints, c)
	}
	s.cache = next
	if len(snap.Checkpoints) == 0 {
		snap.Framework, snap.Suggested = "", "" // every candidate vanished: nothing recognised
	}
	for _, e := range d.entries {
		if !claimed[e.Name] {
			if len(snap.Ignored) < maxIgnoredListed {
				snap.Ignored = append(snap.Ignored, e.Name)
			}
		}
	}
	return snap, held
}

type sizedCheckpoint struct {
	found    layout.Found
	entries  []Entry
	perEntry []sizing.Usage
	use      sizing.Usage
}

// size measures every found checkpoint, in parallel, reusing cached sizes of
// settled entries unless this is a full rescan. With idle and a walker
// command, one walker process does the walking; werr says why it could not.
func (s *Scanner) size(ctx context.Context, v *view, dev uint64, fs []layout.Found, full, idle bool) (_ []sizedCheckpoint, werr error) {
	d := v.d
	out := make([]sizedCheckpoint, len(fs))
	sz := sizing.NewSizer(dev)
	workers := min(s.opts.Workers, max(1, len(fs)))
	var startProc func() (*sizing.Proc, error)
	if idle && len(s.opts.Walker) > 0 {
		// One process sizes everything, so hard links are counted once; it
		// is started when the first entry needs a walk.
		workers = 1
		startProc = func() (*sizing.Proc, error) {
			p, err := sizing.StartProc(ctx, s.opts.Walker, d.fd, dev, &s.alive, s.opts.HangTimeout/3, s.answers(ctx, d.fd))
			if err == nil {
				p.OnReply = s.onWalkerReply
			}
			return p, err
		}
	}
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex // guards werr
	for range workers {
		wg.Go(func() {
			if s.onWorker != nil {
				s.onWorker()
			}
			w := sizing.NewWalker(ctx, sz, &s.alive, startProc)
			defer w.Close()
			for i := range work {
				s.alive.beat()
				out[i] = s.sizeOne(v, w, fs[i], full)
			}
			if err := w.Err(); err != nil {
				mu.Lock()
				werr = err
				mu.Unlock()
			}
		})
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

func (s *Scanner) sizeOne(v *view, w *sizing.Walker, f layout.Found, full bool) sizedCheckpoint {
	r := sizedCheckpoint{found: f}
	nameZ := make([]byte, 0, 256)
	for _, name := range f.Entries {
		st, ok := v.stats[name]
		if !ok {
			if v.statErrs[name] != nil {
				r.use.Errors++
			}
			continue // vanished
		}
		if st.Dev != w.Dev() {
			continue // a mount point: another filesystem is never entered
		}
		e := entryOf(name, &st)
		var u sizing.Usage
		if c, cached := s.cache[name]; cached && !full && c.settled && c.entry == e {
			u = c.use
			u.Errors = 0
		} else {
			nameZ = append(append(nameZ[:0], name...), 0)
			u = w.Size(v.d.fd, nameZ, &st)
		}
		r.entries = append(r.entries, e)
		r.perEntry = append(r.perEntry, u)
		r.use.Bytes += u.Bytes
		r.use.Files += u.Files
		r.use.Mtime = max(r.use.Mtime, u.Mtime)
		r.use.Ctime = max(r.use.Ctime, u.Ctime)
		r.use.Errors += u.Errors
	}
	return r
}
