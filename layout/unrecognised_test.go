package layout

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// tree is a fake directory from names: "dir/" is a directory (its files are
// "dir/file" lines), anything else a top-level file.
func tree(lines ...string) *fakeDir {
	d := &fakeDir{mtime: time.Now().Add(-time.Hour), lists: map[string][]Entry{}}
	seen := map[string]bool{}
	for _, ln := range lines {
		top, rest, inside := strings.Cut(ln, "/")
		if !seen[top] {
			seen[top] = true
			kind := KindFile
			if inside {
				kind = KindDir
				d.lists[top] = []Entry{}
			}
			d.top = append(d.top, Entry{Name: top, Kind: kind})
		}
		if rest != "" {
			d.lists[top] = append(d.lists[top], Entry{Name: rest, Kind: KindFile})
		}
	}
	return d
}

// seq is n names made by format from the numbers first, first+step, ….
func seq(format string, first, step, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf(format, first+i*step))
	}
	return out
}

func join(parts ...[]string) []string { return slices.Concat(parts...) }

// Issue #27: where no layout claims a directory, a numbered series of model
// files or model directories is counted, uncertain, with the pattern: that
// reads it alike.
func TestUnrecognisedSeries(t *testing.T) {
	tests := []struct {
		name    string
		lines   []string
		epochs  []int64 // in reading order (nil: all 0)
		steps   []int64
		entries int // per checkpoint
		noStep  bool
		series  string
		pattern string
	}{
		{
			name:  "MXNet single files beside the symbol file",
			lines: join([]string{"resnet-symbol.json"}, seq("resnet-%04d.params", 1, 1, 5)),
			steps: []int64{1, 2, 3, 4, 5}, entries: 1, series: "resnet-{step}.params", pattern: "resnet-{step}.params",
		},
		{
			name:  "steps sort as numbers, not as text",
			lines: seq("G_%d.pdparams", 500, 4750, 4),
			steps: []int64{500, 5250, 10000, 14750}, entries: 1, series: "G_{step}.pdparams", pattern: "G_{step}.pdparams",
		},
		{
			name:  "AllenNLP model and training state per epoch",
			lines: join(seq("model_state_epoch_%d.th", 0, 1, 4), seq("training_state_epoch_%d.th", 0, 1, 4), []string{"best.th", "config.json", "out.log"}),
			steps: []int64{0, 1, 2, 3}, entries: 2,
			series: "model_state_epoch_{step}.th + training_state_epoch_{step}.th", pattern: "*_state_epoch_{step}.th",
		},
		{
			name:  "Caffe weights and solver state per iteration",
			lines: join(seq("snapshot_iter_%d.caffemodel", 1000, 1000, 3), seq("snapshot_iter_%d.solverstate", 1000, 1000, 3)),
			steps: []int64{1000, 2000, 3000}, entries: 2,
			series: "snapshot_iter_{step}.caffemodel + snapshot_iter_{step}.solverstate", pattern: "snapshot_iter_{step}.*",
		},
		{
			name: "directories of weight shards",
			lines: join(seq("gpt-step-%06d/model-00001-of-00002.safetensors", 1000, 1000, 3), seq("gpt-step-%06d/model-00002-of-00002.safetensors", 1000, 1000, 3),
				seq("gpt-step-%06d/model.safetensors.index.json", 1000, 1000, 3)),
			steps: []int64{1000, 2000, 3000}, entries: 1, series: "gpt-step-{step}", pattern: "gpt-step-{step}",
		},
		{
			name:  "directories named by unix time",
			lines: join(seq("snapshot-%d/params.msgpack", 1704110400, 3600, 4), []string{"runs/events.out.tfevents.1704110400.host.1.0"}),
			steps: []int64{1704110400, 1704114000, 1704117600, 1704121200}, entries: 1, noStep: true,
			series: "snapshot-{time}", pattern: "snapshot-{step}",
		},
		{
			name:  "files named by date and time in one run",
			lines: []string{"weights-20240103083000.npz", "weights-20240101230000.npz", "weights-20240102120000.npz"},
			steps: []int64{20240101230000, 20240102120000, 20240103083000}, entries: 1, noStep: true,
			series: "weights-{time}.npz", pattern: "weights-{step}.npz",
		},
		{
			name:  "date and time of day: the pattern orders by both",
			lines: []string{"ckpt_20240102-000000/model.safetensors", "ckpt_20240101-120000/model.safetensors", "ckpt_20240101-180000/model.safetensors", "ckpt_20240101-090000/model.safetensors"},
			steps: []int64{20240101090000, 20240101120000, 20240101180000, 20240102000000}, entries: 1, noStep: true,
			series: "ckpt_{time}", pattern: "ckpt_{epoch}-{step}",
		},
		{
			name: "epoch and batch, the batch counted from 0 in each epoch",
			lines: []string{"model_e1_b500.pdparams", "model_e1_b1000.pdparams", "model_e2_b500.pdparams", "model_e2_b1000.pdparams",
				"model_e3_b500.pdparams", "model_e3_b1000.pdparams", "model_e10_b500.pdparams"},
			epochs: []int64{1, 1, 2, 2, 3, 3, 10},
			steps:  []int64{500, 1000, 500, 1000, 500, 1000, 500}, entries: 1,
			series: "model_e{epoch}_b{step}.pdparams", pattern: "model_e{epoch}_b{step}.pdparams",
		},
		{
			name: "AllenNLP 2: model and training state per epoch and batch",
			lines: []string{"model_state_e0_b0.th", "training_state_e0_b0.th", "model_state_e0_b1200.th", "training_state_e0_b1200.th",
				"model_state_e1_b0.th", "training_state_e1_b0.th", "best.th"},
			epochs: []int64{0, 0, 1},
			steps:  []int64{0, 1200, 0}, entries: 2,
			series: "model_state_e{epoch}_b{step}.th + training_state_e{epoch}_b{step}.th", pattern: "*_state_e{epoch}_b{step}.th",
		},
		{
			name:   "two numbers no word names, nothing else explains",
			lines:  []string{"net_1_100.npz", "net_1_200.npz", "net_2_300.npz", "net_2_400.npz", "net_3_500.npz"},
			epochs: []int64{1, 1, 2, 2, 3},
			steps:  []int64{100, 200, 300, 400, 500}, entries: 1,
			series: "net_{epoch}_{step}.npz", pattern: "net_{epoch}_{step}.npz",
		},
		{
			name:  "rank files of one step form one checkpoint",
			lines: join(seq("policy_it%d_rank0.pkl", 100, 100, 3), seq("policy_it%d_rank1.pkl", 100, 100, 3)),
			steps: []int64{100, 200, 300}, entries: 2, series: "policy_it{step}_rank*.pkl", pattern: "policy_it{step}_rank*.pkl",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Read(tree(tt.lines...), Options{Layout: Auto, Now: time.Now(), MinAge: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			var epochs, steps []int64
			for _, f := range r.Found {
				steps = append(steps, f.Step)
				if tt.epochs != nil {
					epochs = append(epochs, f.Epoch)
				} else if f.Epoch != 0 {
					t.Errorf("%s: epoch %d, want 0", f.Name, f.Epoch)
				}
				if !f.Unrecognised || f.NoStep != tt.noStep || len(f.Entries) != tt.entries || f.Incomplete ||
					!strings.Contains(f.Uncertain, "no rule for this layout") || !strings.Contains(f.Uncertain, fmt.Sprintf("pattern: %q", tt.pattern)) {
					t.Errorf("%s: unrecognised %v nostep %v entries %q incomplete %v uncertain %q; want unrecognised, nostep %v, %d entries, uncertain naming pattern %q",
						f.Name, f.Unrecognised, f.NoStep, f.Entries, f.Incomplete, f.Uncertain, tt.noStep, tt.entries, tt.pattern)
				}
			}
			if r.Layout != Unrecognised || !slices.Equal(steps, tt.steps) || !slices.Equal(epochs, tt.epochs) || r.Series != tt.series || r.Suggested != tt.pattern {
				t.Errorf("names %q:\n got layout %q epochs %v steps %v series %q pattern %q\nwant layout %q epochs %v steps %v series %q pattern %q",
					tt.lines, r.Layout, epochs, steps, r.Series, r.Suggested, Unrecognised, tt.epochs, tt.steps, tt.series, tt.pattern)
			}
			// The suggested pattern, configured, reads the same checkpoints.
			p, err := Read(tree(tt.lines...), Options{Pattern: r.Suggested, Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Found) != len(r.Found) {
				t.Fatalf("pattern %q reads %d checkpoints, the rule %d", r.Suggested, len(p.Found), len(r.Found))
			}
			for i := range p.Found {
				if !slices.Equal(p.Found[i].Entries, r.Found[i].Entries) || p.Found[i].Uncertain != "" || p.Found[i].Unrecognised {
					t.Errorf("pattern %q reads %q (uncertain %q) where the rule read %q", r.Suggested, p.Found[i].Entries, p.Found[i].Uncertain, r.Found[i].Entries)
				}
			}
		})
	}
}

// What training writes beside its checkpoints, numbered like them, never
// counts; nor do directories without a model file, names kept by name, or
// fewer than three members.
func TestUnrecognisedNeverCounts(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
	}{
		{"TensorBoard event files", seq("events.out.tfevents.%d.gpu01.1234.0", 1704110400, 3600, 4)},
		{"TensorBoard event files in run directories", seq("run-%03d/events.out.tfevents.1704110400.gpu01.1.0", 1, 1, 4)},
		{"logs", seq("train_%04d.log", 1, 1, 5)},
		{"sample images", seq("sample_%04d.png", 1, 1, 5)},
		{"webdataset shards", seq("shard-%05d-of-00010.tar", 1, 1, 10)},
		{"webdataset shards without a count", seq("shard-%06d.tar", 0, 1, 10)},
		{"configs", seq("config_%d.yaml", 1, 1, 4)},
		{"dataset shards of a model extension", seq("shard_%04d.npz", 1, 1, 5)},
		{"tokenised data", seq("data_%03d.bin", 1, 1, 5)},
		{"samples saved as arrays", seq("samples_step%d.npz", 100, 100, 5)},
		{"directories of images", seq("epoch_%03d_samples/img_0.png", 1, 1, 4)},
		{"run directories of logs", join(seq("run-%03d/train.log", 1, 1, 4), seq("run-%03d/hparams.yaml", 1, 1, 4))},
		{"only two", seq("resnet-%04d.params", 1, 1, 2)},
		{"kept by name", []string{"model_best_1.npz", "model_best_2.npz", "model_best_3.npz", "final_1.npz", "final_2.npz", "final_3.npz"}},
		{"dated directories with separators", seq("2024-01-%02d_12-00-00/model.safetensors", 1, 1, 4)},
		{"one number that never changes", []string{"resnet50.params", "resnet50.npz", "resnet50.bin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Read(tree(tt.lines...), Options{Layout: Auto, Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Found) > 0 || r.Layout != "" || len(r.Candidates) > 0 {
				t.Errorf("names %q: layout %q, %d found (%s), candidates %q; want nothing", tt.lines, r.Layout, len(r.Found), r.Series, r.Candidates)
			}
		})
	}
}

