package pruner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// Measurer rescans a target on demand, returning the target directory it
// scanned still open (nil if the scan failed), and tells its last scan
// without touching the disk; checkpoint.Inventory is one.
type Measurer interface {
	RescanHeld(ctx context.Context, target string) (*checkpoint.Snapshot, *targetdir.Dir, bool)
	Latest(target string) (*checkpoint.Snapshot, bool)
}

// Deleter deletes what a plan says in the target directory dir, the one the
// plan was made in; *Executor is the real one.
type Deleter interface {
	Execute(ctx context.Context, dir *targetdir.Dir, t Target, plan Plan, trigger string) (Result, error)
}

// Mode says whether a prune deletes.
type Mode int

const (
	// ModePolicy deletes if the target's policy says execute, else it is a
	// dry run: the server's triggers (webhook, autonomous guard) use it.
	ModePolicy Mode = iota
	// ModeDryRun plans and reports what would be deleted, deleting nothing.
	ModeDryRun
	// ModeExecute deletes whatever the policy says (the CLI's --execute).
	ModeExecute
)

// Request asks for one prune of one target.
type Request struct {
	Target  string
	Trigger string
	Mode    Mode
	// Keep > 0 asks for a count goal (keep the newest Keep); otherwise the
	// goal is the watermark goal.
	Keep int
	// Free overrides the policy's low watermark (zero: the policy's).
	Free checkpoint.Watermark
	// Headroom is how long the free space left must last at the observed
	// write rate (watermark goal only).
	Headroom time.Duration
	// Asked are the alerts that asked for the prune (webhook), for the
	// history.
	Asked Asked
}

// Run is one prune of one target: the snapshot it measured (nil if it could
// not measure), the plan, and what it did or, in a dry run, would do.
type Run struct {
	Snapshot *checkpoint.Snapshot
	Plan     Plan
	Result   Result
}

// Service prunes targets: it measures afresh, plans, and executes, one prune
// per filesystem at a time. It is safe for concurrent use.
type Service struct {
	logger  log.Logger
	measure Measurer
	exec    Deleter
	metrics *Metrics
	now     func() time.Time

	mu       sync.Mutex // guards targets, names, queues, fsKeys and recorder; never held across a system call
	recorder Recorder
	targets  map[string]Target
	names    []string // of targets, in configuration order
	queues   map[string]*fsQueue
	fsKeys   map[string]string // target → filesystem, from its last scan that had one
}

// NewService builds a service for the given targets.
func NewService(logger log.Logger, m Measurer, targets []Target, exec Deleter, metrics *Metrics) *Service {
	ts := make(map[string]Target, len(targets))
	for _, t := range targets {
		ts[t.Name] = t
	}
	return &Service{logger: logger, measure: m, targets: ts, names: Names(targets), exec: exec, metrics: metrics,
		now: time.Now, queues: map[string]*fsQueue{}, fsKeys: map[string]string{}}
}

// SetTargets replaces the targets (a configuration reload). Prunes already
// queued for a target that is gone fail as unknown; the others run with the
// new policy.
func (s *Service) SetTargets(targets []Target) {
	ts := make(map[string]Target, len(targets))
	for _, t := range targets {
		ts[t.Name] = t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.fsKeys {
		if _, ok := ts[name]; !ok {
			delete(s.fsKeys, name)
		}
	}
	s.targets, s.names = ts, Names(targets)
}

// Names returns the names of the service's targets, in configuration order.
func (s *Service) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.names...)
}

func (s *Service) target(name string) (Target, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.targets[name]
	return t, ok
}

// Prune measures the target now, plans req and carries it out (or, in a dry
// run, reports what it would delete), in the caller's goroutine. It is the
// one way every prune goes: the CLI calls it, the server's triggers reach it
// through Trigger. The error, if any, is also in Run.Result.
func (s *Service) Prune(ctx context.Context, req Request) (Run, error) {
	run, err := s.prune(ctx, req)
	if err != nil {
		level.Error(s.logger).Log("msg", "prune failed", "target", req.Target, "trigger", req.Trigger, "err", err)
		if run.Result.Outcome == "" {
			run.Result = errorResult(req.Target, err)
		}
	}
	s.metrics.observe(req.Trigger, run.Result)
	s.record(ctx, req.Trigger, req.Asked, run.Result)
	return run, err
}

