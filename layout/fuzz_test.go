package layout

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// smallZip64 rewrites a small archive's end as a zip64 writer would
// (APPNOTE 4.3.14-4.3.16): a zip64 end record and its locator before an end
// record whose fields are saturated. archive/zip writes these only past
// 65535 entries or 4 GiB; torch's writer always does.
func smallZip64(t testing.TB) []byte {
	t.Helper()
	d := zipOf(t, "", zipEntry{name: "archive/data.pkl", data: []byte("\x80\x02}q\x00.")}, zipEntry{name: "archive/data/0", data: []byte("0123456789")})
	e := eocdAt(d)
	entries := uint64(binary.LittleEndian.Uint16(d[e+10:]))
	cdSize := uint64(binary.LittleEndian.Uint32(d[e+12:]))
	cdOff := uint64(binary.LittleEndian.Uint32(d[e+16:]))
	out := bytes.Clone(d[:e])
	rec := uint64(len(out))
	out = append(out, z64RecSig...)
	out = binary.LittleEndian.AppendUint64(out, z64RecMinLen-12)
	out = append(out, 45, 0, 45, 0) // versions made by and needed
	out = append(out, 0, 0, 0, 0, 0, 0, 0, 0)
	out = binary.LittleEndian.AppendUint64(out, entries)
	out = binary.LittleEndian.AppendUint64(out, entries)
	out = binary.LittleEndian.AppendUint64(out, cdSize)
	out = binary.LittleEndian.AppendUint64(out, cdOff)
	out = append(out, z64LocSig...)
	out = append(out, 0, 0, 0, 0)
	out = binary.LittleEndian.AppendUint64(out, rec)
	out = append(out, 1, 0, 0, 0)
	out = append(out, eocdSig...)
	out = append(out, 0, 0, 0, 0)                        // disk numbers
	out = append(out, bytes.Repeat([]byte{0xff}, 12)...) // entries, size and offset: in the zip64 record
	out = append(out, 0, 0)                              // comment length
	return out
}

func TestSmallZip64(t *testing.T) {
	d := smallZip64(t)
	wantVerdict(t, "a small zip64 archive", judge(t, "model.pt", d), Verdict{State: Whole, Format: "zip64"})
	assertCutsTorn(t, "model.pt", d, 0, eocdAt(d), eocdAt(d)-z64LocLen)
	assertAppendedNeverTorn(t, "model.pt", d)
}

// fuzzNames are the names FuzzCheckFile gives its bytes: every checked
// extension and one that is not.
var fuzzNames = append(func() []string {
	var n []string
	for _, ext := range checkedExts {
		n = append(n, "f"+ext)
	}
	return n
}(), "f.txt")

var fuzzFormats = map[string]bool{"": true, "zip": true, "zip64": true, "safetensors": true, "hdf5": true, "tf-index": true, "torch-legacy": true}

// FuzzCheckFile feeds arbitrary bytes under every name and asserts what is
// true of any input: no panic and no error from an in-memory file, no read
// outside the file, a known format and a reason for every Torn, the same
// verdict twice, no Torn for a file too short to show a magic number, and
// no Torn once bytes are appended to a Whole file, as long as the end
// structures stay inside the 64 KiB tail window (the invariant that
// appendages beyond it break is documented at CheckFile's read bounds).
func FuzzCheckFile(f *testing.F) {
	// Small seeds: the engine minimises every new interesting input, and
	// minimising a 16 KiB zip stalls it for a minute at a time.
	smallZip := func(comment string) []byte {
		return zipOf(f, comment, zipEntry{name: "data.pkl", data: []byte("\x80\x02}q\x00.")}, zipEntry{name: "data/0", data: []byte("weights"), deflate: true})
	}
	seeds := [][]byte{
		smallZip(""),
		smallZip("comment PK\x05\x06"),
		zipOf(f, ""),
		smallZip64(f),
		safetensorsOf(f, map[string]string{"format": "pt"}, stTensor{"a", "F16", []int{2, 3}}, stTensor{"b", "I64", []int{1}}),
		hdf5Spec{version: 0, offSize: 8, base: -1, eof: 200}.bytes(),
		hdf5Spec{version: 2, offSize: 4, base: -1, eof: 120}.bytes(),
		hdf5Spec{version: 0, offSize: 8, userBlock: 512, base: -1, eof: 700}.bytes(),
		tfBundle(2, 4096),
		legacyTorch([]legacyTensor{{name: "w", class: "FloatStorage", key: "1", numel: 3}, {name: "b", class: "BoolStorage", key: "2", numel: 2}}, legacyOptions{}),
	}
	for _, s := range seeds {
		for i := range fuzzNames {
			f.Add(s, uint8(i), []byte{0})
			f.Add(s[:len(s)/2], uint8(i), []byte(nil))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, nameIdx uint8, extra []byte) {
		name := fuzzNames[int(nameIdx)%len(fuzzNames)]
		got := judge(t, name, data)
		if again := judge(t, name, data); again != got {
			t.Fatalf("%s, %d bytes: %v, then %v", name, len(data), got, again)
		}
		if !fuzzFormats[got.Format] {
			t.Errorf("%s, %d bytes: format %q", name, len(data), got.Format)
		}
		if got.State == Torn && got.Reason == "" {
			t.Errorf("%s, %d bytes: torn without a reason", name, len(data))
		}
		if got.State == Torn && ambiguousCut(name, nil, len(data)) != "" {
			t.Errorf("%s, %d bytes %q: torn from fewer bytes than a magic number", name, len(data), data)
		}
		if got.State == Whole && len(data)+len(extra) <= maxZipComment {
			grown := append(bytes.Clone(data), extra...)
			if g := judge(t, name, grown); g.State == Torn {
				t.Errorf("%s, %d bytes whole; with %d bytes %q appended: %v", name, len(data), len(extra), extra, g)
			}
		}
	})
}
