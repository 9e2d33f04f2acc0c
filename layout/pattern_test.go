package layout

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A pattern reads its ordering numbers and its metrics from each name it
// names, and nothing from a name it does not.
func TestPatternRead(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		pattern, name string
		ok            bool
		epoch, step   int64
		metrics       Metrics
	}{
		// A {step}-only pattern reads as it always did.
		{"checkpoint_step_{step}.keras", "checkpoint_step_25000.keras", true, 0, 25000, nil},
		{"rl_model_*{step}_steps.zip", "rl_model_10000_steps.zip", true, 0, 10000, nil},
		{"ema-{step}.*", "ema-100.json", true, 0, 100, nil},
		{"checkpoint_step_{step}.keras", "checkpoint_step_.keras", false, 0, 0, nil},
		{"run_*{step}.pt", "run_a12.pt", true, 0, 12, nil},
		// Braces around anything but a name are literal, as before.
		{"ckpt{x-1}_{step}.pt", "ckpt{x-1}_7.pt", true, 0, 7, nil},
		// Keras' ModelCheckpoint filepath, format specs and all.
		{"weights.{epoch:02d}-{val_loss:.2f}.keras", "weights.03-0.41.keras", true, 3, 3, Metrics{"val_loss": 0.41}},
		{"weights.{epoch}-{val_loss}.keras", "weights.03-0.41.keras", true, 3, 3, Metrics{"val_loss": 0.41}},
		{"weights.{epoch}-{val_loss}.keras", "weights.12--1.2e-03.keras", true, 12, 12, Metrics{"val_loss": -1.2e-3}},
		{"weights.{epoch}-{val_loss}.keras", "weights.12-nan.keras", true, 12, 12, Metrics{"val_loss": nan}},
		{"weights.{epoch}-{val_loss}.keras", "weights.12-inf.keras", true, 12, 12, Metrics{"val_loss": math.Inf(1)}},
		{"weights.{epoch}-{val_loss}.keras", "weights.12--inf.keras", true, 12, 12, Metrics{"val_loss": math.Inf(-1)}},
		{"weights.{epoch}-{val_loss}.keras", "weights.12-0.4a.keras", false, 0, 0, nil},
		{"weights.{epoch}-{val_loss}.keras", "weights.12-.keras", false, 0, 0, nil},
		// Both ordering numbers: the step shown is {step}.
		{"model_e{epoch}_s{step}.pt", "model_e2_s150.pt", true, 2, 150, nil},
		{"epoch={epoch}-step={step}-val_loss={val_loss}.ckpt", "epoch=3-step=1500-val_loss=0.41.ckpt", true, 3, 1500, Metrics{"val_loss": 0.41}},
		// A metric is never a step, however it looks.
		{"ckpt-{step}-val_loss={val_loss}.ckpt", "ckpt-20-val_loss=1000.ckpt", true, 0, 20, Metrics{"val_loss": 1000}},
		{"ckpt_{step}_{acc}_{loss}.pt", "ckpt_5_98_0.5.pt", true, 0, 5, Metrics{"acc": 98, "loss": 0.5}},
		// A * never takes part of a number.
		{"ckpt*{val_loss}_{step}.pt", "ckpt0.41_3.pt", true, 0, 3, Metrics{"val_loss": 0.41}},
	}
	for _, tt := range tests {
		p, err := CompilePattern(tt.pattern)
		if err != nil {
			t.Fatalf("CompilePattern(%q): %v", tt.pattern, err)
		}
		n, ok := p.read(tt.name)
		if ok != tt.ok || n.epoch != tt.epoch || n.step != tt.step || !sameMetrics(n.metrics, tt.metrics) {
			t.Errorf("pattern %q reads %q: ok %v epoch %d step %d metrics %v; want ok %v epoch %d step %d metrics %v",
				tt.pattern, tt.name, ok, n.epoch, n.step, n.metrics, tt.ok, tt.epoch, tt.step, tt.metrics)
		}
	}
}

// sameMetrics compares metrics, NaN equal to NaN.
func sameMetrics(a, b Metrics) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v != w && !(math.IsNaN(v) && math.IsNaN(w)) {
			return false
		}
	}
	return true
}

