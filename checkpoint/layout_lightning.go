package checkpoint

import "strings"

// lightningLayout: names Lightning's ModelCheckpoint formats, as .ckpt files
// or directories. Written from Lightning-AI/pytorch-lightning
// src/lightning/pytorch/callbacks/model_checkpoint.py (_format_checkpoint_name:
// "{epoch}-{step}" becomes epoch=3-step=1200, metrics become val_loss=0.41,
// collisions get -v1; last.ckpt / last-v1.ckpt, a relative symlink with
// save_last="link"; DeepSpeed and sharded strategies save a *.ckpt/
// directory), and NeMo's callbacks (nemo/utils/callbacks/nemo_model_checkpoint.py,
// nemo/lightning/pytorch/callbacks/model_checkpoint.py: the same names, a
// directory for distributed checkpoints, "-last" copies or links and a
// "<name>-unfinished" marker file while a save runs).
type lightningLayout struct{}

func (lightningLayout) name() string { return "lightning" }

func (lightningLayout) match(d *listing) match {
	var b seriesBuilder
	for _, e := range d.entries {
		var p parsedName
		var ok bool
		switch {
		case strings.HasSuffix(e.name, ".ckpt"):
			p, ok = parseName(e.name, []string{".ckpt"})
		case e.kind == kindDir && (strings.Contains(e.name, "step=") || strings.Contains(e.name, "epoch=")):
			p, ok = parseName(e.name, []string{"*"}) // NeMo distributed checkpoint directory
		}
		if ok {
			b.add(e.name, p, found{dir: e.kind == kindDir})
		}
	}
	m := b.largest("lightning")
	m.needContent = true
	// A sharded strategy's *.ckpt/ directory gets meta.pt from rank 0 after
	// the distributed checkpoint (lightning/fabric/strategies/fsdp.py).
	m.markers = []string{"meta.pt"}
	return m
}
