package checkpoint

// kerasLayout: the largest series of Keras files. Written from keras-team/keras
// keras/src/callbacks/model_checkpoint.py (ModelCheckpoint formats the user's
// filepath with str.format(epoch=epoch+1, **logs), so metrics such as
// {val_loss:.2f} are part of the name) and keras/src/saving/saving_lib.py
// (.keras zip written in place, no temporary name, no state file). Legacy
// tf.keras also wrote .h5 / .hdf5 files.
type kerasLayout struct{}

var kerasExts = []string{".keras", ".weights.h5", ".h5", ".hdf5"}

func (kerasLayout) name() string { return "keras" }

func (kerasLayout) match(d *listing) match {
	var b seriesBuilder
	for _, e := range d.entries {
		if e.kind == kindDir {
			continue
		}
		if p, ok := parseName(e.name, kerasExts); ok {
			b.add(e.name, p, found{})
		}
	}
	return b.largest("keras")
}
