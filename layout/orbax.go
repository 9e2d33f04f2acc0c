package layout

import (
	"regexp"
	"strconv"
	"strings"
)

// orbaxLayout: JAX step directories, {step}/ or {prefix}_{step}/. Written from
// google/orbax checkpoint/orbax/checkpoint/_src/path/step.py (build_name:
// optional prefix and underscore, optional zero padding),
// _src/path/atomicity.py (a save goes to <name>.orbax-checkpoint-tmp, with a
// -<timestamp> or -<counter> suffix before 2025, then is renamed;
// commit_success.txt marks a commit where rename is not atomic) and
// google-research/t5x t5x/checkpoints.py (checkpoint_{step}/, staged as
// checkpoint_{step}.tmp-<unix time>, the msgpack "checkpoint" file written
// last, a PINNED file means never delete). Flax's orbax-backed
// flax/training/checkpoints.py names them checkpoint_{step}/ too, as do
// huggingface/accelerate src/accelerate/accelerator.py (save_state with
// automatic naming: checkpoint_{n}/, random_states_0.pkl written last) and
// ray-project/ray python/ray/train/_internal/storage.py (checkpoint_{n:06d}/,
// copied in place: an empty one has just begun) and huggingface/nanotron
// src/nanotron/trainer.py @2411b022 (DistributedTrainer.save_checkpoint:
// <step>/ with config.yaml first, model/, optimizer/, lr_scheduler/,
// checkpoint_metadata.json, random/, then ../latest.txt with the step, and
// model_config.json last, always).
type orbaxLayout struct{}

func init() { register(orbaxLayout{}, 70) }

var (
	orbaxRe    = regexp.MustCompile(`^(?:(.*)_)?([0-9]+)$`)
	orbaxTmpRe = regexp.MustCompile(`^(?:(.*)_)?([0-9]+)(\.orbax-checkpoint-tmp(-.+)?|\.tmp-[0-9]+)$`)
)

func (orbaxLayout) Name() string { return "orbax" }

func (orbaxLayout) Match(l *Listing) *Reading {
	var b seriesBuilder
	tmpT5X := false
	for _, e := range l.Entries() {
		if e.Kind != KindDir || !maybeOrbax(e.Name) || isTimestamp(e.Name) {
			continue
		}
		re, incomplete := orbaxRe, false
		if orbaxTmpRe.MatchString(e.Name) {
			re, incomplete = orbaxTmpRe, true
			if strings.Contains(e.Name, ".tmp-") {
				tmpT5X = true
			}
		}
		sm := re.FindStringSubmatch(e.Name)
		if sm == nil || sm[1] != "" && strings.Trim(sm[1], "0123456789_-") == "" {
			continue // a date or another number, not a prefix
		}
		step, err := strconv.ParseInt(sm[2], 10, 64)
		if err != nil {
			continue
		}
		key := "{step}"
		if sm[1] != "" {
			key = sm[1] + "_{step}"
		}
		f := Found{Incomplete: incomplete, dir: !incomplete}
		if incomplete {
			f.Why = "a staging directory: being written"
		}
		b.add(e.Name, parsedName{key: key, step: step, certain: true}, f)
	}
	r := b.largest("orbax")
	r.needContent = true
	r.markers = []string{"commit_success.txt", "checkpoint", "random_states_0.pkl", ".metadata", "model_config.json"}
	if tmpT5X {
		r.seen = append(r.seen, ".tmp-")
	}
	r.after = pinT5X
	r.framework = orbaxFramework
	return r
}

// pinT5X pins a checkpoint directory holding t5x's PINNED file: never
// deleted (t5x/checkpoints.py, _remove_old_checkpoints skips it).
func pinT5X(l *Listing, r *Reading) {
	for i := range r.Found {
		if !r.Found[i].dir {
			continue
		}
		if names, err := l.dir.List(r.Found[i].Name); err == nil && hasEntry(names, "PINNED") {
			r.Found[i].Pinned = "PINNED file"
		}
	}
}

func orbaxFramework(r *Reading) string {
	switch {
	case r.saw("model_config.json"):
		return "nanotron"
	case r.saw("checkpoint") || r.saw(".tmp-"):
		return "t5x"
	case r.saw("random_states_0.pkl"):
		return "Accelerate"
	case len(r.Found) > 0 && strings.HasPrefix(r.Found[0].Name, "checkpoint_") && len(strings.TrimPrefix(r.Found[0].Name, "checkpoint_")) == 6:
		return "Ray Train"
	}
	return "Orbax"
}

// maybeOrbax is a cheap test before the regexps: the name ends in a digit run
// that starts the name or follows "_", or it is a temporary directory.
func maybeOrbax(name string) bool {
	if strings.Contains(name, ".orbax-checkpoint-tmp") || strings.Contains(name, ".tmp-") {
		return true
	}
	i := len(name)
	for i > 0 && isDigit(name[i-1]) {
		i--
	}
	return i < len(name) && (i == 0 || name[i-1] == '_')
}
