package offload

import (
	"context"
	"slices"
	"sync"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// Spec is what one target's offloader is built from.
type Spec struct {
	Target checkpoint.Target
	Config Config
}

// Set holds the offloaders of the targets that have offload configured, all
// sharing one Metrics. The one-shot commands only ask them what is
// offloaded; a server also runs their workers (Start). Attach, at start-up
// and on every reload, keeps the offloader (and its running copies) of
// every target whose Spec did not change, starts new ones and stops the
// others. It is safe for concurrent use.
type Set struct {
	logger  log.Logger
	metrics *Metrics

	mu  sync.Mutex // guards ctx and by
	ctx context.Context
	by  map[string]*member
}

// member is one target's offloader with what it was built from.
type member struct {
	off  *Offloader
	spec Spec
	stop context.CancelFunc // ends its workers (nil: not running)
}

// NewSet returns an empty set.
func NewSet(logger log.Logger) *Set {
	return &Set{logger: logger, metrics: NewMetrics(), by: map[string]*member{}}
}

// Attach makes specs the offloaded targets and returns their offloaders by
// target name.
func (s *Set) Attach(specs []Spec) map[string]*Offloader {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*member, len(specs))
	out := make(map[string]*Offloader, len(specs))
	for _, sp := range specs {
		name := sp.Target.Name
		cur := s.by[name]
		if cur == nil || !cur.spec.equal(sp) {
			cur = &member{off: New(s.logger, sp.Target, sp.Config, s.metrics), spec: sp}
			s.metrics.Init(name)
			s.run(cur)
		}
		next[name] = cur
		out[name] = cur.off
	}
	for name, old := range s.by {
		if next[name] == old {
			continue
		}
		if old.stop != nil {
			old.stop()
		}
		if next[name] == nil {
			s.metrics.Forget(name)
		}
	}
	s.by = next
	return out
}

// Start runs the offloaders' workers, of those attached now and later,
// until ctx ends, and registers the offload metrics with reg.
func (s *Set) Start(ctx context.Context, reg prometheus.Registerer) {
	reg.MustRegister(s.metrics)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx = ctx
	for _, m := range s.by {
		s.run(m)
	}
}

// run starts m's workers if the set runs; s.mu is held.
func (s *Set) run(m *member) {
	if s.ctx == nil || m.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	m.stop = cancel
	go m.off.Run(ctx)
}

// Scanned hands a background scan to its target's offloader, if it has one
// (an Inventory.OnScan hook).
func (s *Set) Scanned(ctx context.Context, snap *checkpoint.Snapshot) {
	if off := s.Get(snap.Target.Name); off != nil {
		off.Scanned(ctx, snap)
	}
}

// Get returns target's offloader, nil if it has none.
func (s *Set) Get(target string) *Offloader {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.by[target]; m != nil {
		return m.off
	}
	return nil
}

// Status is c's offload state in target; ok is false for a target without
// offload. It reads the offloader's memory only.
func (s *Set) Status(target string, c checkpoint.Checkpoint) (st Status, ok bool) {
	off := s.Get(target)
	if off == nil {
		return Status{}, false
	}
	return off.Status(c), true
}

// equal reports whether an offloader built from sp would do what one built
// from other does.
func (sp Spec) equal(other Spec) bool {
	a, b := sp.Config, other.Config
	return sp.Target == other.Target && slices.Equal(a.Command, b.Command) && a.Timeout == b.Timeout &&
		a.Concurrency == b.Concurrency && a.Marker == b.Marker && a.RetryAfter == b.RetryAfter
}
