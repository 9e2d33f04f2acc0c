package pruner

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// snapOf builds a snapshot of checkpoints step 100..100*n, 10 MiB each, one
// saved per minute with the newest a minute old, on a 1000 MiB filesystem
// with avail MiB available. mod edits the checkpoints.
func snapOf(n int, availMiB uint64, mod func(cs []checkpoint.Checkpoint)) *checkpoint.Snapshot {
	cs := make([]checkpoint.Checkpoint, n)
	for i := range cs {
		step := int64(100 * (i + 1))
		cs[i] = checkpoint.Checkpoint{
			Name: fmt.Sprintf("checkpoint-%d", step), Step: step, Bytes: 10 << 20,
			ModTime: now.Add(-time.Duration(n-i) * time.Minute),
		}
	}
	if mod != nil {
		mod(cs)
	}
	return &checkpoint.Snapshot{
		Target:      checkpoint.Target{Name: "t"},
		Checkpoints: cs,
		FS:          &targetdir.FSStats{SizeBytes: 1000 << 20, AvailBytes: availMiB << 20},
	}
}

// withMaxBytes sets the snapshot's target's max_bytes in MiB.
func withMaxBytes(s *checkpoint.Snapshot, mib uint64) *checkpoint.Snapshot {
	s.Target.MaxBytes = mib << 20
	return s
}

// withMinAge sets the snapshot's target's min_age.
func withMinAge(s *checkpoint.Snapshot, d time.Duration) *checkpoint.Snapshot {
	s.Target.MinAge = d
	return s
}

func steps(items []Item) []int64 {
	out := []int64{}
	for _, it := range items {
		out = append(out, it.Checkpoint.Step)
	}
	return out
}

