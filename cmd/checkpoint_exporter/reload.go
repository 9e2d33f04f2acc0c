package main

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/log"

	"github.com/checkpoint-exporter/checkpoint_exporter/alertmanager"
	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/config"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// running is what a reload switches: the parts of the serving exporter
// built from the configuration.
type running struct {
	s       *serveCmd
	logger  log.Logger
	opts    checkpoint.ScanOptions
	w       *setup
	svc     *pruner.Service
	metrics *pruner.Metrics
	guard   *alertmanager.AuthGuard

	mu      sync.Mutex // guards targets
	targets []pruner.Target
}

// subscribe makes the running parts follow configuration reloads. The
// commits run in this order: the webhook's authentication rule; the pruner's
// counters (a prune of a new target is counted from its first run); trash a
// crash left in new targets; the offloaders (before the pruner may delete
// in a new target); the pruner; the scanners; the status page's targets.
func (r *running) subscribe(ctx context.Context, coord *config.Coordinator) {
	coord.Subscribe(r.onTargets(func(_ *config.Config, targets []pruner.Target) (func(), error) {
		if err := r.guard.Check(targets); err != nil {
			return nil, err
		}
		return func() { r.guard.SetTargets(targets) }, nil
	}), r.onTargets(func(cfg *config.Config, targets []pruner.Target) (func(), error) {
		old := r.w.inv.Scanners()
		scanners, err := scannersFor(targets, r.opts, old)
		if err != nil {
			return nil, err
		}
		var added []pruner.Target
		for i, t := range targets {
			if !slices.Contains(old, scanners[i]) {
				added = append(added, t)
			}
		}
		return func() {
			r.metrics.SetTargets(pruner.Names(targets))
			r.s.recoverTrash(ctx, r.logger, added, r.metrics)
			attachOffloads(r.w.offloads, cfg, targets)
			r.svc.SetTargets(targets)
			r.w.inv.Update(time.Duration(cfg.ScanInterval), scanners...)
			r.mu.Lock()
			r.targets = targets
			r.mu.Unlock()
		}, nil
	}))
}

// onTargets adapts a subscriber of the configured targets.
func (r *running) onTargets(f func(*config.Config, []pruner.Target) (func(), error)) config.Subscriber {
	return func(cfg *config.Config) (func(), error) {
		targets, err := selectTargets(cfg, "")
		if err != nil {
			return nil, err
		}
		return f(cfg, targets)
	}
}

// currentTargets are the running configuration's targets (the status page's).
func (r *running) currentTargets() []pruner.Target {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.targets
}

// reloadHandler: POST /-/reload reloads and answers 200, or 500 with the
// error.
func reloadHandler(coord *config.Coordinator) http.HandlerFunc {
	return func(rw http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost && req.Method != http.MethodPut {
			rw.Header().Set("Allow", "POST, PUT")
			http.Error(rw, "POST to reload the configuration", http.StatusMethodNotAllowed)
			return
		}
		if err := coord.Reload(); err != nil {
			http.Error(rw, "failed to reload config: "+err.Error(), http.StatusInternalServerError)
			return
		}
		rw.Write([]byte("Reloaded.\n"))
	}
}
