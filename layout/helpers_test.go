package layout

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// judge runs CheckFile over data as the file name and fails the test on an
// error, which an in-memory file never deserves.
func judge(t testing.TB, name string, data []byte) Verdict {
	t.Helper()
	v, err := CheckFile(name, int64(len(data)), &strictReader{t: t, data: data})
	if err != nil {
		t.Fatalf("CheckFile(%q, %d bytes): unexpected error %v", name, len(data), err)
	}
	return v
}

// strictReader is an io.ReaderAt over data that fails the test if CheckFile
// reads outside the size it was given, and counts what it reads.
type strictReader struct {
	t     testing.TB
	data  []byte
	mu    sync.Mutex // guards reads and bytes
	reads int
	bytes int64
}

func (r *strictReader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	r.reads++
	r.bytes += int64(len(p))
	r.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(r.data)) {
		r.t.Errorf("ReadAt(%d bytes at %d) outside the file's %d bytes", len(p), off, len(r.data))
		if off >= int64(len(r.data)) {
			return 0, io.EOF
		}
	}
	n := copy(p, r.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// cutPoints are the lengths a whole file of size bytes is cut to: the
// first bytes one by one, each offset in marks (where the format's headers
// end) and the byte either side of it, the middle, one byte short of the
// end, and a sweep of about steps evenly spaced cuts in between.
func cutPoints(size int, steps int, marks ...int) []int {
	var cuts []int
	for n := range min(size, 24) {
		cuts = append(cuts, n)
	}
	for _, m := range marks {
		cuts = append(cuts, m-1, m, m+1)
	}
	cuts = append(cuts, size/2, size-2, size-1)
	step := max(1, size/max(steps, 1))
	for n := 0; n < size; n += step {
		cuts = append(cuts, n)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	return slices.DeleteFunc(cuts, func(n int) bool { return n < 0 || n >= size })
}

// ambiguousCut reports why a cut to n bytes of the file data named name
// may legitimately be something other than Torn, or "" if it must be Torn.
// Formats found by their magic cannot be named from fewer than minPrefix
// bytes: "PK" or "\x89HD" alone could start any .bin. A .safetensors or
// .index is named by its extension, so even one byte is a cut. An HDF5
// file whose signature follows a user block shows nothing of HDF5 until
// that signature is whole.
func ambiguousCut(name string, data []byte, n int) string {
	switch checkedExt(name) {
	case ".safetensors", ".index":
		return ""
	}
	if n > 0 && n < minPrefix {
		return fmt.Sprintf("%d bytes cannot show a magic number (minPrefix is %d)", n, minPrefix)
	}
	if ext := checkedExt(name); (ext == ".h5" || ext == ".hdf5") && !bytes.HasPrefix(data, []byte(hdf5Sig)) {
		for at := 512; at+len(hdf5Sig) <= len(data); at *= 2 {
			if string(data[at:at+len(hdf5Sig)]) == hdf5Sig {
				if n > 0 && n < at+len(hdf5Sig) {
					return fmt.Sprintf("the HDF5 signature after a %d-byte user block is not whole", at)
				}
				break
			}
		}
	}
	return ""
}

// assertCutsTorn cuts data at every cut point and wants each cut Torn,
// except the ambiguous cuts, which must be Unknown.
func assertCutsTorn(t *testing.T, name string, data []byte, steps int, marks ...int) {
	t.Helper()
	for _, n := range cutPoints(len(data), steps, marks...) {
		got := judge(t, name, data[:n])
		if why := ambiguousCut(name, data, n); why != "" {
			if got.State != Unknown {
				t.Errorf("%s cut to %d of %d bytes: got %v, want unknown (%s)", name, n, len(data), got, why)
			}
			continue
		}
		if got.State != Torn {
			t.Errorf("%s cut to %d of %d bytes: got %v, want torn", name, n, len(data), got)
		}
		if got.State == Torn && got.Reason == "" {
			t.Errorf("%s cut to %d bytes: torn without a reason", name, n)
		}
	}
}

// appendages are byte strings appended to whole files: never a cut, so
// never Torn. Longer ones than 64 KiB are not tried: a zip or TensorFlow
// table whose end record is further from the end than the 64 KiB tail
// window cannot be told from a cut (see CheckFile's read bounds).
func appendages(data []byte) map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 3000)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	a := map[string][]byte{
		"one zero byte":          {0},
		"4 KiB of zeros":         make([]byte, 4096),
		"60 KiB of zeros":        make([]byte, 60<<10),
		"random bytes":           random,
		"a fake zip end record":  []byte("PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00\xff\xff\x00\x00\x00\x10\x00\x00\x00\x00"),
		"the file's last bytes":  data[len(data)-min(len(data), 100):],
		"a fake table magic":     []byte("\x57\xfb\x80\x8b\x24\x75\x47\xdb"),
		"an HDF5 signature":      []byte(hdf5Sig + "\x00\x08\x08\x00"),
		"text with a newline":    []byte("appended by hand\n"),
		"a torch magic pickle":   []byte(legacyMagicPickle),
		"the file's first bytes": data[:min(len(data), 4096)],
	}
	return a
}

// assertAppendedNeverTorn appends each appendage to data and wants no Torn.
func assertAppendedNeverTorn(t *testing.T, name string, data []byte) {
	t.Helper()
	for what, extra := range appendages(data) {
		grown := append(bytes.Clone(data), extra...)
		if got := judge(t, name, grown); got.State == Torn {
			t.Errorf("%s (%d bytes) + %s (%d bytes): got %v, want anything but torn", name, len(data), what, len(extra), got)
		}
	}
}

// wantVerdict compares the state and format of got with want and, when
// want has one, the reason.
func wantVerdict(t *testing.T, input string, got, want Verdict) {
	t.Helper()
	if got.State != want.State || got.Format != want.Format || (want.Reason != "" && got.Reason != want.Reason) {
		t.Errorf("%s:\n got  %v\n want %v", input, got, want)
	}
}