func TestMakePlan(t *testing.T) {
	base := Policy{KeepLast: 3, High: checkpoint.MustWatermark("85%"), Low: checkpoint.MustWatermark("70%")}
	with := func(f func(p *Policy)) Policy { p := base; p.Protect = nil; f(&p); return p }
	count := func(n int) Goal { return Goal{Kind: GoalCount, Keep: n} }
	water := Goal{Kind: GoalWatermark}
	tests := []struct {
		name         string
		snap         *checkpoint.Snapshot
		policy       Policy
		goal         Goal
		wantDelete   []int64
		insufficient bool
		noop         bool
	}{
		{"count keeps newest N", snapOf(6, 500, nil), base, count(3), []int64{100, 200, 300}, false, false},
		{"count goal replaces keep_last", snapOf(6, 500, nil), base, count(5), []int64{100}, false, false},
		{"count 0 still keeps the newest", snapOf(3, 500, nil), with(func(p *Policy) { p.KeepLast = 0 }), count(0), []int64{100, 200}, false, false},
		{"newest never planned even with keep_last 0", snapOf(2, 0, nil), with(func(p *Policy) { p.KeepLast = 0 }), water, []int64{100}, true, false},
		{"keep_every", snapOf(6, 500, nil), with(func(p *Policy) { p.KeepEvery = 200 }), count(1), []int64{100, 300, 500}, false, false},
		{"protect glob", snapOf(5, 500, func(cs []checkpoint.Checkpoint) { cs[0].Name = "best_100" }), with(func(p *Policy) { p.Protect = []string{"best_*"} }), count(1), []int64{200, 300, 400}, false, false},
		{"pinned (HF best, DeepSpeed latest)", snapOf(5, 500, func(cs []checkpoint.Checkpoint) { cs[1].Pinned = "best_model_checkpoint" }), base, count(1), []int64{100, 300, 400}, false, false},
		{"incomplete never planned, not counted as newest", snapOf(5, 500, func(cs []checkpoint.Checkpoint) { cs[4].Incomplete = true; cs[0].Incomplete = true }), base, count(2), []int64{200}, false, false},
		// keep_last counts only settled checkpoints: three too young ones do
		// not push 200 out of the newest 1.
		{"too young", withMinAge(snapOf(5, 500, nil), 3*time.Minute+time.Second), base, count(1), []int64{100}, false, false},
		{"keep_within", snapOf(5, 500, nil), with(func(p *Policy) { p.KeepWithin = 4*time.Minute + time.Second }), count(1), []int64{100}, false, false},
		// 1000 MiB fs, 70% low watermark = 300 MiB must be available.
		{"watermark holds: noop", snapOf(6, 300, nil), base, water, []int64{}, false, true},
		{"watermark deletes oldest until it holds", snapOf(10, 275, nil), base, water, []int64{100, 200, 300}, false, false},
		{"watermark insufficient", snapOf(5, 100, nil), base, water, []int64{100, 200}, true, false},
		// Offload configured: only confirmed checkpoints count towards the
		// goal; 100 and 300 are not offloaded, so the count goal deletes
		// only 200 and the watermark goal falls short.
		{"offload: count deletes only confirmed", snapOf(6, 500, nil), with(func(p *Policy) { p.Offloaded = offloadedExcept(100, 300) }), count(3), []int64{200}, false, false},
		{"offload: watermark skips unconfirmed", snapOf(10, 275, nil), with(func(p *Policy) { p.Offloaded = offloadedExcept(100, 300) }), water, []int64{200, 400, 500}, false, false},
		{"offload: nothing confirmed", snapOf(10, 275, nil), with(func(p *Policy) { p.Offloaded = func(checkpoint.Checkpoint) bool { return false } }), water, []int64{}, true, false},
		{"headroom asks for more", snapOf(10, 275, nil), base, Goal{Kind: GoalWatermark, Headroom: 345 << 20}, []int64{100, 200, 300, 400, 500, 600, 700}, false, false},
		{"free override", snapOf(10, 275, nil), base, Goal{Kind: GoalWatermark, Free: checkpoint.MustWatermark("300MiB")}, []int64{100, 200, 300}, false, false},
		// max_bytes: ten 10 MiB checkpoints (100 MiB), plenty of free space.
		{"max_bytes holds: noop", withMaxBytes(snapOf(10, 500, nil), 100), base, water, []int64{}, false, true},
		{"max_bytes deletes oldest until under", withMaxBytes(snapOf(10, 500, nil), 75), base, water, []int64{100, 200, 300}, false, false},
		{"max_bytes and watermark: the larger need wins", withMaxBytes(snapOf(10, 285, nil), 75), base, water, []int64{100, 200, 300}, false, false},
		{"watermark needs more than max_bytes", withMaxBytes(snapOf(10, 255, nil), 95), base, water, []int64{100, 200, 300, 400, 500}, false, false},
		{"max_bytes below keep_last: insufficient", withMaxBytes(snapOf(5, 500, nil), 15), base, water, []int64{100, 200}, true, false},
		{"max_bytes ignored by the count goal", withMaxBytes(snapOf(6, 500, nil), 15), base, count(4), []int64{100, 200}, false, false},
		{"count with unreachable free target", snapOf(4, 100, nil), base, Goal{Kind: GoalCount, Keep: 3, Free: checkpoint.MustWatermark("50%")}, []int64{100}, true, false},
		// A run resumed from step 300 wrote 350 and 450 after 400..800: the
		// newest N by step and the N most recently written are kept.
		{"resumed run keeps its new saves (count)", resumed(), base, count(2), []int64{100, 200, 300, 400, 500, 600}, false, false},
		{"resumed run keeps its new saves (watermark)", resumed(), base, Goal{Kind: GoalWatermark, Free: checkpoint.MustWatermark("600MiB")}, []int64{100, 200, 300, 400, 500}, true, false},
		{"uncertain never planned", snapOf(5, 500, func(cs []checkpoint.Checkpoint) { cs[0].Uncertain = "two numbers" }), base, count(1), []int64{200, 300, 400}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := MakePlan(tt.snap, tt.policy, tt.goal, now)
			if got := steps(plan.Delete); !reflect.DeepEqual(got, tt.wantDelete) {
				t.Errorf("delete %v, want %v (keep: %+v)", got, tt.wantDelete, plan.Keep)
			}
			if plan.Insufficient != tt.insufficient || plan.Noop != tt.noop {
				t.Errorf("insufficient=%v noop=%v, want %v %v", plan.Insufficient, plan.Noop, tt.insufficient, tt.noop)
			}
			if plan.Insufficient && plan.ShortBytes == 0 {
				t.Error("insufficient plan does not say how far short it is")
			}
			if len(plan.Delete)+len(plan.Keep) != len(tt.snap.Checkpoints) {
				t.Errorf("plan lost checkpoints: %d + %d != %d", len(plan.Delete), len(plan.Keep), len(tt.snap.Checkpoints))
			}
			latest := tt.snap.Latest()
			for _, it := range plan.Delete {
				c := it.Checkpoint
				if c.Incomplete || c.Pinned != "" || (latest != nil && c.Step == latest.Step) {
					t.Errorf("planned %s (incomplete=%v pinned=%q) which must never be deleted", c.Name, c.Incomplete, c.Pinned)
				}
				if tt.policy.Offloaded != nil && !tt.policy.Offloaded(c) {
					t.Errorf("planned %s which is not offloaded", c.Name)
				}
			}
		})
	}
}

