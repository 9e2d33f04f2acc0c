package pruner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// Measurer rescans a target on demand and tells its last scan without
// touching the disk; checkpoint.Inventory is one.
type Measurer interface {
	Rescan(ctx context.Context, target string) (*checkpoint.Snapshot, bool)
	Latest(target string) (*checkpoint.Snapshot, bool)
}

// Deleter carries out a plan on a target; *Executor is the real one.
type Deleter interface {
	Execute(ctx context.Context, t checkpoint.Target, plan Plan, execute bool, trigger string) (Result, error)
}

// Request asks for one prune of one target.
type Request struct {
	Target  string
	Trigger string
	// Keep > 0 asks for a count goal (keep the newest Keep); otherwise the
	// goal is the watermark goal.
	Keep int
	// Free overrides the policy's low watermark (zero: the policy's).
	Free checkpoint.Watermark
	// Headroom is how long the free space left must last at the observed
	// write rate (watermark goal only).
	Headroom time.Duration
}

// Service prunes targets: it measures afresh, plans, and executes, one prune
// per filesystem at a time. It is safe for concurrent use.
type Service struct {
	logger   log.Logger
	measure  Measurer
	targets  map[string]checkpoint.Target
	policies map[string]Policy
	exec     Deleter
	metrics  *Metrics
	now      func() time.Time

	mu     sync.Mutex // guards queues and fsKeys; never held across a system call
	queues map[string]*fsQueue
	fsKeys map[string]string // target → filesystem, from its last scan that had one
}

// NewService builds a service for the given targets and their policies.
func NewService(logger log.Logger, m Measurer, targets []checkpoint.Target, policies map[string]Policy, exec Deleter, metrics *Metrics) *Service {
	ts := make(map[string]checkpoint.Target, len(targets))
	for _, t := range targets {
		ts[t.Name] = t
	}
	return &Service{logger: logger, measure: m, targets: ts, policies: policies, exec: exec, metrics: metrics,
		now: time.Now, queues: map[string]*fsQueue{}, fsKeys: map[string]string{}}
}

// Plan measures a target now and plans req without executing anything.
func (s *Service) Plan(ctx context.Context, req Request) (*checkpoint.Snapshot, Plan, error) {
	p, ok := s.policies[req.Target]
	if !ok {
		return nil, Plan{}, fmt.Errorf("unknown target %q", req.Target)
	}
	snap, ok := s.measure.Rescan(ctx, req.Target)
	if !ok {
		return nil, Plan{}, fmt.Errorf("unknown target %q", req.Target)
	}
	if snap.Err != nil {
		return snap, Plan{}, fmt.Errorf("scan target %s: %w", req.Target, snap.Err)
	}
	goal := Goal{Kind: GoalWatermark, Free: req.Free, Headroom: HeadroomBytes(snap, req.Headroom)}
	if req.Keep > 0 {
		goal = Goal{Kind: GoalCount, Keep: req.Keep, Free: req.Free}
	}
	return snap, MakePlan(snap, p, goal, s.now()), nil
}

// Prune measures, plans and executes req now, in the caller's goroutine.
// Callers that may run concurrently go through Trigger instead.
func (s *Service) Prune(ctx context.Context, req Request) Result {
	res := s.prune(ctx, req)
	s.metrics.observe(req.Trigger, res)
	return res
}

func (s *Service) prune(ctx context.Context, req Request) Result {
	if err := s.hung(req.Target); err != nil {
		return s.failFast(req, err)
	}
	snap, plan, err := s.Plan(ctx, req)
	if err != nil {
		level.Error(s.logger).Log("msg", "prune failed", "target", req.Target, "trigger", req.Trigger, "err", err)
		return Result{Target: req.Target, Result: ResultError, Deleted: []Deleted{}, Error: err.Error()}
	}
	res, err := s.exec.Execute(ctx, snap.Target, plan, s.policies[req.Target].Execute, req.Trigger)
	l := level.Info(s.logger)
	if err != nil || res.Result == ResultInsufficient {
		l = level.Warn(s.logger)
	}
	l.Log("msg", "prune finished", "target", req.Target, "trigger", req.Trigger, "result", res.Result,
		"deleted", len(res.Deleted), "planned_bytes", res.PlannedBytes, "freed_bytes", res.FreedBytes,
		"short_bytes", res.ShortBytes, "err", res.Error)
	return res
}

// fsQueue serialises the prunes of one filesystem. Triggers that arrive
// while a run is going coalesce into at most one follow-up run.
type fsQueue struct {
	running *Flight
	next    *Flight
}

// Flight is one queued run over some targets of a filesystem.
type Flight struct {
	trigger string
	targets []string
	done    chan struct{}
	results map[string]Result // written before done is closed
}

