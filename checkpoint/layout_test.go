package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

func TestLayouts(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]int
		setup  func(t *testing.T, dir string)
		layout string // configured layout; "" = auto
		want   summary
		series string
	}{
		{
			name:   "keras with a renamed backup",
			files:  map[string]int{"checkpoint_step_100.keras": 10, "checkpoint_step_200.keras": 10, "checkpoint_step_300.keras": 10, "important_backup_200.keras": 10, "train.log": 5},
			want:   summary{layout: "keras", steps: []int64{100, 200, 300}},
			series: "checkpoint_step_{step}.keras",
		},
		{
			name:  "keras weights.h5",
			files: map[string]int{"model_01.weights.h5": 1, "model_02.weights.h5": 1},
			want:  summary{layout: "keras", steps: []int64{1, 2}},
		},
		{
			name: "hugging face",
			files: map[string]int{
				"checkpoint-500/model.safetensors": 100, "checkpoint-500/optimizer.pt": 50, "checkpoint-500/trainer_state.json": 10,
				"checkpoint-1000/model.safetensors": 100, "checkpoint-1000/optimizer.pt": 50,
				"checkpoint-1500/model.safetensors":     100,
				"tmp-checkpoint-2000/model.safetensors": 10,
				"runs/":                                 0, "config.json": 10,
			},
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "checkpoint-1500/trainer_state.json"), `{"best_model_checkpoint": "out/checkpoint-500", "global_step": 1500}`)
				writeFile(t, filepath.Join(dir, "checkpoint-1000/trainer_state.json"), `{"best_model_checkpoint": "out/checkpoint-1000"}`)
			},
			want:   summary{layout: "hf", steps: []int64{500, 1000, 1500}, incomplete: []int64{2000}, pinned: []int64{500}},
			series: "checkpoint-{step}",
		},
		{
			name: "tensorflow",
			files: map[string]int{
				"ckpt-1.index": 10, "ckpt-1.data-00000-of-00001": 100,
				"ckpt-2.index": 10, "ckpt-2.data-00000-of-00002": 100, "ckpt-2.data-00001-of-00002": 100,
				"ckpt-3.index": 10, "ckpt-3.data-00000-of-00001": 100,
				"ckpt-4.data-00000-of-00001": 100,
				"ckpt-5.index":               5, "ckpt-5.data-00000-of-00001.tempstate123": 50,
			},
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "checkpoint"), "model_checkpoint_path: \"ckpt-3\"\nall_model_checkpoint_paths: \"ckpt-1\"\n")
			},
			want: summary{layout: "tensorflow", steps: []int64{1, 2, 3}, incomplete: []int64{4, 5}, pinned: []int64{3}},
		},
		{
			name: "orbax",
			files: map[string]int{
				"1000/default/d": 10, "1000/commit_success.txt": 1,
				"2000/default/d": 10, "2000/commit_success.txt": 1,
				"3000/default/d": 10,
				"4000.orbax-checkpoint-tmp-1732000000/default/d": 10,
			},
			want: summary{layout: "orbax", steps: []int64{1000, 2000}, incomplete: []int64{3000, 4000}},
		},
		{
			name:  "orbax prefixed without commit markers",
			files: map[string]int{"checkpoint_1000/default/d": 10, "checkpoint_2000/default/d": 10},
			want:  summary{layout: "orbax", steps: []int64{1000, 2000}},
		},
		{
			name: "deepspeed",
			files: map[string]int{
				"global_step500/mp_rank_00_model_states.pt": 10, "global_step1000/mp_rank_00_model_states.pt": 10,
				"global_step1500/mp_rank_00_model_states.pt": 10, "zero_to_fp32.py": 1,
			},
			setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "latest"), "global_step1000") },
			want:  summary{layout: "deepspeed", steps: []int64{500, 1000}, incomplete: []int64{1500}, pinned: []int64{1000}},
		},
		{
			name: "megatron",
			files: map[string]int{
				"iter_0000500/mp_rank_00/model_optim_rng.pt": 10, "iter_0001000/mp_rank_00/model_optim_rng.pt": 10,
				"iter_0001500/mp_rank_00/model_optim_rng.pt": 10,
			},
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "latest_checkpointed_iteration.txt"), "1000\n")
			},
			want: summary{layout: "megatron", steps: []int64{500, 1000}, incomplete: []int64{1500}, pinned: []int64{1000}},
		},
		{
			name: "nemo unfinished marker",
			files: map[string]int{
				"iter_0000500/m": 10, "iter_0001000/m": 10, "iter_0001000-unfinished": 0,
			},
			want: summary{layout: "megatron", steps: []int64{500}, incomplete: []int64{1000}},
		},
		{
			name:  "lightning",
			files: map[string]int{"epoch=0-step=500.ckpt": 10, "epoch=0-step=1000.ckpt": 10, "epoch=1-step=1500.ckpt": 10},
			setup: func(t *testing.T, dir string) {
				if err := os.Symlink("epoch=0-step=1000.ckpt", filepath.Join(dir, "last.ckpt")); err != nil {
					t.Fatal(err)
				}
			},
			want:   summary{layout: "lightning", steps: []int64{500, 1000, 1500}, pinned: []int64{1000}},
			series: "epoch={n}-step={step}.ckpt",
		},
		{
			name:  "lightning last.ckpt file is not a checkpoint",
			files: map[string]int{"epoch=0-step=500.ckpt": 10, "epoch=0-step=1000.ckpt": 10, "last.ckpt": 10, "last-v1.ckpt": 10},
			want:  summary{layout: "lightning", steps: []int64{500, 1000}},
		},
		{
			name:   "forced layout ignores others",
			files:  map[string]int{"checkpoint-1/x": 1, "a_1.keras": 1, "a_2.keras": 1, "a_3.keras": 1},
			layout: "hf",
			want:   summary{layout: "hf", steps: []int64{1}},
		},
		{
			name:  "nothing recognised",
			files: map[string]int{"notes.txt": 1, "data/": 0},
			want:  summary{layout: "none"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tree(t, tt.files)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			snap := scan(t, Target{Name: "t", Path: dir, Layout: tt.layout}, ScanOptions{})
			if got := summarize(snap); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("files %v:\n got %+v\nwant %+v", tt.files, got, tt.want)
			}
			if tt.series != "" && snap.Series != tt.series {
				t.Errorf("series = %q, want %q", snap.Series, tt.series)
			}
		})
	}
}

