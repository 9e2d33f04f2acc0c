package main

import (
	"context"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/config"
	"github.com/checkpoint-exporter/checkpoint_exporter/offload"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
	"github.com/checkpoint-exporter/checkpoint_exporter/statuspage"
	"github.com/checkpoint-exporter/checkpoint_exporter/verdict"
)

// attachOffloads gives every target of cfg in targets that has offload
// configured its offloader (pruner.Target.Offload), from set: a reload keeps
// the running offloader of a target whose settings did not change.
func attachOffloads(set *offload.Set, cfg *config.Config, targets []pruner.Target) {
	byName := map[string]*config.Offload{}
	for i := range cfg.Targets {
		byName[cfg.Targets[i].Name] = cfg.Targets[i].Offload
	}
	var specs []offload.Spec
	for _, t := range targets {
		if c := byName[t.Name]; c != nil {
			specs = append(specs, offload.Spec{Target: t.Target, Config: offloadConfig(c)})
		}
	}
	offloaders := set.Attach(specs)
	for i := range targets {
		if off := offloaders[targets[i].Name]; off != nil {
			targets[i].Offload = off
		}
	}
}

func offloadConfig(c *config.Offload) offload.Config {
	cfg := offload.Config{Command: c.Command, Concurrency: c.Concurrency, Marker: c.RequireMarker}
	if c.Timeout != nil {
		cfg.Timeout = time.Duration(*c.Timeout)
	}
	return cfg
}

// offloadState is c's offload state for the status page.
func offloadState(set *offload.Set) func(string, checkpoint.Checkpoint) (statuspage.Offload, bool) {
	return func(target string, c checkpoint.Checkpoint) (statuspage.Offload, bool) {
		s, ok := set.Status(target, c)
		return statuspage.Offload{State: s.State, Time: s.Time, Detail: s.Detail}, ok
	}
}

// planPolicy is the policy a prune of snap would plan with: the target's,
// with what its offload confirms.
func (w *setup) planPolicy(ctx context.Context, snap *checkpoint.Snapshot) pruner.Policy {
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
