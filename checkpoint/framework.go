package checkpoint

import "strings"

// framework names the training framework a match most likely comes from, for
// scan: a layout covers a family, and the names, trackers and markers it saw
// tell its members apart. It is a hint for the operator, never a rule.
func framework(m *match) string {
	has := func(s string) bool { return strings.Contains(m.series, s) }
	seen := func(mk string) bool {
		for _, s := range m.seen {
			if s == mk {
				return true
			}
		}
		return false
	}
	switch m.layout {
	case "hf":
		if seen("random_states_0.pkl") && !seen("trainer_state.json") {
			return "diffusers / Accelerate"
		}
		return "transformers Trainer"
	case "lightning":
		if has("--") || seen("-unfinished") {
			return "NeMo"
		}
		return "Lightning"
	case "keras":
		return "Keras"
	case "torch":
		switch {
		case has("-ba{step}"):
			return "Composer"
		case has("_steps."):
			return "Stable-Baselines3"
		case has("meta_model_") || has("adapter_{step}"):
			return "torchtune"
		case has("checkpoint-{step}.pth.tar") || has("recovery-"):
			return "timm"
		case seen("last_checkpoint") && has("model_{step}.pth"):
			return "Detectron2"
		case seen("last_checkpoint") || has("epoch_{step}.pth") || has("iter_{step}.pth"):
			return "MMEngine"
		case has("checkpoint{step}.pt") || has("checkpoint_{n}_{step}.pt"):
			return "fairseq"
		case has("epoch{step}.pt"):
			return "Ultralytics"
		case !strings.Contains(m.series, "."):
			return "Flax"
		}
		return "PyTorch"
	case "tensorflow":
		return "TensorFlow"
	case "dcp":
		switch {
		case has("step-{step}") && seen("metadata.json"):
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
	case "orbax":
		switch {
		case seen("model_config.json"):
			return "nanotron"
		case seen("checkpoint") || seen(".tmp-"):
			return "t5x"
		case seen("random_states_0.pkl"):
			return "Accelerate"
		case len(m.found) > 0 && strings.HasPrefix(m.found[0].name, "checkpoint_") && len(strings.TrimPrefix(m.found[0].name, "checkpoint_")) == 6:
			return "Ray Train"
		}
		return "Orbax"
	case "deepspeed":
		return "DeepSpeed"
	case "megatron":
		return "Megatron-LM"
	case "verl":
		return "verl"
	}
	return ""
}