// resumed is a run that saved 100..800 (10 MiB each, 500 MiB available of
// 1000), was resumed from 300 and then saved 350 and 450: these two are the
// most recently written, 800 and 700 the newest by step.
func resumed() *checkpoint.Snapshot {
	s := snapOf(8, 500, func(cs []checkpoint.Checkpoint) {
		for i := range cs {
			cs[i].ModTime = now.Add(-time.Hour + time.Duration(i)*time.Minute)
		}
	})
	cs := append([]checkpoint.Checkpoint{}, s.Checkpoints[:3]...)
	cs = append(cs,
		checkpoint.Checkpoint{Name: "checkpoint-350", Step: 350, Bytes: 10 << 20, ModTime: now.Add(-20 * time.Minute)},
		checkpoint.Checkpoint{Name: "checkpoint-450", Step: 450, Bytes: 10 << 20, ModTime: now.Add(-10 * time.Minute)})
	s.Checkpoints = append(cs, s.Checkpoints[3:]...)
	return s
}

func TestKeepReasons(t *testing.T) {
	snap := snapOf(6, 500, func(cs []checkpoint.Checkpoint) {
		cs[0].Incomplete = true
		cs[1].Pinned = "latest"
		cs[2].Name = "best_300"
	})
	p := Policy{KeepLast: 2, Protect: []string{"best_*"}, KeepEvery: 400}
	plan := MakePlan(snap, p, Goal{Kind: GoalCount, Keep: 2}, now)
	got := map[int64]string{}
	for _, it := range plan.Keep {
		got[it.Checkpoint.Step] = it.Reason
	}
	want := map[int64]string{100: "incomplete", 200: "pinned (latest)", 300: "protected", 400: "keep_every", 500: "latest 2", 600: "latest 2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reasons %v, want %v", got, want)
	}
}

// Issue #27: what the general series rule counted (no layout's rule names
// it) is never pruned, whatever the goal, and fills no keep_last slot: the
// newest checkpoints a rule does name are kept as if it were not there.
func TestUnrecognisedNeverPruned(t *testing.T) {
	unrecognised := func(cs []checkpoint.Checkpoint, from int) {
		for i := from; i < len(cs); i++ {
			cs[i].Unrecognised = true
			cs[i].Uncertain = "no rule for this layout"
		}
	}
	tests := []struct {
		name       string
		snap       *checkpoint.Snapshot
		goal       Goal
		keep       map[int64]string
		deleteSome []int64
	}{
		{
			name: "all unrecognised, keep 1",
			snap: snapOf(5, 500, func(cs []checkpoint.Checkpoint) { unrecognised(cs, 0) }),
			goal: Goal{Kind: GoalCount, Keep: 1},
			keep: map[int64]string{100: ReasonNoRule, 200: ReasonNoRule, 300: ReasonNoRule, 400: ReasonNoRule, 500: ReasonNoRule},
		},
		{
			name: "all unrecognised, a disk to free",
			snap: snapOf(5, 1, func(cs []checkpoint.Checkpoint) { unrecognised(cs, 0) }),
			goal: Goal{Kind: GoalWatermark, Free: checkpoint.Watermark{Ratio: 0.5}},
			keep: map[int64]string{100: ReasonNoRule, 200: ReasonNoRule, 300: ReasonNoRule, 400: ReasonNoRule, 500: ReasonNoRule},
		},
		{
			name: "newer unrecognised ones fill no keep_last slot",
			snap: snapOf(5, 500, func(cs []checkpoint.Checkpoint) { unrecognised(cs, 3) }),
			goal: Goal{Kind: GoalCount, Keep: 2},
			keep: map[int64]string{200: "latest 2", 300: "latest 2", 400: ReasonNoRule, 500: ReasonNoRule},
			// 100 goes: 200 and 300 are the newest two the rules name.
			deleteSome: []int64{100},
		},
		{
			name: "a torn unrecognised save is kept too",
			snap: snapOf(4, 500, func(cs []checkpoint.Checkpoint) { unrecognised(cs, 0); cs[3].Torn = "zip end record missing" }),
			goal: Goal{Kind: GoalCount, Keep: 1},
			keep: map[int64]string{100: ReasonNoRule, 200: ReasonNoRule, 300: ReasonNoRule, 400: ReasonNoRule},
		},
	}
	for _, tt := range tests {
		plan := MakePlan(tt.snap, Policy{KeepLast: 1}, tt.goal, now)
		got := map[int64]string{}
		for _, it := range plan.Keep {
			got[it.Checkpoint.Step] = it.Reason
		}
		if !reflect.DeepEqual(got, tt.keep) || !reflect.DeepEqual(steps(plan.Delete), append([]int64{}, tt.deleteSome...)) {
			t.Errorf("%s: keep %v delete %v; want keep %v delete %v", tt.name, got, steps(plan.Delete), tt.keep, tt.deleteSome)
		}
	}
}