func TestTensorflowGroupsFiles(t *testing.T) {
	dir := tree(t, map[string]int{"ckpt-7.index": 4096, "ckpt-7.data-00000-of-00002": 8192, "ckpt-7.data-00001-of-00002": 8192})
	snap := scan(t, Target{Name: "t", Path: dir}, ScanOptions{})
	if len(snap.Checkpoints) != 1 {
		t.Fatalf("got %d checkpoints, want one group: %+v", len(snap.Checkpoints), snap.Checkpoints)
	}
	c := snap.Checkpoints[0]
	if c.Name != "ckpt-7" || len(c.Entries) != 3 || c.Bytes != 4096+8192+8192 {
		t.Errorf("got %s with %d entries, %d bytes; want ckpt-7, 3 entries, 20480 bytes", c.Name, len(c.Entries), c.Bytes)
	}
}

func TestCustomPattern(t *testing.T) {
	dir := tree(t, map[string]int{
		"run_a_step10.pt": 1, "run_a_step20.pt": 1, "run_b_step30.pt": 1, "other_step40.pt": 1,
		"ema-100.bin": 1, "ema-100.json": 1,
	})
	tests := []struct {
		pattern string
		want    []int64
	}{
		{"run_*_step{step}.pt", []int64{10, 20, 30}},
		{"ema-{step}.*", []int64{100}},
		{"run_a_step{step}.pt", []int64{10, 20}},
	}
	for _, tt := range tests {
		snap := scan(t, Target{Name: "t", Path: dir, Pattern: tt.pattern}, ScanOptions{})
		if got := summarize(snap).steps; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("pattern %q: steps %v, want %v", tt.pattern, got, tt.want)
		}
	}
}

// The operator guide's case: 250 Keras checkpoints and one renamed by hand to
// pin it.
func TestSeedCase(t *testing.T) {
	files := map[string]int{"important_backup_15000.keras": 84_000}
	for s := 100; s <= 25000; s += 100 {
		files[fmt.Sprintf("checkpoint_step_%d.keras", s)] = 84_000 + s
	}
	dir := tree(t, files)
	snap := scan(t, Target{Name: "caocrvfy", Path: dir}, ScanOptions{})
	if n := len(snap.Complete()); n != 250 {
		t.Fatalf("checkpoints = %d, want 250", n)
	}
	if l := snap.Latest(); l == nil || l.Step != 25000 {
		t.Fatalf("latest = %+v, want step 25000", l)
	}
	if !reflect.DeepEqual(snap.Ignored, []string{"important_backup_15000.keras"}) {
		t.Errorf("ignored = %v, want the renamed backup", snap.Ignored)
	}
	var paths []string
	for s := 100; s <= 25000; s += 100 {
		paths = append(paths, filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s)))
	}
	if want := testenv.DuBytes(t, paths...); snap.Bytes() != want {
		t.Errorf("bytes = %d, du -scB1 says %d", snap.Bytes(), want)
	}
}
