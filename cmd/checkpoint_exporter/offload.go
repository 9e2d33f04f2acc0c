package main

import (
	"context"
	"reflect"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/config"
	"github.com/checkpoint-exporter/checkpoint_exporter/offload"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
	"github.com/checkpoint-exporter/checkpoint_exporter/statuspage"
	"github.com/checkpoint-exporter/checkpoint_exporter/verdict"
)

// offloads are the offloaders of the targets that have offload configured.
// The one-shot commands only ask them what is offloaded; serve also runs
// their workers, and a reload keeps the offloader (and its running copies)
// of every target whose directory and offload settings did not change.
type offloads struct {
	logger  log.Logger
	metrics *offload.Metrics

	mu  sync.Mutex // guards ctx and by
	ctx context.Context
	by  map[string]*offloading
}

// offloading is one target's offloader, with what it was built from.
type offloading struct {
	off    *offload.Offloader
	target checkpoint.Target
	cfg    config.Offload
	stop   context.CancelFunc // ends its workers (nil: not running)
}

func newOffloads(logger log.Logger) *offloads {
	return &offloads{logger: logger, metrics: offload.NewMetrics(), by: map[string]*offloading{}}
}

// attach gives every target of cfg in targets that has offload configured
// its offloader (pruner.Target.Offload), reusing the running one where
// nothing changed; offloaders of other targets stop.
func (o *offloads) attach(cfg *config.Config, targets []pruner.Target) {
	byName := map[string]*config.Offload{}
	for i := range cfg.Targets {
		byName[cfg.Targets[i].Name] = cfg.Targets[i].Offload
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	next := map[string]*offloading{}
	for i := range targets {
		t := &targets[i]
		c := byName[t.Name]
		if c == nil {
			continue
		}
		cur := o.by[t.Name]
		if cur == nil || !reflect.DeepEqual(cur.target, t.Target) || !reflect.DeepEqual(cur.cfg, *c) {
			cur = &offloading{off: offload.New(o.logger, t.Target, offloadConfig(c), o.metrics), target: t.Target, cfg: *c}
			o.metrics.Init(t.Name)
			o.run(cur)
		}
		next[t.Name] = cur
		t.Offload = cur.off
	}
	for name, old := range o.by {
		if next[name] != old {
			if old.stop != nil {
				old.stop()
			}
			if next[name] == nil {
				o.metrics.Forget(name)
			}
		}
	}
	o.by = next
}

func offloadConfig(c *config.Offload) offload.Config {
	cfg := offload.Config{Command: c.Command, Concurrency: c.Concurrency, Marker: c.RequireMarker}
	if c.Timeout != nil {
		cfg.Timeout = time.Duration(*c.Timeout)
	}
	return cfg
}

// run starts x's workers if the offloads run; o.mu is held.
func (o *offloads) run(x *offloading) {
	if o.ctx == nil || x.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(o.ctx)
	x.stop = cancel
	go x.off.Run(ctx)
}

// start runs the offloaders' workers until ctx ends, registers the offload
// metrics with reg and feeds the offloaders every background scan.
func (o *offloads) start(ctx context.Context, inv *checkpoint.Inventory, reg prometheus.Registerer) {
	reg.MustRegister(o.metrics)
	o.mu.Lock()
	o.ctx = ctx
	for _, x := range o.by {
		o.run(x)
	}
	o.mu.Unlock()
	inv.OnScan(func(ctx context.Context, snap *checkpoint.Snapshot) {
		if off := o.get(snap.Target.Name); off != nil {
			off.Scanned(ctx, snap)
		}
	})
}

func (o *offloads) get(target string) *offload.Offloader {
	o.mu.Lock()
	defer o.mu.Unlock()
	if x := o.by[target]; x != nil {
		return x.off
	}
	return nil
}

// status is c's offload state for scan's output (nil: offload not configured).
func (o *offloads) status(target string, c checkpoint.Checkpoint) *offload.Status {
	off := o.get(target)
	if off == nil {
		return nil
	}
	s := off.Status(c)
	return &s
}

// state is c's offload state for the status page; ok is false for a
// target without offload. It reads the offloader's memory only.
func (o *offloads) state(target string, c checkpoint.Checkpoint) (statuspage.Offload, bool) {
	s := o.status(target, c)
	if s == nil {
		return statuspage.Offload{}, false
	}
	return statuspage.Offload{State: s.State, Time: s.Time, Detail: s.Detail}, true
}

// planPolicy is the policy a prune of snap would plan with: the target's,
// with what its offload confirms.
func (w *world) planPolicy(ctx context.Context, snap *checkpoint.Snapshot) pruner.Policy {
	for _, t := range w.targets {
		if t.Name == snap.Target.Name {
			return t.PolicyFor(ctx, snap)
		}
	}
	return pruner.Policy{}
}

// offloadCell renders an offload status for scan's table.
func offloadCell(s *offload.Status, now time.Time) string {
	out := s.State
	if !s.Time.IsZero() {
		out += " " + verdict.Age(now.Sub(s.Time)) + " ago"
	}
	if s.Detail != "" && s.State != offload.StateOffloaded {
		d := s.Detail
		if len(d) > 60 {
			d = d[:57] + "..."
		}
		out += " (" + d + ")"
	}
	return out
}