// Where the candidates are ambiguous, none is counted and each is listed
// with its pattern.
func TestUnrecognisedAmbiguous(t *testing.T) {
	tests := []struct {
		name       string
		lines      []string
		candidates []string
	}{
		{
			name:       "two series with different steps",
			lines:      join(seq("model_%d.npz", 1, 1, 3), seq("weights_%d.npz", 10, 10, 4)),
			candidates: []string{"model_{step}.npz", "weights_{step}.npz"},
		},
		{
			name: "a grid: either number may be the step",
			lines: []string{"run1_seed1.npz", "run1_seed2.npz", "run1_seed3.npz", "run2_seed1.npz", "run2_seed2.npz", "run2_seed3.npz",
				"run3_seed1.npz", "run3_seed2.npz", "run3_seed3.npz"},
			candidates: []string{"run{step}_seed1.npz", "run{step}_seed2.npz", "run{step}_seed3.npz", "run1_seed{step}.npz", "run2_seed{step}.npz", "run3_seed{step}.npz"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Read(tree(tt.lines...), Options{Layout: Auto, Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Sorted(slices.Values(r.Candidates))
			want := slices.Sorted(slices.Values(tt.candidates))
			if len(r.Found) != 0 || !slices.Equal(got, want) {
				t.Errorf("names %q: %d found, candidates %q; want none found, candidates %q", tt.lines, len(r.Found), got, want)
			}
			if len(r.Evidence) == 0 || !strings.Contains(r.Evidence[0], "none counted") {
				t.Errorf("evidence %q does not say none was counted", r.Evidence)
			}
		})
	}
}

// The rule applies only where no layout claims anything: a framework's
// reading is never changed by it, and it never runs under a configured
// layout or pattern.
func TestUnrecognisedOnlyWhereNothingElseReads(t *testing.T) {
	lines := join(seq("checkpoint_step_%d.keras", 100, 100, 3), seq("resnet-%04d.params", 1, 1, 6))
	r, err := Read(tree(lines...), Options{Layout: Auto, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if r.Layout != "keras" || len(r.Found) != 3 || r.Suggested != "" {
		t.Errorf("layout %q, %d found, suggested %q; want keras's 3, nothing suggested", r.Layout, len(r.Found), r.Suggested)
	}
	for _, f := range r.Found {
		if f.Uncertain != "" || f.Unrecognised {
			t.Errorf("%s: uncertain %q unrecognised %v; the keras reading must be as without the rule", f.Name, f.Uncertain, f.Unrecognised)
		}
	}
	params := seq("resnet-%04d.params", 1, 1, 6)
	if r, err := Read(tree(params...), Options{Layout: "torch", Now: time.Now()}); err != nil || len(r.Found) != 0 {
		t.Errorf("layout torch: %v, %d found; want none (the rule runs in auto only)", err, len(r.Found))
	}
	if _, err := Classify(NewListing(tree(params...)), Unrecognised, ""); err == nil {
		t.Errorf("layout %q accepted by name; it cannot be chosen", Unrecognised)
	}
	if slices.Contains(Names(), Unrecognised) {
		t.Errorf("Names() = %q offers %q", Names(), Unrecognised)
	}
}

// A directory series whose newest member is empty: that save has only just
// begun; one that lacks what every older sibling has is not complete.
func TestUnrecognisedDirectoriesInProgress(t *testing.T) {
	d := tree(join(seq("snap-%d/params.npz", 1704110400, 600, 3), seq("snap-%d/opt_state.npz", 1704110400, 600, 3), []string{"snap-1704112800/params.npz"})...)
	d.top = append(d.top, Entry{Name: "snap-1704113400", Kind: KindDir})
	d.lists["snap-1704113400"] = []Entry{}
	r, err := Read(d, Options{Layout: Auto, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range r.Found {
		got = append(got, fmt.Sprintf("%s incomplete=%v", f.Name, f.Incomplete))
	}
	want := []string{"snap-1704110400 incomplete=false", "snap-1704111000 incomplete=false", "snap-1704111600 incomplete=false",
		"snap-1704112800 incomplete=true", "snap-1704113400 incomplete=true"}
	if !slices.Equal(got, want) || r.Suggested != "snap-{step}" {
		t.Errorf("got %q, pattern %q\nwant %q, pattern snap-{step}", got, r.Suggested, want)
	}
}

// Whatever the names, the general rule never panics, counts only what it
// marks unrecognised and uncertain, and what it counts, the pattern it
// suggests reads alike.
func FuzzUnrecognised(f *testing.F) {
	for _, seed := range []string{
		"resnet-0001.params\nresnet-0002.params\nresnet-0003.params",
		"model_state_e0_b0.th\ntraining_state_e0_b0.th\nmodel_state_e0_b9.th\ntraining_state_e0_b9.th\nmodel_state_e1_b0.th\ntraining_state_e1_b0.th",
		"ckpt_20240101-120000/\nckpt_20240102-120000/\nckpt_20240103-120000/",
		"a1b2c3.npz\na2b3c4.npz\na3b4c5.npz\n2024-01-01.npz",
		"x_1_rank0.pkl\nx_1_rank1.pkl\nx_2_rank0.pkl\nx_3_rank0.pkl\nx_{1}.pkl\n*_2.pkl",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, names string) {
		var lines []string
		seen := map[string]bool{}
		for _, n := range strings.Split(names, "\n") {
			top, _, _ := strings.Cut(n, "/")
			if top == "" || seen[top] {
				continue
			}
			seen[top] = true
			if strings.HasSuffix(n, "/") {
				n += "weights.safetensors"
			}
			lines = append(lines, n)
		}
		r, err := Read(tree(lines...), Options{Layout: Auto, Now: time.Now()})
		if err != nil || r.Layout != Unrecognised {
			return
		}
		if r.Suggested == "" || len(r.Found) == 0 {
			t.Fatalf("names %q: %d found, pattern %q", lines, len(r.Found), r.Suggested)
		}
		for _, f := range r.Found {
			if !f.Unrecognised || f.Uncertain == "" {
				t.Fatalf("names %q: %s counted without being kept (unrecognised %v, uncertain %q)", lines, f.Name, f.Unrecognised, f.Uncertain)
			}
		}
		p, err := Read(tree(lines...), Options{Pattern: r.Suggested, Now: time.Now()})
		if err != nil || len(p.Found) != len(r.Found) {
			t.Fatalf("names %q: pattern %q reads %d (%v), the rule %d", lines, r.Suggested, len(p.Found), err, len(r.Found))
		}
	})
}
