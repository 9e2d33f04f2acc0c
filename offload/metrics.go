package offload

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the offload counters, gauge and histogram, by target.
type Metrics struct {
	runs     *prometheus.CounterVec
	pending  *prometheus.GaugeVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
}

// NewMetrics creates the offload metrics; register them as a
// prometheus.Collector. Every label set of the given targets (those with
// offload configured) starts at zero so that rate() and increase() see the
// first offload.
func NewMetrics(targets ...string) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "checkpoint_offload_runs_total",
			Help: "Checkpoint offloads by target and result (ok, failed, timeout, killed, changed, error).",
		}, []string{"target", "result"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "checkpoint_offload_pending",
			Help: "Settled checkpoints (complete, older than min_age) not yet confirmed offloaded, as of the last scan.",
		}, []string{"target"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "checkpoint_offload_duration_seconds",
			Help:    "Time one checkpoint's offload took, whatever its result.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8), // 1s .. 4.5h
		}, []string{"target"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "checkpoint_offload_bytes_total",
			Help: "Disk usage of the checkpoints offloaded successfully.",
		}, []string{"target"}),
	}
	for _, t := range targets {
		m.Init(t)
	}
	return m
}

// Init creates target's label sets at zero.
func (m *Metrics) Init(target string) {
	for _, r := range Results {
		m.runs.WithLabelValues(target, r)
	}
	m.pending.WithLabelValues(target)
	m.duration.WithLabelValues(target)
	m.bytes.WithLabelValues(target)
}

// Forget deletes target's series (a target removed by a reload).
func (m *Metrics) Forget(target string) {
	for _, r := range Results {
		m.runs.DeleteLabelValues(target, r)
	}
	m.pending.DeleteLabelValues(target)
	m.duration.DeleteLabelValues(target)
	m.bytes.DeleteLabelValues(target)
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.runs.Describe(ch)
	m.pending.Describe(ch)
	m.duration.Describe(ch)
	m.bytes.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.runs.Collect(ch)
	m.pending.Collect(ch)
	m.duration.Collect(ch)
	m.bytes.Collect(ch)
}

func (m *Metrics) observe(target, result string, d time.Duration, bytes int64) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(target, result).Inc()
	m.duration.WithLabelValues(target).Observe(d.Seconds())
	if result == ResultOK && bytes > 0 {
		m.bytes.WithLabelValues(target).Add(float64(bytes))
	}
}

func (m *Metrics) setPending(target string, n int) {
	if m != nil {
		m.pending.WithLabelValues(target).Set(float64(n))
	}
}
