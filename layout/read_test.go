package layout

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeDir is a directory held in memory: recognition needs nothing else.
type fakeDir struct {
	top     []Entry
	lists   map[string][]Entry
	files   map[string]string // small state files
	verdict map[string]Verdict
	mtime   time.Time
}

func (f *fakeDir) Entries() []Entry { return f.top }
func (f *fakeDir) ReadFile(rel string) ([]byte, time.Time, error) {
	if s, ok := f.files[rel]; ok {
		return []byte(s), f.mtime, nil
	}
	return nil, time.Time{}, errors.New("no such file")
}
func (f *fakeDir) Readlink(string) (string, error) { return "", errors.New("not a symlink") }
func (f *fakeDir) List(name string) ([]Entry, error) {
	if es, ok := f.lists[name]; ok {
		return es, nil
	}
	return nil, errors.New("not a directory")
}
func (f *fakeDir) Check(rel string) (Verdict, FileInfo, bool) {
	v, ok := f.verdict[rel]
	if !ok {
		v = Verdict{State: Whole, Format: "zip"}
	}
	return v, FileInfo{Size: 1000, ModTime: f.mtime}, true
}

func files(names ...string) []Entry {
	var es []Entry
	for _, n := range names {
		es = append(es, Entry{Name: n, Kind: KindFile})
	}
	return es
}

// Recognition reads a directory only through Dir: a Hugging Face run whose
// newest save lacks the file the Trainer writes last, one whose weights are
// cut short, and the pin from the newest complete trainer state, all from
// memory.
func TestReadThroughDir(t *testing.T) {
	old := time.Now().Add(-time.Hour)
	d := &fakeDir{
		mtime: old,
		top: []Entry{
			{Name: "checkpoint-100", Kind: KindDir}, {Name: "checkpoint-200", Kind: KindDir},
			{Name: "checkpoint-300", Kind: KindDir}, {Name: "checkpoint-400", Kind: KindDir},
			{Name: "runs", Kind: KindDir},
		},
		lists: map[string][]Entry{
			"checkpoint-100": files("model.safetensors", "trainer_state.json"),
			"checkpoint-200": files("model.safetensors", "trainer_state.json"),
			"checkpoint-300": files("model.safetensors", "trainer_state.json"),
			"checkpoint-400": files("model.safetensors"),
		},
		files: map[string]string{"checkpoint-200/trainer_state.json": `{"best_model_checkpoint": "out/checkpoint-100"}`},
		verdict: map[string]Verdict{
			"checkpoint-300/model.safetensors": {State: Torn, Format: "safetensors", Reason: "safetensors header says 2000 bytes, file has 1000"},
		},
	}
	r, err := Read(d, Options{Layout: Auto, Now: time.Now(), MinAge: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if r.Layout != "hf" || r.Framework != "transformers Trainer" || len(r.Found) != 4 {
		t.Fatalf("layout %q framework %q, %d found; want hf, transformers Trainer, 4", r.Layout, r.Framework, len(r.Found))
	}
	byName := map[string]Found{}
	for _, f := range r.Found {
		byName[f.Name] = f
	}
	if f := byName["checkpoint-400"]; !f.Incomplete || !strings.Contains(f.Why, "trainer_state.json") {
		t.Errorf("checkpoint-400: incomplete %v why %q; want incomplete for lacking trainer_state.json", f.Incomplete, f.Why)
	}
	if f := byName["checkpoint-300"]; !strings.HasPrefix(f.Torn, "model.safetensors: ") || f.Incomplete {
		t.Errorf("checkpoint-300: torn %q incomplete %v; want torn for its weights", f.Torn, f.Incomplete)
	}
	// The newest complete state is checkpoint-200's: 300 is torn, 400 unfinished.
	if f := byName["checkpoint-100"]; f.Pinned != "best_model_checkpoint" {
		t.Errorf("checkpoint-100: pinned %q; want best_model_checkpoint from checkpoint-200's trainer state", f.Pinned)
	}
	if !slices.ContainsFunc(r.Evidence, func(e string) bool { return strings.Contains(e, "checkpoint-200/trainer_state.json") }) {
		t.Errorf("evidence %q does not name the trainer state read", r.Evidence)
	}
}

// The same torn file, written to within min_age, is only in progress.
func TestTornWithinMinAgeIsInProgress(t *testing.T) {
	d := &fakeDir{
		mtime: time.Now(),
		top:   files("checkpoint_step_100.keras", "checkpoint_step_200.keras"),
		verdict: map[string]Verdict{
			"checkpoint_step_200.keras": {State: Torn, Format: "zip", Reason: "zip end record missing, file ends at 4096"},
		},
	}
	r, err := Read(d, Options{Now: time.Now(), MinAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if f := r.Found[1]; !f.Incomplete || f.Torn != "" || !strings.Contains(f.Why, "zip end record missing") {
		t.Errorf("a torn file written just now: incomplete %v torn %q why %q; want in progress, saying why", f.Incomplete, f.Torn, f.Why)
	}
}
