package checkpoint

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

var torchExts = []string{".pth.tar", ".pt", ".pth", ".bin", ".safetensors", ".msgpack", ".zip", ".pkl", ".tar", ""}

// checkpointWords: a .bin, .safetensors or .msgpack file is a checkpoint only
// with one of these in its name (a data shard is not).
var checkpointWords = []string{"ckpt", "checkpoint", "model", "step", "epoch", "iter", "weights", "state", "adapter", "ema"}

func (torchLayout) name() string { return "torch" }

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

func (torchLayout) match(d *listing) match {
	b := seriesBuilder{companions: true} // torchtune weights + adapter, SB3 model + buffers
	for _, e := range d.entries {
		name, incomplete := e.name, false
		if strings.HasSuffix(name, ".tmp") {
			name, incomplete = strings.TrimSuffix(name, ".tmp"), true // fairseq
		}
		dir := e.kind == kindDir
		if dir && !strings.HasSuffix(name, ".pth") && !strings.HasSuffix(name, ".pt") {
			continue // only mmengine's DeepSpeed/FSDP epoch_N.pth/ directories
		}
		p, ok := parseName(name, torchExts)
		if !ok || !torchAccepts(name, p, dir) {
			continue
		}
		b.add(e.name, p, found{incomplete: incomplete, dir: dir})
	}
	m := b.largest("torch")
	for i := range m.found {
		if gda := m.found[i].name + "_gda"; len(m.found[i].entries) == 1 && d.has(gda) {
			m.found[i].entries = append(m.found[i].entries, gda)
		}
	}
	// Detectron2 and mmengine write last_checkpoint after each save: it names
	// the newest finished checkpoint (a basename, or mmengine's full path).
	if data, _, err := d.readSmall("last_checkpoint"); err == nil {
		name := path.Base(string(bytes.TrimSpace(data)))
		m.seen = append(m.seen, "last_checkpoint")
		for _, f := range m.found {
			if f.name == name {
				trackerCut(&m, f.step, name, "last_checkpoint")
				break
			}
		}
		if !strings.Contains(m.series, "{step}") || len(m.found) == 0 {
			m.note("last_checkpoint names %s", name)
		}
	}
	return m
}
