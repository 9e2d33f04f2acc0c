package checkpoint

import (
	"reflect"
	"slices"
	"testing"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/fixture"
)

// TestFrameworkFixtures scans a tree per framework, built as its own save code
// writes them (internal/fixture/testdata, each naming its source), and checks
// what auto makes of it: layout, complete checkpoints, latest step, saves in
// progress, pins and uncertain readings.
func TestFrameworkFixtures(t *testing.T) {
	fixture.Run(t, func(t *testing.T, f *fixture.Fixture, dir string) {
		snap := scan(t, Target{Name: "t", Path: dir}, ScanOptions{})
		got := fixture.Want{Latest: -1}
		if f.Want.Layout != "" {
			got.Layout = snap.Layout
		}
		if f.Want.Framework != "" {
			got.Framework = snap.Framework
		}
		for _, c := range snap.Checkpoints {
			if c.Incomplete {
				got.Incomplete = append(got.Incomplete, c.Step)
			} else {
				got.Complete++
			}
			if c.Pinned != "" {
				got.Pinned = append(got.Pinned, c.Step)
			}
			if c.Uncertain != "" {
				got.Uncertain++
			}
		}
		if l := snap.Latest(); l != nil {
			got.Latest = l.Step
		}
		slices.Sort(got.Pinned)
		got.Pinned = slices.Compact(got.Pinned)
		if !reflect.DeepEqual(got, f.Want) {
			t.Errorf("%s\n got %+v\nwant %+v", f.Source, got, f.Want)
			for _, c := range snap.Checkpoints {
				t.Logf("  %s step %d entries %d incomplete %v pinned %q uncertain %q", c.Name, c.Step, len(c.Entries), c.Incomplete, c.Pinned, c.Uncertain)
			}
			t.Logf("  evidence %q ignored %q", snap.Evidence, snap.Ignored)
		}
		if len(snap.Checkpoints) > 0 && len(snap.Evidence) == 0 {
			t.Errorf("no evidence for %s", snap.Layout)
		}
	})
}
