package checkpoint

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// Inventory keeps the latest snapshot of every target, refreshed in the
// background. Readers (scrapes) only ever read the stored snapshots, so they
// never wait on the filesystem, however large or slow it is.
type Inventory struct {
	logger  log.Logger
	changed chan struct{} // a token when Update changed the scanners

	mu       sync.RWMutex // guards scanners, interval, snaps and hooks
	scanners []*Scanner
	interval time.Duration
	snaps    map[string]*Snapshot
	hooks    []func(context.Context, *Snapshot)
	// peers are the directories the targets were last scanned in, shared by
	// the scanners to refuse a target that leads into another's.
	peers *targetdir.Peers
}

// NewInventory returns an inventory over the given scanners, rescanning each
// every interval once Run is called.
func NewInventory(logger log.Logger, interval time.Duration, scanners ...*Scanner) *Inventory {
	p := targetdir.NewPeers()
	for _, s := range scanners {
		s.peers = p
	}
	return &Inventory{logger: logger, scanners: scanners, interval: interval, snaps: map[string]*Snapshot{},
		changed: make(chan struct{}, 1), peers: p}
}

// Update replaces the scanners (a configuration reload) and the interval.
// A scanner passed again keeps its cache, its counters and its snapshot; the
// snapshots of every other target are dropped, so a removed target leaves no
// series and a changed one is not ready until its new scanner has scanned.
// A running Run starts and stops background scans to match.
func (inv *Inventory) Update(interval time.Duration, scanners ...*Scanner) {
	inv.mu.Lock()
	keep := map[string]bool{}
	for _, s := range scanners {
		if slices.Contains(inv.scanners, s) {
			keep[s.Target().Name] = true
		}
	}
	for name := range inv.snaps {
		if !keep[name] {
			delete(inv.snaps, name)
		}
	}
	inv.peers.Forget(keep)
	for _, s := range scanners {
		if !slices.Contains(inv.scanners, s) {
			s.peers = inv.peers // a new scanner: not scanning yet
		}
	}
	inv.scanners = slices.Clone(scanners)
	inv.interval = interval
	inv.mu.Unlock()
	select {
	case inv.changed <- struct{}{}:
	default:
	}
}

// Scanners returns the current scanners, in configuration order.
func (inv *Inventory) Scanners() []*Scanner {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	return slices.Clone(inv.scanners)
}

func (inv *Inventory) current(s *Scanner) bool {
	return slices.Contains(inv.scanners, s)
}

// Ready reports whether every target has a snapshot: each has been scanned
// (or found hung) at least once since start, or since a reload added or
// changed it. waiting names those that have not.
func (inv *Inventory) Ready() (ready bool, waiting []string) {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	for _, s := range inv.scanners {
		if _, ok := inv.snaps[s.Target().Name]; !ok {
			waiting = append(waiting, s.Target().Name)
		}
	}
	return len(waiting) == 0, waiting
}

// OnScan registers fn to be called after every background scan.
func (inv *Inventory) OnScan(fn func(context.Context, *Snapshot)) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.hooks = append(inv.hooks, fn)
}

// Run scans every target at once and then every interval until ctx ends,
// following Update: a new scanner starts at once, a dropped one stops.
func (inv *Inventory) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { inv.watch(ctx, inv.watchTick()) })
	loops := map[*Scanner]context.CancelFunc{}
	defer func() {
		for _, stop := range loops {
			stop()
		}
	}()
	for {
		scanners := inv.Scanners()
		for s, stop := range loops {
			if !slices.Contains(scanners, s) {
				stop()
				delete(loops, s)
			}
		}
		for _, s := range scanners {
			if _, ok := loops[s]; !ok {
				lctx, stop := context.WithCancel(ctx)
				loops[s] = stop
				wg.Go(func() { inv.loop(lctx, s) })
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-inv.changed:
		}
	}
}

// loop is one scanner's background refresh, a scan every interval.
func (inv *Inventory) loop(ctx context.Context, s *Scanner) {
	interval := inv.scanInterval()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		// A background scan that gave way to an on-demand one (RescanHeld)
		// stores nothing: that scan stores its own.
		if snap, ok := s.ScanBackground(ctx); ok && inv.store(s, snap) {
			inv.mu.RLock()
			hooks := inv.hooks
			inv.mu.RUnlock()
			for _, h := range hooks {
				h(ctx, snap)
			}
		}
		if d := inv.scanInterval(); d != interval {
			interval = d
			t.Reset(d)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (inv *Inventory) scanInterval() time.Duration {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	return inv.interval
}

// watchTick is how often the watchdog looks for stuck scans: a quarter of
// the shortest hang timeout, at most a second.
func (inv *Inventory) watchTick() time.Duration {
	tick := time.Second
	for _, s := range inv.Scanners() {
		tick = min(tick, s.opts.HangTimeout/4)
	}
	return max(tick, time.Millisecond)
}

// ScanAll scans every target once, in order, and returns the snapshots.
func (inv *Inventory) ScanAll(ctx context.Context) []*Snapshot {
	scanners := inv.Scanners()
	out := make([]*Snapshot, 0, len(scanners))
	for _, s := range scanners {
		out = append(out, inv.scan(ctx, s))
	}
	return out
}

// RescanHeld measures one target now at normal priority (a background scan
// of it in progress gives way), stores the result and returns it with the
// scanned target directory, still open (nil when the scan failed), so that a
// prune locks and deletes in the very directory it planned for; the caller
// closes it. ok is false for an unknown target.
func (inv *Inventory) RescanHeld(ctx context.Context, name string) (snap *Snapshot, dir *targetdir.Dir, ok bool) {
	for _, s := range inv.Scanners() {
		if s.Target().Name == name {
			snap, dir = s.ScanHeld(ctx)
			inv.store(s, snap)
			return snap, dir, true
		}
	}
	return nil, nil, false
}

func (inv *Inventory) scan(ctx context.Context, s *Scanner) *Snapshot {
	snap := s.Scan(ctx)
	inv.store(s, snap)
	return snap
}

// store logs snap and makes it the target's latest snapshot, unless an
// Update dropped s meanwhile; it reports whether it stored.
func (inv *Inventory) store(s *Scanner, snap *Snapshot) bool {
	t := s.Target()
	if snap.Err != nil {
		level.Warn(inv.logger).Log("msg", "scan failed", "target", t.Name, "path", t.Path, "err", snap.Err)
	} else {
		level.Debug(inv.logger).Log("msg", "scanned", "target", t.Name, "layout", snap.Layout, "series", snap.Series,
			"checkpoints", len(snap.Checkpoints), "bytes", snap.Bytes(), "errors", snap.Errors, "duration", snap.Duration)
	}
	if snap.WalkerErr != nil {
		level.Warn(inv.logger).Log("msg", "walker process failed: this scan was finished at normal priority", "target", t.Name, "err", snap.WalkerErr)
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if !inv.current(s) {
		return false
	}
	inv.snaps[t.Name] = snap
	return true
}

// Snapshots returns the latest snapshot of every target that has been
// scanned at least once, in configuration order. It never touches the disk.
func (inv *Inventory) Snapshots() []*Snapshot {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	out := make([]*Snapshot, 0, len(inv.scanners))
	for _, s := range inv.scanners {
		if snap, ok := inv.snaps[s.Target().Name]; ok {
			out = append(out, snap)
		}
	}
	return out
}

// Latest returns the stored snapshot of one target without touching the
// disk; ok is false if the target is unknown or not scanned yet.
func (inv *Inventory) Latest(name string) (*Snapshot, bool) {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	snap, ok := inv.snaps[name]
	return snap, ok
}
