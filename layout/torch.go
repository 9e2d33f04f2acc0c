package layout

import (
	"bytes"
	"path"
	"strings"
)

// torchLayout: single-file PyTorch checkpoints (torch.save and friends), the
// largest series of them. Written from:
//   - pytorch/examples imagenet/main.py (checkpoint.pth.tar, model_best.pth.tar)
//   - facebookresearch/fvcore fvcore/common/checkpoint.py (Detectron2:
//     model_{iter:07d}.pth, model_final.pth, last_checkpoint names the newest)
//   - facebookresearch/fairseq fairseq/checkpoint_utils.py (checkpoint{epoch}.pt,
//     checkpoint_{epoch}_{updates}.pt, checkpoint_best.pt, checkpoint_last.pt,
//     checkpoint.best_loss_3.85.pt, written as <name>.tmp and renamed)
//   - open-mmlab/mmengine mmengine/hooks/checkpoint_hook.py (epoch_{n}.pth,
//     iter_{n}.pth, best_<metric>_epoch_{n}.pth, last_checkpoint with a full
//     path; mmcv's latest.pth symlink; a directory for DeepSpeed/FSDP)
//   - huggingface/pytorch-image-models timm/utils/checkpoint_saver.py
//     (checkpoint-{epoch}.pth.tar hard links, last.pth.tar, model_best.pth.tar,
//     tmp.pth.tar, recovery-{epoch}-{batch}.pth.tar)
//   - ultralytics ultralytics/engine/trainer.py (weights/epoch{n}.pt, last.pt, best.pt)
//   - mosaicml/composer composer/callbacks/checkpoint_saver.py
//     (ep{epoch}-ba{batch}-rank{r}.pt, .tar for DeepSpeed, latest-rank{r}.pt symlink)
//   - pytorch/torchtune torchtune/training/checkpointing/_checkpointer.py, old
//     releases (meta_model_{epoch}.pt with adapter_{epoch}.pt)
//   - DLR-RM/stable-baselines3 stable_baselines3/common/callbacks.py
//     (CheckpointCallback: {prefix}_{steps}_steps.zip with
//     {prefix}_replay_buffer_/_vecnormalize_{steps}_steps.pkl; best_model.zip)
//   - google/flax flax/training/checkpoints.py (checkpoint_{step} without an
//     extension, written as checkpoint_tmp; checkpoint_{step}_gda/ arrays)
//
// Names with best, last, latest, final in them are never part of the series:
// frameworks keep them by name.
type torchLayout struct{}

func init() { register(torchLayout{}, 90) }

var torchExts = []string{".pth.tar", ".pt", ".pth", ".bin", ".safetensors", ".msgpack", ".zip", ".pkl", ".tar", ""}

// checkpointWords: a .bin, .safetensors or .msgpack file is a checkpoint only
// with one of these in its name (a data shard is not).
var checkpointWords = []string{"ckpt", "checkpoint", "model", "step", "epoch", "iter", "weights", "state", "adapter", "ema"}

func (torchLayout) Name() string { return "torch" }

func torchAccepts(name string, p parsedName, dir bool) bool {
	lower := strings.ToLower(name)
	switch {
	case strings.HasSuffix(lower, ".pt") || strings.HasSuffix(lower, ".pth") || strings.HasSuffix(lower, ".pth.tar"):
		return true
	case dir:
		return false // only mmengine's DeepSpeed/FSDP epoch_N.pth/ directories
	case strings.HasSuffix(lower, ".zip") || strings.HasSuffix(lower, ".pkl"):
		return strings.HasSuffix(lower, "_steps.zip") || strings.HasSuffix(lower, "_steps.pkl") // Stable-Baselines3
	case strings.HasSuffix(lower, ".tar"):
		return strings.HasPrefix(lower, "ep") && strings.Contains(lower, "-ba") // Composer with DeepSpeed
	case !strings.Contains(name, "."):
		return strings.Contains(lower, "checkpoint") || strings.Contains(lower, "ckpt") // Flax
	}
	for _, w := range checkpointWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

func (torchLayout) Match(l *Listing) *Reading {
	b := seriesBuilder{companions: true} // torchtune weights + adapter, SB3 model + buffers
	for _, e := range l.Entries() {
		name, incomplete := e.Name, false
		if strings.HasSuffix(name, ".tmp") {
			name, incomplete = strings.TrimSuffix(name, ".tmp"), true // fairseq
		}
		dir := e.Kind == KindDir
		if dir && !strings.HasSuffix(name, ".pth") && !strings.HasSuffix(name, ".pt") {
			continue // only mmengine's DeepSpeed/FSDP epoch_N.pth/ directories
		}
		p, ok := parseName(name, torchExts)
		if !ok || !torchAccepts(name, p, dir) {
			continue
		}
		f := Found{Incomplete: incomplete, dir: dir}
		if incomplete {
			f.Why = "written under a temporary name (" + e.Name + ")"
		}
		b.add(e.Name, p, f)
	}
	r := b.largest("torch")
	r.framework = torchFramework
	for i := range r.Found {
		if gda := r.Found[i].Name + "_gda"; len(r.Found[i].Entries) == 1 && l.Has(gda) {
			r.Found[i].Entries = append(r.Found[i].Entries, gda)
		}
	}
	// Detectron2 and mmengine write last_checkpoint after each save: it names
	// the newest finished checkpoint (a basename, or mmengine's full path).
	if data, _, err := l.ReadFile("last_checkpoint"); err == nil {
		name := path.Base(string(bytes.TrimSpace(data)))
		r.seen = append(r.seen, "last_checkpoint")
		for _, f := range r.Found {
			if f.Name == name {
				trackerCut(r, f.Step, name, "last_checkpoint")
				break
			}
		}
		if !strings.Contains(r.Series, "{step}") || len(r.Found) == 0 {
			r.note("last_checkpoint names %s", name)
		}
	}
	return r
}

// torchFramework tells the PyTorch trainers apart by their names and trackers.
func torchFramework(r *Reading) string {
	has := func(s string) bool { return strings.Contains(r.Series, s) }
	switch {
	case has("-ba{step}"):
		return "Composer"
	case has("_steps."):
		return "Stable-Baselines3"
	case has("meta_model_") || has("adapter_{step}"):
		return "torchtune"
	case has("checkpoint-{step}.pth.tar") || has("recovery-"):
		return "timm"
	case r.saw("last_checkpoint") && has("model_{step}.pth"):
		return "Detectron2"
	case r.saw("last_checkpoint") || has("epoch_{step}.pth") || has("iter_{step}.pth"):
		return "MMEngine"
	case has("checkpoint{step}.pt") || has("checkpoint_{n}_{step}.pt"):
		return "fairseq"
	case has("epoch{step}.pt"):
		return "Ultralytics"
	case !strings.Contains(r.Series, "."):
		return "Flax"
	}
	return "PyTorch"
}
