package checkpoint

import (
	"context"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Inventory keeps the latest snapshot of every target, refreshed in the
// background. Readers (scrapes) only ever read the stored snapshots, so they
// never wait on the filesystem, however large or slow it is.
type Inventory struct {
	logger   log.Logger
	scanners []*Scanner
	interval time.Duration

	mu    sync.RWMutex // guards snaps and hooks
	snaps map[string]*Snapshot
	hooks []func(context.Context, *Snapshot)
}

// NewInventory returns an inventory over the given scanners, rescanning each
// every interval once Run is called.
func NewInventory(logger log.Logger, interval time.Duration, scanners ...*Scanner) *Inventory {
	return &Inventory{logger: logger, scanners: scanners, interval: interval, snaps: map[string]*Snapshot{}}
}

// OnScan registers fn to be called after every background scan.
func (inv *Inventory) OnScan(fn func(context.Context, *Snapshot)) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.hooks = append(inv.hooks, fn)
}

// Run scans every target at once and then every interval until ctx ends.
func (inv *Inventory) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		inv.watch(ctx, inv.watchTick())
	}()
	for _, s := range inv.scanners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(inv.interval)
			defer t.Stop()
			for {
				// A background scan that gave way to an on-demand one
				// (Rescan) stores nothing: that scan stores its own.
				if snap, ok := s.ScanBackground(ctx); ok {
					inv.store(s, snap)
					inv.mu.RLock()
					hooks := inv.hooks
					inv.mu.RUnlock()
					for _, h := range hooks {
						h(ctx, snap)
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
}

// watchTick is how often the watchdog looks for stuck scans: a quarter of
// the shortest hang timeout, at most a second.
func (inv *Inventory) watchTick() time.Duration {
	tick := time.Second
	for _, s := range inv.scanners {
		tick = min(tick, s.opts.HangTimeout/4)
	}
	return max(tick, time.Millisecond)
}

// ScanAll scans every target once, in order, and returns the snapshots.
func (inv *Inventory) ScanAll(ctx context.Context) []*Snapshot {
	out := make([]*Snapshot, 0, len(inv.scanners))
	for _, s := range inv.scanners {
		out = append(out, inv.scan(ctx, s))
	}
	return out
}

// Rescan measures one target now at normal priority (a background scan of it
// in progress gives way) and stores the result. ok is false for an unknown target.
func (inv *Inventory) Rescan(ctx context.Context, name string) (snap *Snapshot, ok bool) {
	for _, s := range inv.scanners {
		if s.Target().Name == name {
			return inv.scan(ctx, s), true
		}
	}
	return nil, false
}

func (inv *Inventory) scan(ctx context.Context, s *Scanner) *Snapshot {
	snap := s.Scan(ctx)
	inv.store(s, snap)
	return snap
}

// store logs snap and makes it the target's latest snapshot.
func (inv *Inventory) store(s *Scanner, snap *Snapshot) {
	t := s.Target()
	if snap.Err != nil {
		level.Warn(inv.logger).Log("msg", "scan failed", "target", t.Name, "path", t.Path, "err", snap.Err)
	} else {
		level.Debug(inv.logger).Log("msg", "scanned", "target", t.Name, "layout", snap.Layout, "series", snap.Series,
			"checkpoints", len(snap.Checkpoints), "bytes", snap.Bytes(), "errors", snap.Errors, "duration", snap.Duration)
	}
	inv.mu.Lock()
	inv.snaps[t.Name] = snap
	inv.mu.Unlock()
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
