package layout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestChecked(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"model.keras", true},
		{"model.pt", true},
		{"model.pth", true},
		{"checkpoint.pth.tar", true},
		{"archive.tar", true},
		{"pytorch_model.bin", true},
		{"epoch=3-step=1200.ckpt", true},
		{"bundle.zip", true},
		{"arrays.npz", true},
		{"model-00001-of-00002.safetensors", true},
		{"model.h5", true},
		{"model.hdf5", true},
		{"model.weights.h5", true},
		{"model.ckpt-1000.index", true},
		{"MODEL.PT", true},
		{"dir/sub/model.Safetensors", true},
		{"model.safetensors.index.json", false},
		{"model.ckpt-1000.data-00000-of-00001", false},
		{"checkpoint", false},
		{"model.ckpt-1000.index.tempstate123", false},
		{"train.log", false},
		{"model.pt.tmp", false},
		{"pt", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := Checked(tt.name); got != tt.want {
			t.Errorf("Checked(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEmptyFileIsTorn(t *testing.T) {
	for _, ext := range checkedExts {
		name := "model" + ext
		t.Run(name, func(t *testing.T) {
			wantVerdict(t, name, judge(t, name, nil), Verdict{State: Torn, Reason: "empty file"})
		})
	}
}

// failingReader fails every read, and counts them.
type failingReader struct {
	err   error
	reads int
}

func (r *failingReader) ReadAt(p []byte, off int64) (int, error) {
	r.reads++
	return 0, r.err
}

func TestUncheckedNamesAreNotRead(t *testing.T) {
	for _, name := range []string{"train.log", "checkpoint", "model.ckpt-1.data-00000-of-00001"} {
		r := &failingReader{err: errors.New("must not be read")}
		v, err := CheckFile(name, 1<<20, r)
		if err != nil || v != (Verdict{}) || r.reads != 0 {
			t.Errorf("CheckFile(%q) = %v, %v after %d reads; want unknown, no error, no read", name, v, err, r.reads)
		}
	}
}

func TestReadErrors(t *testing.T) {
	errDisk := errors.New("input/output error")
	zipData := checkpointZip(t, "")
	tests := []struct {
		name string
		file string
		size int64
		r    io.ReaderAt
		want error
	}{
		{"read fails", "model.pt", 1 << 20, &failingReader{err: errDisk}, errDisk},
		{"read fails in the tail", "model.safetensors", 1 << 20, &failingReader{err: errDisk}, errDisk},
		// The size came from a stat before the file was truncated.
		{"file shrank since its size was taken", "model.pt", int64(len(zipData)) + 1000, bytes.NewReader(zipData), io.ErrUnexpectedEOF},
		{"file shrank to nothing", "model.h5", 100, bytes.NewReader(nil), io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := CheckFile(tt.file, tt.size, tt.r)
			if !errors.Is(err, tt.want) {
				t.Errorf("CheckFile(%q, %d) = %v, %v; want an error wrapping %v", tt.file, tt.size, v, err, tt.want)
			}
			if err != nil && v != (Verdict{}) {
				t.Errorf("CheckFile(%q) returned verdict %v with its error", tt.file, v)
			}
		})
	}
	if _, err := CheckFile("model.pt", -1, bytes.NewReader(nil)); err == nil {
		t.Errorf("CheckFile with a negative size: no error")
	}
}

// Formats are told by their magic, not their name: a .ckpt may be a zip,
// HDF5, a legacy torch pickle or something else entirely.
func TestMagicDecides(t *testing.T) {
	zipData := checkpointZip(t, "")
	h5 := hdf5Spec{version: 0, offSize: 8, base: -1, eof: 2000}.bytes()
	legacy := legacyTorch([]legacyTensor{{name: "w", class: "FloatStorage", key: "1", numel: 4}}, legacyOptions{})
	tests := []struct {
		name string
		file string
		data []byte
		want Verdict
	}{
		{"zip named .ckpt", "last.ckpt", zipData, Verdict{State: Whole, Format: "zip"}},
		{"zip named .h5", "model.h5", zipData, Verdict{State: Whole, Format: "zip"}},
		{"HDF5 named .ckpt", "weights.ckpt", h5, Verdict{State: Whole, Format: "hdf5"}},
		{"legacy torch named .bin", "pytorch_model.bin", legacy, Verdict{State: Whole, Format: "torch-legacy"}},
		{"legacy torch named .keras", "model.keras", legacy, Verdict{State: Whole, Format: "torch-legacy"}},
		{"GGML named .bin", "ggml-model.bin", append([]byte("ggjt\x00\x00\x00\x03"), make([]byte, 1000)...), Verdict{}},
		{"a real tar named .tar", "ckpt.tar", append([]byte("model.pt"), make([]byte, 1024)...), Verdict{}},
		{"text named .ckpt", "model.ckpt", []byte("model_checkpoint_path: \"model.ckpt-1000\"\n"), Verdict{}},
		{"1 byte of a zip", "model.pt", []byte("P"), Verdict{}},
		{"3 bytes of a zip", "model.pt", []byte("PK\x03"), Verdict{}},
		{"4 bytes of a zip", "model.pt", []byte("PK\x03\x04"), Verdict{State: Torn, Format: "zip"}},
		{"3 bytes of HDF5", "model.h5", []byte("\x89HD"), Verdict{}},
		{"5 bytes of HDF5", "model.h5", []byte("\x89HDF\r"), Verdict{State: Torn, Format: "hdf5"}},
		{"3 bytes of a legacy magic", "model.pt", []byte("\x80\x02\x8a"), Verdict{}},
		{"4 bytes of a legacy magic", "model.pt", []byte("\x80\x02\x8a\x0a"), Verdict{State: Torn, Format: "torch-legacy"}},
		{"zip magic on a .safetensors", "model.safetensors", zipData, Verdict{State: Unknown, Format: "safetensors"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerdict(t, fmt.Sprintf("%s (%q...)", tt.file, truncate(tt.data, 16)), judge(t, tt.file, tt.data), tt.want)
		})
	}
}

// CheckFile's reads stay within its documented bounds however large the
// file: a terabyte of each format, zero but for its head (and, where it
// has one, its end structures).
func TestReadsAreBounded(t *testing.T) {
	const size = 1 << 40
	zipData := checkpointZip(t, "")
	stHead := rawSafetensors(`{"x":{"dtype":"U8","shape":[2199023255552],"data_offsets":[0,2199023255552]}}`, 0)
	tf := tfBundle(100, 4096)
	tests := []struct {
		name     string
		file     string
		segments map[int64][]byte
		want     State
		maxRead  int64
	}{
		{"zip without its end record", "model.pt", map[int64][]byte{0: zipData[:1000]}, Torn, 32 + zipQuickTail + tailWindow},
		{"zip with its end record", "model.pt", map[int64][]byte{0: zipData[:1000], size - 22: zipData[len(zipData)-22:]}, Unknown, 32 + zipQuickTail + tailWindow},
		{"safetensors of 2 TiB cut at 1", "model.safetensors", map[int64][]byte{0: stHead}, Torn, 64 << 10},
		{"HDF5 without a signature at 0", "model.h5", map[int64][]byte{0: []byte("no signature here")}, Unknown, 32 + 8*40},
		{"HDF5 cut", "model.h5", map[int64][]byte{0: hdf5Spec{version: 2, offSize: 8, base: -1, eof: 1 << 41}.build(100)}, Torn, 32 + hdf5SuperblockRead},
		{"TensorFlow index without its footer", "x.index", map[int64][]byte{0: tf[:4096]}, Torn, 16 + tfFooterLen + tailWindow},
		{"legacy torch, pickles past the read bound", "model.pt", map[int64][]byte{0: []byte(legacyMagicPickle + "\x80\x02M\xe9\x03.\x80\x02}q\x00X\xff\xff\xff\x00")}, NoEndMarker, headLimit + 32},
		{"something else", "model.bin", map[int64][]byte{0: []byte("not a checkpoint format")}, Unknown, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &sparseReader{size: size, segments: tt.segments}
			got, err := CheckFile(tt.file, size, r)
			if err != nil || got.State != tt.want {
				t.Fatalf("CheckFile(%s, 1 TiB) = %v, %v; want %v", tt.file, got, err, tt.want)
			}
			if r.read > tt.maxRead {
				t.Errorf("CheckFile(%s, 1 TiB) read %d bytes, want at most %d", tt.file, r.read, tt.maxRead)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		v    Verdict
		want string
	}{
		{Verdict{}, "unknown"},
		{Verdict{State: Whole, Format: "zip64"}, "whole zip64"},
		{Verdict{State: Torn, Reason: "empty file"}, "torn: empty file"},
		{Verdict{State: NoEndMarker, Format: "torch-legacy", Reason: "x"}, "no-end-marker torch-legacy: x"},
		{Verdict{State: State(9)}, "State(9)"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.v, got, tt.want)
		}
	}
}
