package layout

import "strings"

// lightningLayout: names Lightning's ModelCheckpoint formats, as .ckpt files
// or directories. Written from Lightning-AI/pytorch-lightning
// src/lightning/pytorch/callbacks/model_checkpoint.py (_format_checkpoint_name:
// "{epoch}-{step}" becomes epoch=3-step=1200, metrics become val_loss=0.41,
// collisions get -v1; last.ckpt / last-v1.ckpt, a relative symlink with
// save_last="link"; DeepSpeed and sharded strategies save a *.ckpt/
// directory, lightning/fabric/strategies/fsdp.py writing meta.pt from rank 0
// after the distributed checkpoint), and NeMo's callbacks
// (nemo/utils/callbacks/nemo_model_checkpoint.py,
// nemo/lightning/pytorch/callbacks/model_checkpoint.py: the same names, a
// directory for distributed checkpoints, "-last" copies or links and a
// "<name>-unfinished" marker file while a save runs).
type lightningLayout struct{}

func init() { register(lightningLayout{}, 80) }

func (lightningLayout) Name() string { return "lightning" }

func (lightningLayout) Match(l *Listing) *Reading {
	var b seriesBuilder
	for _, e := range l.Entries() {
		var p parsedName
		var ok bool
		switch {
		case strings.HasSuffix(e.Name, ".ckpt"):
			p, ok = parseName(e.Name, []string{".ckpt"})
		case e.Kind == KindDir && (strings.Contains(e.Name, "step=") || strings.Contains(e.Name, "epoch=")):
			p, ok = parseName(e.Name, []string{"*"}) // NeMo distributed checkpoint directory
		}
		if ok {
			b.add(e.Name, p, Found{dir: e.Kind == KindDir})
		}
	}
	r := b.largest("lightning")
	r.needContent = true
	r.markers = []string{"meta.pt"}
	r.framework = func(r *Reading) string {
		if strings.Contains(r.Series, "--") || r.saw("-unfinished") {
			return "NeMo"
		}
		return "Lightning"
	}
	return r
}
