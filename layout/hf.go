package layout

import (
	"encoding/json"
	"path"
	"regexp"
)

// hfLayout: checkpoint-N/ directories as Hugging Face writes them. Written
// from huggingface/transformers src/transformers/trainer.py (_save_checkpoint:
// model, tokenizer, training_args.bin, optimizer, scheduler, rng state, then
// trainer_state.json last; best_model_checkpoint in it; v4.36-4.37 staged in
// tmp-checkpoint-N/) and from diffusers' examples/*/train_*.py with
// huggingface/accelerate src/accelerate/checkpointing.py @8eddaa6d
// (save_accelerator_state writes random_states_<process>.pkl last, after
// model, optimizer, scheduler, sampler and scaler; no trainer_state.json).
type hfLayout struct{}

func init() { register(hfLayout{}, 40) }

var (
	hfRe    = regexp.MustCompile(`^checkpoint-([0-9]+)$`)
	hfTmpRe = regexp.MustCompile(`^tmp-checkpoint-([0-9]+)$`)
)

func (hfLayout) Name() string { return "hf" }

func (hfLayout) Match(l *Listing) *Reading {
	r := &Reading{Layout: "hf", Series: "checkpoint-{step}", markers: []string{"trainer_state.json", "random_states_0.pkl"},
		after: hfBest, framework: hfFramework}
	for _, e := range l.Entries() {
		if e.Kind != KindDir {
			continue
		}
		if s, ok := submatchStep(hfRe, e.Name); ok {
			r.Found = append(r.Found, Found{Name: e.Name, Step: s, Entries: []string{e.Name}, dir: true})
		} else if s, ok := submatchStep(hfTmpRe, e.Name); ok {
			r.Found = append(r.Found, Found{Name: e.Name, Step: s, Entries: []string{e.Name}, Incomplete: true, Why: "a staging directory: being written"})
			r.note("%s is a staging directory: being written", e.Name)
		}
	}
	return r
}

func hfFramework(r *Reading) string {
	if r.saw("random_states_0.pkl") && !r.saw("trainer_state.json") {
		return "diffusers / Accelerate"
	}
	return "transformers Trainer"
}

// hfBest pins best_model_checkpoint as the newest *complete* trainer state
// names it: the one in the newest complete checkpoint (a save in progress
// has none yet, a torn one cannot be trusted), or the output directory's own
// copy if that is newer.
func hfBest(l *Listing, r *Reading) {
	var newest *Found
	for i := range r.Found {
		if f := &r.Found[i]; f.whole() && (newest == nil || f.Step > newest.Step) {
			newest = f
		}
	}
	var states []string
	if newest != nil {
		states = append(states, newest.Name+"/trainer_state.json")
	}
	if l.Has("trainer_state.json") {
		states = append(states, "trainer_state.json")
	}
	var bestMtime int64 = -1
	var best, from string
	for _, st := range states {
		data, mtime, err := l.ReadFile(st)
		if err != nil || mtime.UnixNano() <= bestMtime {
			continue
		}
		var state struct {
			Best *string `json:"best_model_checkpoint"`
		}
		if json.Unmarshal(data, &state) == nil {
			bestMtime, best, from = mtime.UnixNano(), "", st
			if state.Best != nil {
				best = path.Base(*state.Best)
			}
		}
	}
	if from != "" {
		r.note("%s: best_model_checkpoint %q", from, best)
	}
	if best != "" {
		pin(r.Found, best, "best_model_checkpoint")
	}
}
