package pruner

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pruner's counters (the webhook's are package
// alertmanager's).
type Metrics struct {
	mu      sync.Mutex // guards targets
	targets []string

	runs    *prometheus.CounterVec
	deleted *prometheus.CounterVec
	freed   *prometheus.CounterVec
	trash   *prometheus.GaugeVec
	skipped *prometheus.CounterVec
}

// Triggers, as in checkpoint_prune_runs_total{trigger}.
const (
	TriggerWebhook    = "webhook"
	TriggerCLI        = "cli"
	TriggerAutonomous = "autonomous"
)

// NewMetrics creates the counters and registers them with reg (if not nil).
// The label sets of every target are created at zero so that rate() and
// increase() see the first prune.
func NewMetrics(reg prometheus.Registerer, targets []string) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "checkpoint_prune_runs_total",
			Help: "Prune runs by target, what triggered them and their result (ok, dry_run, insufficient, error, noop).",
		}, []string{"target", "trigger", "result"}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "checkpoint_prune_deleted_checkpoints_total",
			Help: "Checkpoints deleted by the pruner.",
		}, []string{"target"}),
		freed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "checkpoint_prune_freed_bytes_total",
			Help: "Disk usage of the checkpoints the pruner deleted (hard links once): what it freed, whatever else the filesystem's free space did meanwhile.",
		}, []string{"target"}),
		trash: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "checkpoint_prune_trash_entries",
			Help: "Trash entries (checkpoints renamed for deletion) that the last deleting prune or start-up recovery could not remove: they take space until removed by hand.",
		}, []string{"target"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "checkpoint_prune_skipped_checkpoints_total",
			Help: "Planned deletions not done, by cause: changed (since the scan, at any depth), gone (deleted by someone else), mount_point (another filesystem inside: left in place), error.",
		}, []string{"target", "cause"}),
	}
	m.SetTargets(targets)
	if reg != nil {
		reg.MustRegister(m.runs, m.deleted, m.freed, m.trash, m.skipped)
	}
	return m
}

// SetTargets follows a configuration reload: the series of a target that is
// gone are deleted, a new target's are created at zero, and those of a target
// that stays keep counting.
func (m *Metrics) SetTargets(targets []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.targets {
		if !slices.Contains(targets, t) {
			m.runs.DeletePartialMatch(prometheus.Labels{"target": t})
			m.deleted.DeleteLabelValues(t)
			m.freed.DeleteLabelValues(t)
			m.trash.DeleteLabelValues(t)
			m.skipped.DeletePartialMatch(prometheus.Labels{"target": t})
		}
	}
	for _, t := range targets {
		for _, c := range []string{CauseChanged, CauseGone, CauseMountPoint, CauseError} {
			m.skipped.WithLabelValues(t, c)
		}
		m.trash.WithLabelValues(t)
		m.deleted.WithLabelValues(t)
		m.freed.WithLabelValues(t)
		for _, trig := range []string{TriggerWebhook, TriggerAutonomous} {
			for _, r := range []string{ResultOK, ResultDryRun, ResultNoop, ResultInsufficient, ResultError} {
				m.runs.WithLabelValues(t, trig, r)
			}
		}
	}
	m.targets = slices.Clone(targets)
}

func (m *Metrics) observe(trigger string, r Result) {
	if m == nil {
		return
	}
	m.mu.Lock()
	known := slices.Contains(m.targets, r.Target)
	m.mu.Unlock()
	if !known {
		return // removed by a reload while its prune ran: no series comes back
	}
	m.runs.WithLabelValues(r.Target, trigger, r.Outcome).Inc()
	if r.trashChecked {
		m.trash.WithLabelValues(r.Target).Set(float64(len(r.TrashLeft)))
	}
	if r.Outcome == ResultDryRun {
		return
	}
	m.deleted.WithLabelValues(r.Target).Add(float64(len(r.Deleted)))
	for _, sk := range r.Skipped {
		m.skipped.WithLabelValues(r.Target, sk.Cause).Inc()
	}
	if r.FreedBytes > 0 {
		m.freed.WithLabelValues(r.Target).Add(float64(r.FreedBytes))
	}
}

// Recovered records what a start-up recovery (RecoverTrash) left behind.
func (m *Metrics) Recovered(target string, r Recovery) {
	if m != nil {
		m.trash.WithLabelValues(target).Set(float64(len(r.Left)))
	}
}
