package verdict

import (
	"fmt"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// ckpt is a whole checkpoint of one file at step, written age ago.
func ckpt(step int64, age time.Duration) checkpoint.Checkpoint {
	name := fmt.Sprintf("ckpt_%d.pt", step)
	return checkpoint.Checkpoint{Name: name, Step: step, Bytes: 100, ModTime: now.Add(-age),
		Entries: []checkpoint.Entry{{Name: name, Ino: uint64(step)}}}
}

func TestOf(t *testing.T) {
	cs := []checkpoint.Checkpoint{ckpt(1, 9*time.Hour), ckpt(2, 8*time.Hour), ckpt(3, 7*time.Hour), ckpt(4, 6*time.Hour),
		ckpt(5, 5*time.Hour), ckpt(6, time.Second)}
	cs[0].Torn = "zip end record missing, file ends at 10"
	cs[1].Pinned = "latest"
	cs[5].Incomplete, cs[5].Why = true, "lacks meta.pt that ckpt_5 has"
	snap := &checkpoint.Snapshot{Target: checkpoint.Target{Name: "t", MinAge: time.Minute}, Checkpoints: cs}
	got := Of(snap, pruner.Policy{KeepLast: 2, Protect: []string{"ckpt_3*"}}, now)
	want := []struct{ status, text, code, detail string }{
		{Prunable, "torn: zip end record missing, file ends at 10 (prunable, goes first)", CodeTorn, "zip end record missing, file ends at 10"},
		{Keep, "keep: pinned (latest)", CodePinned, "latest"},
		{Keep, "keep: protected", CodeProtected, ""},
		{Keep, "keep: latest 2", CodeLatest, "2"},
		{Keep, "keep: latest 2", CodeLatest, "2"},
		{Incomplete, "incomplete: lacks meta.pt that ckpt_5 has", CodeIncomplete, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d verdicts, want %d", len(got), len(want))
	}
	for i, w := range want {
		v := got[i]
		e := Explain(v.Reason)
		if v.Status != w.status || v.String() != w.text || e.Code != w.code || e.Detail != w.detail || v.Checkpoint.Name != cs[i].Name {
			t.Errorf("%s: got %s %q %+v, want %s %q %s/%q", cs[i].Name, v.Status, v.String(), e, w.status, w.text, w.code, w.detail)
		}
	}
}

func TestExplain(t *testing.T) {
	for _, tc := range []struct{ reason, code, detail string }{
		{"incomplete", CodeIncomplete, ""},
		{"uncertain", CodeUncertain, ""},
		{pruner.ReasonNoRule, CodeNoRule, ""},
		{"pinned (trainer_state.json best_model_checkpoint)", CodePinned, "trainer_state.json best_model_checkpoint"},
		{"protected", CodeProtected, ""},
		{pruner.ReasonTornYoung, CodeTornYoung, ""},
		{"not offloaded", CodeNotOffloaded, ""},
		{"suspect: 10 KiB, under half the median 1 MiB", CodeSuspect, "10 KiB, under half the median 1 MiB"},
		{"too young", CodeTooYoung, ""},
		{"latest 3", CodeLatest, "3"},
		{"keep_within", CodeKeepWithin, ""},
		{"keep_every", CodeKeepEvery, ""},
		{"not needed for the goal", CodeNotNeeded, ""},
		{"torn save: empty file", CodeTorn, "empty file"},
		{"older than the newest 3", CodeOlderThan, "3"},
		{"oldest, to free space", CodeFreeSpace, ""},
		{"oldest, over max_bytes", CodeMaxBytes, ""},
		{"latestish", CodeOther, "latestish"},
		{"something new", CodeOther, "something new"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			if got := Explain(tc.reason); got.Code != tc.code || got.Detail != tc.detail {
				t.Errorf("Explain(%q) = %+v, want %s %q", tc.reason, got, tc.code, tc.detail)
			}
		})
	}
}

func TestAge(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{-time.Second, "0s"}, {45 * time.Second, "45s"}, {12 * time.Minute, "12m"}, {3*time.Hour + 5*time.Minute, "3h5m"},
		{47 * time.Hour, "47h0m"}, {52 * time.Hour, "2d4h"}} {
		if got := Age(tc.d); got != tc.want {
			t.Errorf("Age(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