func (s *Service) prune(ctx context.Context, req Request) (Run, error) {
	t, ok := s.target(req.Target)
	if !ok {
		return Run{}, fmt.Errorf("unknown target %q", req.Target)
	}
	if err := s.hung(req.Target); err != nil {
		return Run{}, err
	}
	// One handle of the target directory: the scan that plans, the lock and
	// the deletion all go through it.
	snap, dir, ok := s.measure.RescanHeld(ctx, req.Target)
	if !ok {
		return Run{}, fmt.Errorf("unknown target %q", req.Target)
	}
	defer dir.Close()
	run := Run{Snapshot: snap}
	if snap.Err != nil {
		return run, fmt.Errorf("scan target %s: %w", req.Target, snap.Err)
	}
	goal := Goal{Kind: GoalWatermark, Free: req.Free, Headroom: HeadroomBytes(snap, req.Headroom)}
	if req.Keep > 0 {
		goal = Goal{Kind: GoalCount, Keep: req.Keep, Free: req.Free}
	}
	run.Plan = MakePlan(snap, t.PolicyFor(ctx, snap), goal, s.now())
	logger := log.With(s.logger, "target", req.Target, "trigger", req.Trigger)
	if req.Mode == ModeDryRun || (req.Mode == ModePolicy && !t.Policy.Execute) {
		run.Result = dryRun(logger, run.Plan)
		return run, nil
	}
	res, err := s.exec.Execute(ctx, dir, t, run.Plan, req.Trigger)
	run.Result = res
	l := level.Info(logger)
	if err != nil || res.Outcome == ResultInsufficient {
		l = level.Warn(logger)
	}
	l.Log("msg", "prune finished", "result", res.Outcome, "stopped", res.Stopped,
		"deleted", len(res.Deleted), "planned_bytes", res.PlannedBytes, "freed_bytes", res.FreedBytes, "free_space_change_bytes", res.FreeSpaceChange,
		"short_bytes", res.ShortBytes, "err", res.Error)
	return run, err
}

// dryRun reports what plan would delete, deleting nothing.
func dryRun(logger log.Logger, plan Plan) Result {
	res := Result{Target: plan.Target, Outcome: ResultDryRun, Deleted: []Deleted{}, PlannedBytes: plan.DeleteBytes, ShortBytes: plan.ShortBytes}
	for _, it := range plan.Delete {
		c := it.Checkpoint
		level.Info(logger).Log("msg", "dry run: would delete checkpoint", "name", c.Name, "step", c.Step, "bytes", c.Bytes, "reason", it.Reason)
		res.Deleted = append(res.Deleted, Deleted{Name: c.Name, Step: c.Step, Bytes: c.Bytes, Reason: it.Reason})
	}
	return res
}

// fsQueue serialises the prunes of one filesystem. Triggers that arrive
// while a run is going coalesce into at most one follow-up run.
type fsQueue struct {
	running *QueuedRun
	next    *QueuedRun
}

// QueuedRun is one queued run over some targets of a filesystem.
type QueuedRun struct {
	trigger string
	targets []string
	asked   map[string]*Asked // by target: the alerts that asked, from every trigger that joined
	done    chan struct{}
	results map[string]Result // written before done is closed
}

func newQueuedRun(trigger string) *QueuedRun {
	return &QueuedRun{trigger: trigger, asked: map[string]*Asked{}, done: make(chan struct{}), results: map[string]Result{}}
}

// Done is closed when the run has finished.
func (f *QueuedRun) Done() <-chan struct{} { return f.done }

// Result returns a target's result; only valid after Done.
func (f *QueuedRun) Result(target string) (Result, bool) {
	r, ok := f.results[target]
	return r, ok
}

func (f *QueuedRun) add(target string, asked Asked) {
	if k := f.asked[target]; k != nil {
		k.merge(asked)
		return
	}
	k := &Asked{}
	k.merge(asked)
	f.asked[target] = k
	f.targets = append(f.targets, target)
}

