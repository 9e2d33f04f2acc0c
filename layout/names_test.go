package layout

import "testing"

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

// A group of entries is named by its shared prefix up to the step where
// that names the step, else by its first entry and how many more.
func TestGroupName(t *testing.T) {
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

func TestSeriesOf(t *testing.T) {
	tests := []struct {
		name, key string
		step      int64
		ok        bool
	}{
		{"checkpoint_step_25000.keras", "checkpoint_step_{step}.keras", 25000, true},
		{"important_backup_15000.keras", "important_backup_{step}.keras", 15000, true},
		{"epoch=3-step=1200.ckpt", "epoch={n}-step={step}.ckpt", 1200, true},
		{"epoch=3-step=1200-val_loss=0.35.ckpt", "epoch={n}-step={step}-val_loss={n}.{n}.ckpt", 1200, true},
		{"model_v2_900.weights.h5", "model_v{n}_{step}.weights.h5", 900, true},
		{"final.keras", "", 0, false},
		{".keras", "", 0, false},
	}
	for _, tt := range tests {
		key, step, ok := seriesOf(tt.name, append(kerasExts, ".ckpt"))
		if key != tt.key || step != tt.step || ok != tt.ok {
			t.Errorf("seriesOf(%q) = %q, %d, %v; want %q, %d, %v", tt.name, key, step, ok, tt.key, tt.step, tt.ok)
		}
	}
}

func TestCompilePatternRefuses(t *testing.T) {
	for _, bad := range []string{"no_placeholder.pt", "{step}_{step}", "sub/{step}"} {
		if _, err := CompilePattern(bad); err == nil {
			t.Errorf("CompilePattern(%q) accepted a bad pattern", bad)
		}
	}
}
