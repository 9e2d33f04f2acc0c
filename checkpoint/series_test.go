package checkpoint

import (
	"reflect"
	"testing"
)

// Issue #11 item 9: a * before {step} leaves the step whole, a multi-file
// checkpoint is named so that it keeps its step and stays unique.
func TestPatternPitfalls(t *testing.T) {
	dir := tree(t, map[string]int{
		"rl_model_10000_steps.zip": 1, "rl_model_replay_buffer_10000_steps.pkl": 1,
		"rl_model_20000_steps.zip": 1, "rl_model_replay_buffer_20000_steps.pkl": 1,
	})
	snap := scan(t, Target{Name: "t", Path: dir, Pattern: "rl_model_*{step}_steps.*"}, ScanOptions{})
	var got []string
	for _, c := range snap.Checkpoints {
		got = append(got, c.Name)
		if len(c.Entries) != 2 {
			t.Errorf("%s: %d entries, want the model and its replay buffer", c.Name, len(c.Entries))
		}
	}
	want := []string{"rl_model_10000_steps.zip (+1)", "rl_model_20000_steps.zip (+1)"}
	if !reflect.DeepEqual(got, want) || snap.Checkpoints[0].Step != 10000 {
		t.Errorf("checkpoints %q (first step %d), want %q", got, snap.Checkpoints[0].Step, want)
	}

}

// A copy of the whole series under another name (here a person's backups) is
// not a companion in a Keras directory: it stays apart, and since two series
// fit equally well, neither is pruned.
func TestCopiedSeriesStaysApart(t *testing.T) {
	files := map[string]int{}
	for _, s := range []string{"1", "2", "3", "4"} {
		files["model_"+s+".keras"] = 1
		files["backup_"+s+".keras"] = 1
	}
	snap := scan(t, Target{Name: "t", Path: tree(t, files)}, ScanOptions{})
	for _, c := range snap.Checkpoints {
		if len(c.Entries) != 1 {
			t.Errorf("%s groups %d entries: a copied series joined the checkpoints", c.Name, len(c.Entries))
		}
	}
	if len(snap.Checkpoints) != 4 || len(snap.Ignored) != 4 {
		t.Errorf("%d checkpoints, ignored %v; want 4 and the 4 others ignored", len(snap.Checkpoints), snap.Ignored)
	}
	// Two series of equal size: auto cannot know which one is the run's.
	for _, c := range snap.Checkpoints {
		if c.Uncertain == "" {
			t.Errorf("%s is not uncertain though two series of 4 fit", c.Name)
		}
	}
}
