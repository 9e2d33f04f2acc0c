package checkpoint

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/go-kit/log/level"
	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// progress is the clock of a running scan: the time of its last sign of
// life, or 0 when no scan runs. Walkers move it on as they go, so a scan
// stuck in one system call stands still.
type progress struct{ last atomic.Int64 }

func (p *progress) start() { p.last.Store(time.Now().UnixNano()) }
func (p *progress) stop()  { p.last.Store(0) }
func (p *progress) beat()  { p.last.Store(time.Now().UnixNano()) }

// Beat moves the clock on (sizing.Progress).
func (p *progress) Beat() { p.beat() }

// stalled returns for how long the running scan has made no progress (0 when
// no scan runs).
func (p *progress) stalled(now time.Time) time.Duration {
	last := p.last.Load()
	if last == 0 {
		return 0
	}
	return max(0, now.Sub(time.Unix(0, last)))
}

// Stalled returns for how long the scan running now has made no progress, 0
// when none runs.
func (s *Scanner) Stalled(now time.Time) time.Duration { return s.alive.stalled(now) }

// hungSnapshot is what a target reports while its scan is stuck: down, with
// no filesystem figures (the last ones may be stale) and its error total.
func hungSnapshot(last *Snapshot, t Target, stalled time.Duration, now time.Time) *Snapshot {
	snap := &Snapshot{Target: t, Time: now,
		Err: &targetdir.Hung{What: "scan of " + t.Path, For: stalled}}
	if last != nil {
		snap.ErrorsTotal = last.ErrorsTotal
	}
	return snap
}

// watch marks a target down while its scan is stuck, checking every tick
// until ctx ends. The stuck scan's own result replaces the mark when it
// returns: the target recovers without a restart.
func (inv *Inventory) watch(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, s := range inv.Scanners() {
				inv.markIfHung(s, now)
			}
		}
	}
}

func (inv *Inventory) markIfHung(s *Scanner, now time.Time) {
	if s.Stalled(now) < s.opts.HangTimeout {
		return
	}
	name := s.Target().Name
	inv.mu.Lock()
	// Again under the lock: a scan that ended since stores its own snapshot
	// after this one, never before.
	stalled := s.Stalled(now)
	last := inv.snaps[name]
	if stalled < s.opts.HangTimeout || (last != nil && errors.Is(last.Err, targetdir.ErrHung)) || !inv.current(s) {
		inv.mu.Unlock()
		return
	}
	snap := hungSnapshot(last, s.Target(), stalled, now)
	inv.snaps[name] = snap
	inv.mu.Unlock()
	level.Error(inv.logger).Log("msg", "target marked down: its filesystem does not answer", "target", name,
		"path", s.Target().Path, "err", snap.Err)
}

// answers returns a question to the target's filesystem: statfs of its path
// and a listing of the directory dirfd (one batch). It is nil when both
// return, whatever they say: the filesystem answers. It may block on a hung
// mount; callers ask it in a goroutine under a timeout.
func (s *Scanner) answers(ctx context.Context, dirfd int) func() error {
	return func() error {
		if _, err := s.opts.StatFS(s.target.Path); err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		fd, err := dirfs.OpenDirAt(dirfd, []byte(".\x00"))
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		_, err = unix.Getdents(fd, make([]byte, 4096))
		return err
	}
}
