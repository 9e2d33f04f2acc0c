package layout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// State is what the bytes of a file say about its completeness.
type State int

const (
	// Unknown: not a format checked here, or not understood; judge the file
	// as before (as whole).
	Unknown State = iota
	// Whole: the format's end structures are present and consistent with
	// the file's size.
	Whole
	// Torn is conclusive: the file is shorter than its own structures say,
	// or the end record its format always writes last is missing.
	Torn
	// NoEndMarker: a recognised format that has no end marker to check
	// (torch's legacy pickle format when it cannot be verified).
	NoEndMarker
)

func (s State) String() string {
	switch s {
	case Unknown:
		return "unknown"
	case Whole:
		return "whole"
	case Torn:
		return "torn"
	case NoEndMarker:
		return "no-end-marker"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Verdict is CheckFile's judgement of one file.
type Verdict struct {
	State State
	// Format is the format recognised: "zip", "zip64", "safetensors",
	// "hdf5", "tf-index", "torch-legacy", or "" when none was.
	Format string
	// Reason says, for an operator, why a file is Torn ("empty file", "zip
	// end record missing, file ends at 65536"). Unknown and NoEndMarker
	// verdicts carry one too when there is something to say about the file.
	Reason string
}

func (v Verdict) String() string {
	s := v.State.String()
	if v.Format != "" {
		s += " " + v.Format
	}
	if v.Reason != "" {
		s += ": " + v.Reason
	}
	return s
}

// checkedExts are the extensions whose files CheckFile judges. ".pth.tar"
// and ".weights.h5" are spelled out for the reader; ".tar" and ".h5" already
// cover them.
var checkedExts = []string{
	".keras", ".pt", ".pth", ".pth.tar", ".tar", ".bin", ".ckpt", ".zip", ".npz",
	".safetensors", ".h5", ".hdf5", ".weights.h5", ".index",
}

// Checked reports whether name has an extension whose files CheckFile judges
// (callers skip other files without opening them). Case is ignored, as
// frameworks that pick the name take it from users.
func Checked(name string) bool {
	return checkedExt(name) != ""
}

func checkedExt(name string) string {
	lower := strings.ToLower(name)
	for _, ext := range checkedExts {
		if strings.HasSuffix(lower, ext) {
			return ext
		}
	}
	return ""
}

// Read bounds, as CheckFile's doc states them.
const (
	headLimit  = 8 << 20
	tailWindow = eocdLen + maxZipComment
)

// CheckFile judges the file name of size bytes, reading through r only the
// head and tail it needs, never the whole file. Which check applies is
// decided by the file's magic bytes where its format has one, and by the
// extension for .safetensors and TensorFlow's .index. A name that Checked
// rejects is Unknown without a read.
//
// Where the magic decides it reads the first 32 bytes; then, by format:
//
//   - zip: the last 4 KiB, and when they do not show a whole end the last
//     64 KiB + 22 bytes (the end record and the longest comment), plus at
//     most 60 bytes elsewhere per end record signature in them (a zip64
//     record, the central directory's first header);
//   - safetensors: the first 64 KiB, or the JSON header if it is longer, up
//     to 8 MiB;
//   - HDF5: 64 bytes of superblock and, for a .h5 or .hdf5 without the
//     signature at 0, one 8-byte probe at 512 and each power of two after;
//   - TensorFlow .index: the 48-byte footer; without it, 16 head bytes and
//     the last 64 KiB + 22 bytes;
//   - torch legacy: its pickles, up to 8 MiB, and one 8-byte count per
//     storage, for at most 65536 storages.
//
// A usual file costs one to three reads and a few KiB; no file costs more
// than 9 MiB.
//
// The error is for a failed read only, including a read cut short because
// the file shrank while it was being checked; the verdict is then Unknown.
func CheckFile(name string, size int64, r io.ReaderAt) (Verdict, error) {
	ext := checkedExt(name)
	if ext == "" {
		return Verdict{}, nil
	}
	if size < 0 {
		return Verdict{}, fmt.Errorf("check %s: negative size %d", name, size)
	}
	if size == 0 {
		// Every format checked here writes something first; a zero-length
		// file with a checkpoint's name is a save that died before its
		// first write reached the disk.
		return Verdict{State: Torn, Reason: "empty file"}, nil
	}
	f := &file{r: r, size: size}
	v, err := f.check(ext)
	if err != nil {
		return Verdict{}, fmt.Errorf("check %s: %w", name, err)
	}
	return v, nil
}

func (f *file) check(ext string) (Verdict, error) {
	switch ext {
	case ".safetensors":
		return checkSafetensors(f)
	case ".index":
		return checkTFIndex(f)
	}
	// Enough for every magic below, and all of a file shorter than the
	// longest magic pickle.
	head, err := f.readAt(0, int(min(f.size, 32)))
	if err != nil {
		return Verdict{}, err
	}
	switch {
	case bytes.HasPrefix(head, []byte(localHeaderSig)), bytes.HasPrefix(head, []byte(eocdSig)):
		return checkZip(f)
	case bytes.HasPrefix(head, []byte(hdf5Sig)):
		return checkHDF5(f, 0)
	case head[0] == pickleProto:
		return checkTorchLegacy(f, head)
	}
	if ext == ".h5" || ext == ".hdf5" {
		// Only HDF5's own extensions get the user-block probes: a .pt or
		// .bin with a signature 512 bytes in is no HDF5 writer's doing.
		if off, found, err := findHDF5Signature(f); err != nil || found {
			if err != nil {
				return Verdict{}, err
			}
			return checkHDF5(f, off)
		}
	}
	if len(head) < 8 && len(head) >= minPrefix && bytes.HasPrefix([]byte(hdf5Sig), head) {
		return Verdict{State: Torn, Format: "hdf5", Reason: fmt.Sprintf("file ends at %d, inside the HDF5 signature", f.size)}, nil
	}
	return Verdict{}, nil
}

// minPrefix is the shortest head that a file cut inside its format's magic
// must show before it is called Torn. One to three bytes ("P", "PK") say
// too little: any binary file named .bin may start so, and no writer's
// buffered output is cut that short in practice, so those stay Unknown.
const minPrefix = 4

// file reads a checked file through the caller's ReaderAt, never past size.
type file struct {
	r    io.ReaderAt
	size int64
}

// readAt reads n bytes at off. Callers keep off+n within size; a read that
// comes back short means the file shrank (or the ReaderAt failed), which is
// an error, not a verdict.
func (f *file) readAt(off int64, n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("read %d bytes at %d: negative length", n, off)
	}
	buf := make([]byte, n)
	return buf, f.readInto(buf, off)
}

// readInto fills buf from off; see readAt.
func (f *file) readInto(buf []byte, off int64) error {
	n := len(buf)
	if off < 0 || off > f.size || int64(n) > f.size-off {
		return fmt.Errorf("read %d bytes at %d: outside the file's %d bytes", n, off, f.size)
	}
	got, err := f.r.ReadAt(buf, off)
	if got == n {
		// io.ReaderAt may return io.EOF along with a full read that ends
		// at the end of the input.
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = fmt.Errorf("file is shorter than its size %d (changed while checked?): %w", f.size, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("read %d bytes at %d: %w", n, off, err)
}

// tail reads the last min(size, n) bytes and returns them with their offset.
func (f *file) tail(n int64) ([]byte, int64, error) {
	n = min(n, f.size)
	b, err := f.readAt(f.size-n, int(n))
	return b, f.size - n, err
}
