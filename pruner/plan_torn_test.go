package pruner

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// aged shifts every checkpoint of s back by d.
func aged(s *checkpoint.Snapshot, d time.Duration) *checkpoint.Snapshot {
	for i := range s.Checkpoints {
		s.Checkpoints[i].ModTime = s.Checkpoints[i].ModTime.Add(-d)
	}
	return s
}

// Torn saves (issue #21): never complete, never a keep_last slot, deleted
// first once settled; suspect ones never deleted automatically and never a
// keep_last slot either. Whatever the goal, the newest whole checkpoint stays.
func TestMakePlanTornAndSuspect(t *testing.T) {
	base := Policy{KeepLast: 3, High: checkpoint.MustWatermark("85%"), Low: checkpoint.MustWatermark("70%")}
	torn := func(idx ...int) func([]checkpoint.Checkpoint) {
		return func(cs []checkpoint.Checkpoint) {
			for _, i := range idx {
				cs[i].Torn = "zip end record missing"
				cs[i].Bytes = 1 << 20
			}
		}
	}
	count := func(n int) Goal { return Goal{Kind: GoalCount, Keep: n} }
	water := Goal{Kind: GoalWatermark}
	tests := []struct {
		name       string
		snap       *checkpoint.Snapshot
		policy     Policy
		goal       Goal
		wantDelete []int64
		wantKeep   map[int64]string // reasons of some kept ones
	}{
		// The run: 100-500 whole, 600-800 torn by ENOSPC.
		{"torn newest do not fill keep_last; deleted first", aged(snapOf(8, 500, torn(5, 6, 7)), time.Hour), base, count(3),
			[]int64{600, 700, 800, 100, 200}, map[int64]string{500: "latest 3", 300: "latest 3"}},
		{"watermark deletes torn first, then oldest", aged(snapOf(10, 275, torn(9)), time.Hour), base, water,
			[]int64{1000, 100, 200, 300}, nil},
		{"watermark that holds deletes nothing, torn included", aged(snapOf(6, 500, torn(5)), time.Hour), base, water,
			[]int64{}, map[int64]string{600: ReasonNotNeeded}},
		{"torn written to recently is kept", snapOf(6, 500, torn(5)), base, count(3),
			[]int64{100, 200}, map[int64]string{600: ReasonTornYoung}},
		{"torn and pinned is kept", aged(snapOf(6, 500, func(cs []checkpoint.Checkpoint) { torn(5)(cs); cs[5].Pinned = "latest" }), time.Hour), base, count(3),
			[]int64{100, 200}, map[int64]string{600: "pinned (latest)"}},
		{"torn, offload configured and not confirmed: kept", aged(snapOf(6, 500, torn(5)), time.Hour),
			Policy{KeepLast: 3, Offloaded: offloadedExcept(600)}, count(3), []int64{100, 200}, map[int64]string{600: ReasonNotOffloaded}},
		{"suspect never deleted, never a keep_last slot", aged(snapOf(6, 500, func(cs []checkpoint.Checkpoint) { cs[5].Suspect = "far shorter than its siblings" }), time.Hour), base, count(3),
			[]int64{100, 200}, map[int64]string{600: "suspect: far shorter than its siblings", 300: "latest 3"}},
		{"all torn but one: the one whole stays", aged(snapOf(4, 0, torn(0, 2, 3)), time.Hour), base, water,
			[]int64{100, 300, 400}, map[int64]string{200: "latest 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := MakePlan(tt.snap, tt.policy, tt.goal, now)
			if got := steps(plan.Delete); !reflect.DeepEqual(got, tt.wantDelete) {
				t.Errorf("delete %v, want %v (keep: %+v)", got, tt.wantDelete, plan.Keep)
			}
			for step, why := range tt.wantKeep {
				i := slices.IndexFunc(plan.Keep, func(it Item) bool { return it.Checkpoint.Step == step })
				if i < 0 || plan.Keep[i].Reason != why {
					t.Errorf("step %d: kept %v, want kept for %q", step, i >= 0 && plan.Keep[i].Reason != "", why)
					if i >= 0 {
						t.Logf("reason: %q", plan.Keep[i].Reason)
					}
				}
			}
			for _, it := range plan.Delete {
				if it.Checkpoint.Torn != "" && it.Reason != ReasonTorn(it.Checkpoint) {
					t.Errorf("torn %s deleted for %q", it.Checkpoint.Name, it.Reason)
				}
				if it.Checkpoint.Suspect != "" {
					t.Errorf("suspect %s planned", it.Checkpoint.Name)
				}
			}
			assertNewestWholeKept(t, tt.snap, plan)
		})
	}
}

// assertNewestWholeKept checks the new invariant: the newest whole
// checkpoint, by step and by modification time, is never planned.
func assertNewestWholeKept(t *testing.T, s *checkpoint.Snapshot, plan Plan) {
	t.Helper()
	var byStep, byTime *checkpoint.Checkpoint
	for i := range s.Checkpoints {
		c := &s.Checkpoints[i]
		if !c.Whole() {
			continue
		}
		if byStep == nil || c.Step >= byStep.Step {
			byStep = c
		}
		if byTime == nil || !c.ModTime.Before(byTime.ModTime) {
			byTime = c
		}
	}
	for _, it := range plan.Delete {
		for _, newest := range []*checkpoint.Checkpoint{byStep, byTime} {
			if newest != nil && it.Checkpoint.Name == newest.Name {
				t.Errorf("planned the newest whole checkpoint %s", newest.Name)
			}
		}
	}
}