func TestHeadroomBytes(t *testing.T) {
	// spaced sets the gap between the checkpoints' mtimes.
	spaced := func(gap time.Duration) func([]checkpoint.Checkpoint) {
		return func(cs []checkpoint.Checkpoint) {
			for i := range cs {
				cs[i].ModTime = now.Add(-time.Hour + time.Duration(i)*gap)
			}
		}
	}
	for _, tt := range []struct {
		name     string
		snap     *checkpoint.Snapshot
		headroom time.Duration
		want     uint64
	}{
		{"10 MiB a minute for 10 minutes", snapOf(5, 500, nil), 10 * time.Minute, 100 << 20},
		{"one checkpoint: rate unknown", snapOf(1, 500, nil), 10 * time.Minute, 0},
		{"headroom off", snapOf(5, 500, nil), 0, 0},
		// Copied or extracted together: no save interval, no rate.
		{"mtimes 1 ms apart", snapOf(20, 500, spaced(time.Millisecond)), 10 * time.Minute, 0},
		{"mtimes just under the floor", snapOf(20, 500, spaced(checkpoint.MinSaveGap-time.Nanosecond)), 10 * time.Minute, 0},
		// 10 MiB a second for a day is far more than the 1000 MiB disk.
		{"never more than the filesystem", snapOf(20, 500, spaced(time.Second)), 24 * time.Hour, 1000 << 20},
	} {
		if got := HeadroomBytes(tt.snap, tt.headroom); got != tt.want {
			t.Errorf("%s: headroom = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// offloadedExcept is an offload lookup that confirms every checkpoint but
// those of the given steps.
func offloadedExcept(steps ...int64) func(checkpoint.Checkpoint) bool {
	return func(c checkpoint.Checkpoint) bool {
		for _, s := range steps {
			if c.Step == s {
				return false
			}
		}
		return true
	}
}

func TestKeepReasonNotOffloaded(t *testing.T) {
	snap := snapOf(5, 500, func(cs []checkpoint.Checkpoint) { cs[1].Pinned = "latest" })
	p := Policy{KeepLast: 1, Offloaded: offloadedExcept(100, 200, 500)}
	plan := MakePlan(snap, p, Goal{Kind: GoalCount, Keep: 1}, now)
	got := map[int64]string{}
	for _, it := range plan.Keep {
		got[it.Checkpoint.Step] = it.Reason
	}
	// The newest is kept as the latest whether offloaded or not; a pinned
	// one says pinned: "not offloaded" is the last reason looked at.
	want := map[int64]string{100: ReasonNotOffloaded, 200: "pinned (latest)", 500: "latest 1"}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(steps(plan.Delete), []int64{300, 400}) {
		t.Errorf("kept %v, deleted %v; want kept %v, deleted [300 400]", got, steps(plan.Delete), want)
	}
}
