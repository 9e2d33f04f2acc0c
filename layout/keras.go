package layout

// kerasLayout: the largest series of Keras files. Written from keras-team/keras
// keras/src/callbacks/model_checkpoint.py (ModelCheckpoint formats the user's
// filepath with str.format(epoch=epoch+1, **logs), so metrics such as
// {val_loss:.2f} are part of the name) and keras/src/saving/saving_lib.py
// (.keras zip written in place, no temporary name, no state file). Legacy
// tf.keras also wrote .h5 / .hdf5 files.
type kerasLayout struct{}

func init() { register(kerasLayout{}, 100) }

var kerasExts = []string{".keras", ".weights.h5", ".h5", ".hdf5"}

func (kerasLayout) Name() string { return "keras" }

func (kerasLayout) Match(l *Listing) *Reading {
	var b seriesBuilder
	for _, e := range l.Entries() {
		if e.Kind == KindDir {
			continue
		}
		if p, ok := parseName(e.Name, kerasExts); ok {
			b.add(e.Name, p, Found{})
		}
	}
	r := b.largest("keras")
	r.framework = func(*Reading) string { return "Keras" }
	return r
}
