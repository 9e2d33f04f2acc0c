package collector

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/fixture"
)

// Issue #11 item 7: the temporary forms frameworks save through (Orbax's
// <step>.orbax-checkpoint-tmp, t5x's .tmp-<time>, a torch.distributed
// directory without .metadata, ...) are counted in
// checkpoint_dir_incomplete_checkpoints, for every framework fixture.
func TestIncompleteSavesAreCounted(t *testing.T) {
	fixture.Run(t, func(t *testing.T, f *fixture.Fixture, dir string) {
		s, err := checkpoint.NewScanner(checkpoint.Target{Name: "t", Path: dir}, checkpoint.ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		snap := s.Scan(context.Background())
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(New(fixed{snap}))
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if m.GetGauge() != nil {
					got[mf.GetName()] = m.GetGauge().GetValue()
				}
			}
		}
		if c, i := got["checkpoint_dir_checkpoints"], got["checkpoint_dir_incomplete_checkpoints"]; c != float64(f.Want.Complete) || i != float64(len(f.Want.Incomplete)) {
			t.Errorf("checkpoints %v, incomplete %v; want %d and %d (%v)", c, i, f.Want.Complete, len(f.Want.Incomplete), f.Want.Incomplete)
		}
		// Issue #27: the uncertain ones (every checkpoint of a layout no
		// rule names) are told apart.
		if u, ok := got["checkpoint_dir_uncertain_checkpoints"]; !ok || u != float64(f.Want.Uncertain) {
			t.Errorf("uncertain checkpoints %v (exposed %v), want %d", u, ok, f.Want.Uncertain)
		}
	})
}
