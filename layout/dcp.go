package layout

import (
	"regexp"
	"strconv"
	"strings"
)

// dcpLayout: step directories of the trainers that save with
// torch.distributed.checkpoint or accelerate, named by step or epoch.
// Written from:
//   - pytorch/pytorch torch/distributed/checkpoint/filesystem.py (.metadata
//     renamed into place after every __R_N.distcp shard: a directory without
//     it is still being written)
//   - pytorch/torchtitan torchtitan/components/checkpoint.py (step-{step}/)
//   - allenai/OLMo olmo/checkpoint.py, olmo/train.py (step{step}/,
//     step{step}-unsharded/, staged as step{step}-tmp/, config.yaml written
//     last, latest and latest-unsharded symlinks)
//   - pytorch/torchtune torchtune/training/checkpointing/_checkpointer.py
//     (epoch_{epoch}/, dist_epoch_{epoch}/; FullModelHFCheckpointer writes
//     model-0000N-of-0000M.safetensors, then model.safetensors.index.json)
//   - huggingface/accelerate src/accelerate/checkpointing.py (the no_trainer
//     examples' step_{n}/ and epoch_{n}/; random_states_0.pkl written last)
//   - mosaicml/composer sharded checkpoints (ep{epoch}-ba{batch}/)
//   - stanford-crfm/levanter src/levanter/checkpoint.py @9263f81e (step-{step}/
//     of tensorstore arrays; _save_metadata writes metadata.json last, by
//     process 0 after every process's writes committed, always)
//   - allenai/OLMo-core (step{step}/, .metadata.json written last since v1.0.2)
//
// A directory counts only if it holds weights, optimizer state or checkpoint
// metadata; an empty one is a save that has only just begun.
type dcpLayout struct{}

func init() { register(dcpLayout{}, 60) }

var dcpRe = regexp.MustCompile(`^(step-|step_|step|epoch_|dist_epoch_|ep[0-9]+-ba)([0-9]+)(-unsharded)?(-tmp)?$`)

func (dcpLayout) Name() string { return "dcp" }

func (dcpLayout) Match(l *Listing) *Reading {
	b := seriesBuilder{companions: true} // OLMo step{N} + step{N}-unsharded
	for _, e := range l.Entries() {
		if e.Kind != KindDir {
			continue
		}
		if !strings.HasPrefix(e.Name, "step") && !strings.HasPrefix(e.Name, "epoch_") && !strings.HasPrefix(e.Name, "dist_epoch_") && !strings.HasPrefix(e.Name, "ep") {
			continue
		}
		sm := dcpRe.FindStringSubmatch(e.Name)
		if sm == nil {
			continue
		}
		step, err := strconv.ParseInt(sm[2], 10, 64)
		if err != nil {
			continue
		}
		prefix := sm[1]
		if strings.HasPrefix(prefix, "ep") && strings.HasSuffix(prefix, "-ba") {
			prefix = "ep{n}-ba"
		}
		tmp := sm[4] != ""
		f := Found{dir: !tmp, Incomplete: tmp}
		if tmp {
			f.Why = "a staging directory: being written"
		}
		b.add(e.Name, parsedName{key: prefix + "{step}", step: step, certain: true}, f)
	}
	r := b.largest("dcp")
	r.needContent = true
	r.markers = []string{".metadata", "config.yaml", "random_states_0.pkl", "model.safetensors.index.json", "metadata.json", ".metadata.json"}
	r.framework = dcpFramework
	// Accelerate's automatic checkpoint_{n}/ and Ray's checkpoint_{n:06d}/
	// are read by orbaxLayout, which takes any {prefix}_{step}/.
	return r
}

// dcpFramework tells the trainers that save with
// torch.distributed.checkpoint apart by their names and markers.
func dcpFramework(r *Reading) string {
	has := func(s string) bool { return strings.Contains(r.Series, s) }
	switch {
	case has("step-{step}") && r.saw("metadata.json"):
		return "Levanter"
	case has("step-{step}"):
		return "torchtitan"
	case has("step{step}"):
		return "OLMo"
	case has("epoch_") || has("dist_epoch_"):
		return "torchtune"
	case has("step_{step}"):
		return "Accelerate"
	case has("-ba{step}"):
		return "Composer"
	}
	return "torch.distributed.checkpoint"
}
