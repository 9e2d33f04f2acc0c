package checkpoint

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

var (
	orbaxRe    = regexp.MustCompile(`^(?:(.*)_)?([0-9]+)$`)
	orbaxTmpRe = regexp.MustCompile(`^(?:(.*)_)?([0-9]+)(\.orbax-checkpoint-tmp(-.+)?|\.tmp-[0-9]+)$`)
)

func (orbaxLayout) name() string { return "orbax" }

func (orbaxLayout) match(d *listing) match {
	var b seriesBuilder
	tmpT5X := false
	for _, e := range d.entries {
		if e.kind != kindDir || !maybeOrbax(e.name) || isTimestamp(e.name) {
			continue
		}
		re, incomplete := orbaxRe, false
		if orbaxTmpRe.MatchString(e.name) {
			re, incomplete = orbaxTmpRe, true
			if strings.Contains(e.name, ".tmp-") {
				tmpT5X = true
			}
		}
		sm := re.FindStringSubmatch(e.name)
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
		b.add(e.name, parsedName{key: key, step: step, certain: true}, found{incomplete: incomplete, dir: !incomplete})
	}
	m := b.largest("orbax")
	m.needContent = true
	m.markers = []string{"commit_success.txt", "checkpoint", "random_states_0.pkl", ".metadata", "model_config.json"}
	if tmpT5X {
		m.seen = append(m.seen, ".tmp-")
	}
	return m
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