// hung returns the error of a target whose filesystem does not answer (its
// last scan, from memory, says so), or nil. A prune of it would only wait
// behind the stuck call, so it fails at once instead. Asked when a trigger
// would queue a prune (the webhook's answer is then immediate) and when a
// queued prune starts (the filesystem may have hung while it waited); the
// one-shot prune command has no earlier scan and always measures.
func (s *Service) hung(target string) error {
	snap, ok := s.measure.Latest(target)
	if !ok || !errors.Is(snap.Err, targetdir.ErrHung) {
		return nil
	}
	return fmt.Errorf("target %s not pruned: %w", target, snap.Err)
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
func (s *Service) Trigger(trigger string, targets ...string) map[string]*QueuedRun {
	asked := make(map[string]Asked, len(targets))
	for _, t := range targets {
		asked[t] = Asked{}
	}
	return s.TriggerFor(trigger, asked)
}

// TriggerFor is Trigger for the targets of asked, each with the alerts that
// asked for it: a run records every alert that asked, also those whose
// trigger joined a run already queued.
func (s *Service) TriggerFor(trigger string, asked map[string]Asked) map[string]*QueuedRun {
	out := make(map[string]*QueuedRun, len(asked))
	names := make([]string, 0, len(asked))
	for name := range asked {
		names = append(names, name)
	}
	slices.Sort(names)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range names {
		if _, ok := s.targets[name]; !ok {
			continue
		}
		if err := s.hung(name); err != nil {
			out[name] = s.failed(trigger, name, asked[name], err)
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
			q.running = newQueuedRun(trigger)
			q.running.add(name, asked[name])
			go s.drain(key, q.running)
			out[name] = q.running
		case q.next == nil:
			q.next = newQueuedRun(trigger)
			fallthrough
		default:
			q.next.add(name, asked[name])
			out[name] = q.next
		}
	}
	return out
}

// failed returns a finished flight whose prune of target failed with err
// without running (counted and logged like any failed prune).
// It is done once the failure is recorded (outside s.mu, which is held).
func (s *Service) failed(trigger, target string, asked Asked, err error) *QueuedRun {
	level.Error(s.logger).Log("msg", "prune failed", "target", target, "trigger", trigger, "err", err)
	res := errorResult(target, err)
	s.metrics.observe(trigger, res)
	f := newQueuedRun(trigger)
	f.add(target, asked)
	f.results[target] = res
	go func() {
		s.record(context.Background(), trigger, asked, res)
		close(f.done)
	}()
	return f
}

func (s *Service) drain(key string, f *QueuedRun) {
	for {
		s.mu.Lock()
		targets := append([]string(nil), f.targets...)
		asked := make(map[string]Asked, len(targets))
		for _, name := range targets {
			asked[name] = Asked{Alerts: slices.Clone(f.asked[name].Alerts), Omitted: f.asked[name].Omitted}
		}
		s.mu.Unlock()
		for _, name := range targets {
			t, _ := s.target(name)
			run, _ := s.Prune(context.Background(), Request{Target: name, Trigger: f.trigger, Mode: ModePolicy, Headroom: t.Policy.Headroom, Asked: asked[name]})
			f.results[name] = run.Result
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
// whose filesystem is at or past its high watermark, or whose checkpoints
// take more than its max_bytes, is pruned without waiting for an alert.
func (s *Service) Guard(_ context.Context, snap *checkpoint.Snapshot) {
	t, ok := s.target(snap.Target.Name)
	p := t.Policy
	if !ok || !snap.Up() || snap.FS == nil || snap.FS.ReadOnly {
		return
	}
	switch {
	case p.High.Reached(*snap.FS):
		level.Info(s.logger).Log("msg", "high watermark reached, pruning without an alert", "target", snap.Target.Name,
			"used_ratio", snap.FS.UsedRatio(), "high_watermark", p.High)
	case snap.Target.MaxBytes > 0 && uint64(snap.Bytes()) > snap.Target.MaxBytes:
		level.Info(s.logger).Log("msg", "checkpoints over max_bytes, pruning without an alert", "target", snap.Target.Name,
			"bytes", snap.Bytes(), "max_bytes", snap.Target.MaxBytes)
	default:
		return
	}
	s.Trigger(TriggerAutonomous, snap.Target.Name)
}

// errorResult is the result of a prune of target that failed with err
// before it deleted anything.
func errorResult(target string, err error) Result {
	return Result{Target: target, Outcome: ResultError, Deleted: []Deleted{}, Error: err.Error()}
}
