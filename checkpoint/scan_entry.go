package checkpoint

import (
	"context"
	"errors"
)

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
func (s *Scanner) ScanHeld(ctx context.Context) (*Snapshot, *Dir) {
	return s.scanNow(ctx, true)
}

func (s *Scanner) scanNow(ctx context.Context, hold bool) (*Snapshot, *Dir) {
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
