package checkpoint

import (
	"reflect"
	"testing"
)

// Issue #11 item 1: a digit run inside a decimal number or the value of a
// metric key is never a step; nor is a shard index or a -v1 version.
func TestParseNameSteps(t *testing.T) {
	exts := append(append([]string{}, kerasExts...), ".ckpt", ".pt", ".pth.tar", ".zip", "*")
	tests := []struct {
		name    string
		key     string
		step    int64
		certain bool
	}{
		{"model.05-0.41.keras", "model.{step}-{n}.{n}.keras", 5, true},                              // Keras {epoch:02d}-{val_loss:.2f}
		{"weights-improvement-12-0.87.hdf5", "weights-improvement-{step}-{n}.{n}.hdf5", 12, true},   // tf.keras tutorial
		{"epoch=02-val_loss=0.12.ckpt", "epoch={step}-val_loss={n}.{n}.ckpt", 2, true},              // Lightning metric name
		{"epoch=3-step=1200-val_acc=98.ckpt", "epoch={n}-step={step}-val_acc={n}.ckpt", 1200, true}, // metric value without decimals
		{"epoch=05-val_loss=0.41-v1.ckpt", "epoch={step}-val_loss={n}.{n}-v{n}.ckpt", 5, true},      // Lightning version suffix
		{"megatron_gpt--val_loss=1.23-step=1000-consumed_samples=64000.0.ckpt", "megatron_gpt--val_loss={n}.{n}-step={step}-consumed_samples={n}.{n}.ckpt", 1000, true},
		{"ep1-ba4000-rank0.pt", "ep{n}-ba{step}-rank{n}.pt", 4000, true}, // Composer: ba is the step
		{"rl_model_50000_steps.zip", "rl_model_{step}_steps.zip", 50000, true},
		{"checkpoint_3_45000.pt", "checkpoint_{n}_{step}.pt", 45000, false}, // fairseq: two numbers, no key
		{"checkpoint-37.pth.tar", "checkpoint-{step}.pth.tar", 37, true},
		{"model-00001-of-00002-step-7.pt", "model-{n}-of-{n}-step-{step}.pt", 7, true},
	}
	for _, tt := range tests {
		p, ok := parseName(tt.name, exts)
		if !ok || p.key != tt.key || p.step != tt.step || p.certain != tt.certain {
			t.Errorf("parseName(%q) = %q step %d certain %v ok %v; want %q step %d certain %v", tt.name, p.key, p.step, p.certain, ok, tt.key, tt.step, tt.certain)
		}
	}
	for _, name := range []string{"checkpoint_best.pt", "checkpoint.best_loss_3.85.pt", "last-v1.ckpt", "model_best.pth.tar", "latest-rank0.pt", "final.keras"} {
		if p, ok := parseName(name, exts); ok {
			t.Errorf("parseName(%q) = %+v, want no step: kept by name", name, p)
		}
	}
}

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
	for _, tt := range []struct {
		entries []string
		step    int64
		want    string
	}{
		{[]string{"ckpt-5.data-00000-of-00001", "ckpt-5.index"}, 5, "ckpt-5"},
		{[]string{"ep0-ba1000-rank0.tar", "ep0-ba1000-rank1.tar"}, 1000, "ep0-ba1000"},
		{[]string{"step1000", "step1000-unsharded"}, 1000, "step1000"},
		{[]string{"ckpt-1.index", "ckpt-10.index"}, 1, "ckpt-1.index (+1)"},
	} {
		if got := groupName(tt.entries, tt.step); got != tt.want {
			t.Errorf("groupName(%q) = %q, want %q", tt.entries, got, tt.want)
		}
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