// Done is closed when the run has finished.
func (f *Flight) Done() <-chan struct{} { return f.done }

// Result returns a target's result; only valid after Done.
func (f *Flight) Result(target string) (Result, bool) {
	r, ok := f.results[target]
	return r, ok
}

func (f *Flight) add(target string) {
	for _, t := range f.targets {
		if t == target {
			return
		}
	}
	f.targets = append(f.targets, target)
}

// hung returns the error of a target whose filesystem does not answer (its
// last scan, from memory, says so), or nil. A prune of it would only wait
// behind the stuck call, so it fails at once instead.
func (s *Service) hung(target string) error {
	snap, ok := s.measure.Latest(target)
	if !ok || !errors.Is(snap.Err, checkpoint.ErrHung) {
		return nil
	}
	return fmt.Errorf("target %s not pruned: %w", target, snap.Err)
}

func (s *Service) failFast(req Request, err error) Result {
	level.Error(s.logger).Log("msg", "prune failed", "target", req.Target, "trigger", req.Trigger, "err", err)
	return Result{Target: req.Target, Result: ResultError, Deleted: []Deleted{}, Error: err.Error()}
}

// fsKey groups targets by filesystem: the device of the target's last scan
// that reached it, remembered here; never a system call, which could hang
// on a dead mount while s.mu is held. A target never measured is its own
// group. s.mu is held.
func (s *Service) fsKey(target string) string {
	if snap, ok := s.measure.Latest(target); ok && snap.FS != nil {
		s.fsKeys[target] = fmt.Sprintf("dev:%d", snap.FS.Dev)
	}
	if k, ok := s.fsKeys[target]; ok {
		return k
	}
	return "target:" + target
}

// Trigger queues watermark prunes of the named targets and returns, per
// target, the flight that will carry it out. At most one prune runs per
// filesystem; triggers that arrive meanwhile join a single follow-up run.
// Runs use a background context: they finish even if the caller stops waiting.
func (s *Service) Trigger(trigger string, targets ...string) map[string]*Flight {
	out := make(map[string]*Flight, len(targets))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range targets {
		if _, ok := s.targets[name]; !ok {
			continue
		}
		if err := s.hung(name); err != nil {
			out[name] = s.failed(trigger, name, err)
			continue
		}
		key := s.fsKey(name)
		q := s.queues[key]
		if q == nil {
			q = &fsQueue{}
			s.queues[key] = q
		}
		switch {
		case q.running == nil:
			q.running = &Flight{trigger: trigger, done: make(chan struct{}), results: map[string]Result{}}
			q.running.add(name)
			go s.fly(key, q.running)
			out[name] = q.running
		case q.next == nil:
			q.next = &Flight{trigger: trigger, done: make(chan struct{}), results: map[string]Result{}}
			fallthrough
		default:
			q.next.add(name)
			out[name] = q.next
		}
	}
	return out
}

// failed returns a finished flight whose prune of target failed with err
// without running (counted and logged like any failed prune).
func (s *Service) failed(trigger, target string, err error) *Flight {
	req := Request{Target: target, Trigger: trigger}
	res := s.failFast(req, err)
	s.metrics.observe(trigger, res)
	f := &Flight{trigger: trigger, targets: []string{target}, done: make(chan struct{}), results: map[string]Result{target: res}}
	close(f.done)
	return f
}

func (s *Service) fly(key string, f *Flight) {
	for {
		s.mu.Lock()
		targets := append([]string(nil), f.targets...)
		s.mu.Unlock()
		for _, name := range targets {
			req := Request{Target: name, Trigger: f.trigger, Headroom: s.policies[name].Headroom}
			f.results[name] = s.Prune(context.Background(), req)
		}
		s.mu.Lock()
		q := s.queues[key]
		next := q.next
		q.running, q.next = next, nil
		if next == nil {
			delete(s.queues, key)
		}
		s.mu.Unlock()
		close(f.done)
		if next == nil {
			return
		}
		f = next
	}
}

// Guard is the autonomous guard, run after every background scan: a target
// whose filesystem is at or past its high watermark is pruned towards its low
// watermark without waiting for an alert.
func (s *Service) Guard(_ context.Context, snap *checkpoint.Snapshot) {
	p, ok := s.policies[snap.Target.Name]
	if !ok || !snap.Up() || snap.FS == nil || snap.FS.ReadOnly || !p.High.Reached(*snap.FS) {
		return
	}
	level.Info(s.logger).Log("msg", "high watermark reached, pruning without an alert", "target", snap.Target.Name,
		"used_ratio", snap.FS.UsedRatio(), "high_watermark", p.High)
	s.Trigger(TriggerAutonomous, snap.Target.Name)
}
