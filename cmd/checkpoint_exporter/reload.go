package main

import (
	"context"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// reloader applies a new configuration to the running exporter (SIGHUP,
// POST /-/reload), as Prometheus and Alertmanager do: a configuration that
// start-up would refuse is refused and the running one stays; targets whose
// scan settings did not change keep their scanner (scan cache, error total)
// and their prune counters; removed targets leave no series.
type reloader struct {
	s       *serveCmd
	logger  log.Logger
	opts    checkpoint.ScanOptions
	inv     *checkpoint.Inventory
	svc     *pruner.Service
	metrics *pruner.Metrics
	// offloads keeps running offloaders across reloads.
	offloads *offloads

	success, successTime prometheus.Gauge

	reloading sync.Mutex // serialises reloads

	mu          sync.Mutex // guards targets and guardFailed
	targets     []pruner.Target
	guardFailed bool
}

func newReloader(s *serveCmd, logger log.Logger, opts checkpoint.ScanOptions, reg prometheus.Registerer) *reloader {
	r := &reloader{s: s, logger: logger, opts: opts,
		success: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "checkpoint_exporter_config_last_reload_successful",
			Help: "Whether the last configuration reload attempt was successful (1) or refused (0).",
		}),
		successTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "checkpoint_exporter_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration load (start-up or reload).",
		}),
	}
	unauthenticated := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "checkpoint_webhook_execute_unauthenticated",
		Help: "1 while targets have prune.execute but the webhook has no authentication (the web config lost its basic auth): the webhook refuses to prune until it has again.",
	}, func() float64 {
		if r.guard() != nil {
			return 1
		}
		return 0
	})
	reg.MustRegister(r.success, r.successTime, unauthenticated)
	return r
}

// start records the configuration the exporter started with.
func (r *reloader) start(targets []pruner.Target) {
	r.mu.Lock()
	r.targets = targets
	r.mu.Unlock()
	r.success.Set(1)
	r.successTime.SetToCurrentTime()
}

// currentTargets are the running configuration's targets (the status page's).
func (r *reloader) currentTargets() []pruner.Target {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.targets
}

// reload re-reads the configuration and applies it, or refuses it with the
// error start-up would have given.
func (r *reloader) reload(ctx context.Context) error {
	r.reloading.Lock()
	defer r.reloading.Unlock()
	n, err := r.apply(ctx)
	if err != nil {
		r.success.Set(0)
		level.Error(r.logger).Log("msg", "configuration reload refused; the running configuration stays", "err", err)
		return err
	}
	r.success.Set(1)
	r.successTime.SetToCurrentTime()
	level.Info(r.logger).Log("msg", "configuration reloaded", "targets", n)
	return nil
}

// apply does the reload and returns the number of targets; r.reloading is
// held.
func (r *reloader) apply(ctx context.Context) (int, error) {
	cfg, err := r.s.loadConfig()
	if err != nil {
		return 0, err
	}
	targets, err := selectTargets(cfg, "")
	if err != nil {
		return 0, err
	}
	if err := r.s.authGuard().check(targets); err != nil {
		return 0, err
	}
	old := r.inv.Scanners()
	scanners, err := scannersFor(targets, r.opts, old)
	if err != nil {
		return 0, err
	}
	var added []pruner.Target
	for i, t := range targets {
		if !slices.Contains(old, scanners[i]) {
			added = append(added, t)
		}
	}
	// Metrics first: a prune of a new target is counted from its first run.
	r.metrics.SetTargets(pruner.Names(targets))
	r.s.recoverTrash(ctx, r.logger, added, r.metrics)
	r.offloads.attach(cfg, targets)
	r.svc.SetTargets(targets)
	r.inv.Update(time.Duration(cfg.ScanInterval), scanners...)
	r.mu.Lock()
	r.targets = targets
	r.mu.Unlock()
	return len(targets), nil
}

// guard is the execute-needs-authentication rule, asked again before every
// webhook prune and at every scrape: exporter-toolkit re-reads the web config
// on every request, so an edit can drop basic auth at any time.
func (r *reloader) guard() error {
	r.mu.Lock()
	targets := r.targets
	r.mu.Unlock()
	err := r.s.authGuard().check(targets)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil && !r.guardFailed:
		level.Error(r.logger).Log("msg", "the webhook refuses to prune: targets have prune.execute but the webhook is no longer authenticated", "err", err)
	case err == nil && r.guardFailed:
		level.Info(r.logger).Log("msg", "the webhook is authenticated again; it prunes")
	}
	r.guardFailed = err != nil
	return err
}

// serveHTTP: POST /-/reload reloads and answers 200, or 500 with the error.
func (r *reloader) serveHTTP(rw http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost && req.Method != http.MethodPut {
		rw.Header().Set("Allow", "POST, PUT")
		http.Error(rw, "POST to reload the configuration", http.StatusMethodNotAllowed)
		return
	}
	if err := r.reload(req.Context()); err != nil {
		http.Error(rw, "failed to reload config: "+err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Write([]byte("Reloaded.\n"))
}

// watchSignals reloads on every SIGHUP (sent on hup) until ctx ends.
func (r *reloader) watchSignals(ctx context.Context, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = r.reload(ctx)
		}
	}
}