func TestCompilePatternRefusesWithReason(t *testing.T) {
	for _, tt := range []struct{ pattern, reason string }{
		{"no_placeholder.pt", "neither {step} nor {epoch}"},
		{"weights-{val_loss}.keras", "neither {step} nor {epoch}"},
		{"{step}_{step}", "{step} once"},
		{"m_{epoch}_{val_loss}_{val_loss}.pt", "{val_loss} once"},
		{"m_{epoch}{step}.pt", "separated"},
		{"m_{step}{val_loss}.pt", "separated"},
		{"sub/{step}", "not paths"},
	} {
		_, err := CompilePattern(tt.pattern)
		if err == nil || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("CompilePattern(%q) = %v; want an error saying %q", tt.pattern, err, tt.reason)
		}
	}
}

// Issue #27 item 4: a pattern with {epoch} and {step} orders by both, for
// names whose step starts again every epoch, and every rule that looks for
// the newest (markers, trackers, the reading's order) follows that order.
func TestPatternOrdersByEpochThenStep(t *testing.T) {
	d := &fakeDir{
		mtime: time.Now().Add(-time.Hour),
		top:   files("model_e1_s200.pt", "model_e2_s100.pt", "model_e1_s100.pt", "model_e2_s50.pt", "model_e10_s10.pt", "notes.txt"),
	}
	r, err := Read(d, Options{Pattern: "model_e{epoch}_s{step}.pt", Now: time.Now(), MinAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var steps []int64
	for _, f := range r.Found {
		got = append(got, f.Name)
		steps = append(steps, f.Step)
	}
	want := []string{"model_e1_s100.pt", "model_e1_s200.pt", "model_e2_s50.pt", "model_e2_s100.pt", "model_e10_s10.pt"}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(steps, []int64{100, 200, 50, 100, 10}) {
		t.Errorf("order %q steps %v; want %q steps [100 200 50 100 10]", got, steps, want)
	}

	// A tracker naming a checkpoint cuts by the same order: the one saved
	// after it (a lower step, a later epoch) is in progress.
	d.files = map[string]string{"latest.txt": "model_e2_s50.pt"}
	d.top = append(d.top, Entry{Name: "latest.txt", Kind: KindFile})
	r, err = Read(d, Options{Pattern: "model_e{epoch}_s{step}.pt", Now: time.Now(), MinAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Found {
		newer := f.Epoch > 2 || f.Epoch == 2 && f.Step > 50
		if f.Incomplete != newer || (f.Name == "model_e2_s50.pt") != (f.Pinned == "latest.txt") {
			t.Errorf("%s: incomplete %v pinned %q; want incomplete %v, pinned only for the tracker's", f.Name, f.Incomplete, f.Pinned, newer)
		}
	}
}

// An {epoch}-only pattern shows the epoch as the step.
func TestPatternEpochOnly(t *testing.T) {
	d := &fakeDir{mtime: time.Now().Add(-time.Hour), top: files("weights.10-0.30.keras", "weights.02-0.50.keras", "weights.09-0.35.keras")}
	r, err := Read(d, Options{Pattern: "weights.{epoch:02d}-{val_loss:.2f}.keras", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var steps []int64
	for _, f := range r.Found {
		steps = append(steps, f.Step)
	}
	if !reflect.DeepEqual(steps, []int64{2, 9, 10}) || r.Found[2].Metrics["val_loss"] != 0.30 {
		t.Errorf("steps %v, newest metrics %v; want [2 9 10] and val_loss 0.30 for the newest", steps, r.Found[2].Metrics)
	}
}

// Entries of one checkpoint agree on its metrics; entries that disagree are
// different saves the pattern cannot tell apart: kept, never pruned.
func TestPatternGroupMetrics(t *testing.T) {
	d := &fakeDir{mtime: time.Now().Add(-time.Hour), top: files(
		"ckpt.01-0.50.keras", "ckpt.01-0.50.json", // one save: the model and its state
		"ckpt.02-0.40.keras", "ckpt.02-0.45.keras", // two saves in epoch 2 (Keras' {batch} left out)
	)}
	r, err := Read(d, Options{Pattern: "ckpt.{epoch}-{val_loss}.*", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Found) != 2 {
		t.Fatalf("%d checkpoints, want 2: %+v", len(r.Found), r.Found)
	}
	if f := r.Found[0]; len(f.Entries) != 2 || f.Uncertain != "" || f.Metrics["val_loss"] != 0.50 {
		t.Errorf("epoch 1: entries %q uncertain %q metrics %v; want both files, certain, val_loss 0.5", f.Entries, f.Uncertain, f.Metrics)
	}
	if f := r.Found[1]; !strings.Contains(f.Uncertain, "different metric values for one epoch") {
		t.Errorf("epoch 2: uncertain %q; want uncertain: two saves the pattern cannot tell apart", f.Uncertain)
	}
}
