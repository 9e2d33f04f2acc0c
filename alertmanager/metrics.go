package alertmanager

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the webhook's counters.
type metrics struct {
	requests *prometheus.CounterVec
	alerts   *prometheus.CounterVec
}

// newMetrics creates the counters, at zero for every label set an
// alert or a request usually has (so that rate() sees the first), and
// registers them with reg (if not nil).
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "checkpoint_webhook_requests_total",
			Help: "Alertmanager webhook requests by HTTP status code.",
		}, []string{"code"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "checkpoint_webhook_alerts_total",
			Help: "Alerts received on the webhook by status (firing, resolved) and outcome (pruned, dry_run, noop, ignored).",
		}, []string{"status", "outcome"}),
	}
	for _, code := range []string{"200", "202"} {
		m.requests.WithLabelValues(code)
	}
	for _, o := range []string{OutcomePruned, OutcomeDryRun, OutcomeNoop, OutcomeIgnored, OutcomeError} {
		m.alerts.WithLabelValues("firing", o)
	}
	m.alerts.WithLabelValues("resolved", OutcomeIgnored)
	if reg != nil {
		reg.MustRegister(m.requests, m.alerts)
	}
	return m
}

func (m *metrics) request(code int) { m.requests.WithLabelValues(strconv.Itoa(code)).Inc() }

func (m *metrics) alert(status, outcome string, n int) {
	m.alerts.WithLabelValues(status, outcome).Add(float64(n))
}
