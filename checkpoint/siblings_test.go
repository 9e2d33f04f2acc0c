package checkpoint

import (
	"reflect"
	"strings"
	"testing"
)

// The general sibling rule and the generic trackers (issue #21 item 2), on
// step directories no marker rule covers (run_{step}/, read by orbaxLayout).
func TestSiblingsAndTrackers(t *testing.T) {
	whole := func(step string) map[string]int {
		return map[string]int{"run_" + step + "/weights.npz": 10, "run_" + step + "/optim.npz": 10, "run_" + step + "/done.json": 2}
	}
	merge := func(ms ...map[string]int) map[string]int {
		out := map[string]int{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	only := func(step string, names ...string) map[string]int {
		out := map[string]int{}
		for _, n := range names {
			out["run_"+step+"/"+n] = 10
		}
		return out
	}
	tests := []struct {
		name       string
		files      map[string]int
		state      map[string]string
		complete   []int64
		incomplete []int64
		why        string
	}{
		{"newest cut short", merge(whole("100"), whole("200"), whole("300"), only("400", "weights.npz")),
			nil, []int64{100, 200, 300}, []int64{400}, "lacks done.json, optim.npz that run_300 has"},
		{"cut short, then the run went on", merge(whole("100"), whole("200"), only("300", "weights.npz"), whole("400"), whole("500")),
			nil, []int64{100, 200, 400, 500}, []int64{300}, "lacks done.json, optim.npz that run_200 has"},
		// A resumed run that saves only weights: every newer save lacks the
		// optimizer, which is a change in what it saves, not a torn save.
		{"the run changed what it saves", merge(whole("100"), whole("200"), only("300", "weights.npz", "done.json"), only("400", "weights.npz", "done.json")),
			nil, []int64{100, 200, 300, 400}, nil, ""},
		// ...until the next save says which it was, the newest lacking one
		// is not counted.
		{"the change shows in the newest only", merge(whole("100"), whole("200"), only("300", "weights.npz", "done.json")),
			nil, []int64{100, 200}, []int64{300}, "lacks optim.npz that run_200 has"},
		{"older saves lacking a newer file are not judged", merge(only("100", "weights.npz"), only("200", "weights.npz"), whole("300"), whole("400")),
			nil, []int64{100, 200, 300, 400}, nil, ""},
		{"one directory alone is not judged", only("100", "weights.npz"), nil, []int64{100}, nil, ""},
		{"one older sibling is not enough", merge(whole("100"), only("200", "weights.npz")), nil, []int64{100, 200}, nil, ""},
		// A tracker that names a step: newer saves are in progress.
		{"latest.txt", merge(whole("100"), whole("200"), whole("300")), map[string]string{"latest.txt": "200\n"},
			[]int64{100, 200}, []int64{300}, "newer than run_200, which the tracker latest.txt names as the latest finished save"},
		{"tracker caught empty says nothing", merge(whole("100"), whole("200"), whole("300")), map[string]string{"latest.txt": ""},
			[]int64{100, 200, 300}, nil, ""},
		{"tracker naming no checkpoint says nothing", merge(whole("100"), whole("200")), map[string]string{"latest": "release"},
			[]int64{100, 200}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tree(t, tt.files)
			for name, content := range tt.state {
				writeFile(t, dir+"/"+name, content)
			}
			snap := scan(t, Target{Name: "t", Path: dir}, ScanOptions{})
			got := summarize(snap)
			if !reflect.DeepEqual(got.steps, tt.complete) || !reflect.DeepEqual(got.incomplete, tt.incomplete) {
				t.Fatalf("complete %v incomplete %v, want %v %v (evidence %q)", got.steps, got.incomplete, tt.complete, tt.incomplete, snap.Evidence)
			}
			for _, c := range snap.Checkpoints {
				if c.Incomplete && !strings.Contains(c.Why, tt.why) {
					t.Errorf("%s: why %q, want %q", c.Name, c.Why, tt.why)
				}
			}
		})
	}
}
