package pruner

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// After a reload, a removed target has no series left, a kept one keeps its
// counts, and a late result of a removed target does not bring it back.
func TestMetricsFollowReload(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, []string{"a", "b"})
	m.observe(TriggerWebhook, Result{Target: "a", Outcome: ResultOK, Deleted: []Deleted{{Name: "x"}}, FreedBytes: 10})
	m.observe(TriggerWebhook, Result{Target: "b", Outcome: ResultOK, Deleted: []Deleted{{Name: "y"}}, FreedBytes: 20})

	m.SetTargets([]string{"a", "c"})
	m.observe(TriggerWebhook, Result{Target: "b", Outcome: ResultError})

	families, err := reg.Gather()
	must(t, err)
	seen := map[string]bool{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "target" {
					seen[l.GetValue()] = true
				}
			}
		}
	}
	if seen["b"] || !seen["a"] || !seen["c"] {
		t.Errorf("series for targets %v; want a and c, not b", seen)
	}
	if got := testutil.ToFloat64(m.freed.WithLabelValues("a")); got != 10 {
		t.Errorf("kept target's freed bytes = %v, want 10", got)
	}
}
