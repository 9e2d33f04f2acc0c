package checkpoint

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

var (
	hfRe    = regexp.MustCompile(`^checkpoint-([0-9]+)$`)
	hfTmpRe = regexp.MustCompile(`^tmp-checkpoint-([0-9]+)$`)
)

func (hfLayout) name() string { return "hf" }

func (hfLayout) match(d *listing) match {
	m := match{layout: "hf", series: "checkpoint-{step}", markers: []string{"trainer_state.json", "random_states_0.pkl"}}
	for _, e := range d.entries {
		if e.kind != kindDir {
			continue
		}
		if s, ok := submatchStep(hfRe, e.name); ok {
			m.found = append(m.found, found{name: e.name, step: s, entries: []string{e.name}, dir: true})
		} else if s, ok := submatchStep(hfTmpRe, e.name); ok {
			m.found = append(m.found, found{name: e.name, step: s, entries: []string{e.name}, incomplete: true})
			m.note("%s is a staging directory: being written", e.name)
		}
	}
	m.after = hfBest
	return m
}

// hfBest pins best_model_checkpoint as the newest *complete* trainer state
// names it: the one in the newest checkpoint that has its trainer_state.json
// (a save in progress has none yet), or the output directory's own copy if
// that is newer.
func hfBest(d *listing, m *match, fs []found) {
	var newest *found
	for i := range fs {
		if !fs[i].incomplete && !fs[i].drop && (newest == nil || fs[i].step > newest.step) {
			newest = &fs[i]
		}
	}
	var states []string
	if newest != nil {
		states = append(states, newest.name+"/trainer_state.json")
	}
	if d.has("trainer_state.json") {
		states = append(states, "trainer_state.json")
	}
	var bestMtime int64 = -1
	var best, from string
	for _, st := range states {
		data, mtime, err := d.readSmall(st)
		if err != nil || mtime <= bestMtime {
			continue
		}
		var state struct {
			Best *string `json:"best_model_checkpoint"`
		}
		if json.Unmarshal(data, &state) == nil {
			bestMtime, best, from = mtime, "", st
			if state.Best != nil {
				best = path.Base(*state.Best)
			}
		}
	}
	if from != "" {
		m.note("%s: best_model_checkpoint %q", from, best)
	}
	if best != "" {
		pin(fs, best, "best_model_checkpoint")
	}
}
