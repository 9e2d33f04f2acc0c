package layout

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
)

type zipEntry struct {
	name    string
	data    []byte
	deflate bool
}

// zipOf writes entries with archive/zip, and the comment.
func zipOf(t testing.TB, comment string, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		method := zip.Store
		if e.deflate {
			method = zip.Deflate
		}
		f, err := w.CreateHeader(&zip.FileHeader{Name: e.name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.SetComment(comment); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkpointZip is a small archive laid out like torch.save's.
func checkpointZip(t testing.TB, comment string) []byte {
	t.Helper()
	return zipOf(t, comment,
		zipEntry{name: "archive/data.pkl", data: []byte("\x80\x02}q\x00.")},
		zipEntry{name: "archive/data/0", data: bytes.Repeat([]byte{1, 2, 3, 4}, 3000)},
		zipEntry{name: "archive/data/1", data: bytes.Repeat([]byte("weights"), 500), deflate: true},
		zipEntry{name: "archive/version", data: []byte("3\n")},
	)
}

var (
	zip64Once  sync.Once
	zip64Bytes []byte
)

// zip64Archive has 65536 entries, one more than the end record's 16-bit
// count holds, which makes archive/zip write the zip64 end records
// (APPNOTE 4.4.1.4). Built once: it takes a few hundred milliseconds.
func zip64Archive(t testing.TB) []byte {
	t.Helper()
	zip64Once.Do(func() {
		var buf bytes.Buffer
		w := zip.NewWriter(&buf)
		for i := range 1 << 16 {
			f, err := w.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("t/%d", i), Method: zip.Store})
			if err != nil {
				panic(err)
			}
			if _, err := f.Write([]byte{byte(i)}); err != nil {
				panic(err)
			}
		}
		if err := w.Close(); err != nil {
			panic(err)
		}
		zip64Bytes = buf.Bytes()
	})
	return zip64Bytes
}

// eocdAt finds the end record at the end of a comment-less zip.
func eocdAt(data []byte) int { return len(data) - eocdLen }

// patched returns a copy of data with b written at off.
func patched(data []byte, off int, b []byte) []byte {
	c := bytes.Clone(data)
	copy(c[off:], b)
	return c
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func TestZipWhole(t *testing.T) {
	empty := zipOf(t, "")
	tests := []struct {
		name   string
		file   string
		data   []byte
		format string
	}{
		{"empty archive (only an end record)", "empty.zip", empty, "zip"},
		{"empty archive with a comment", "empty.npz", zipOf(t, "nothing here"), "zip"},
		{"torch-like archive", "model.pt", checkpointZip(t, ""), "zip"},
		{"with a short comment", "model.ckpt", checkpointZip(t, "saved at step 100"), "zip"},
		{"with a comment holding an end record signature", "model.keras", checkpointZip(t, "PK\x05\x06 is the end record's signature"), "zip"},
		{"with the longest comment", "model.bin", checkpointZip(t, strings.Repeat("c", maxZipComment)), "zip"},
		{"deflated entries only", "arrays.npz", zipOf(t, "", zipEntry{name: "a.npy", data: bytes.Repeat([]byte("x"), 100000), deflate: true}), "zip"},
		{"zip64 with 65536 entries", "many.zip", zip64Archive(t), "zip64"},
		// A second archive written after the bytes of a first, its offsets
		// relative to its own start: its central directory ends before its
		// end record by the first archive's length ("data prepended").
		{"archive appended to another, offsets relative", "twice.zip", append(checkpointZip(t, ""), checkpointZip(t, "second")...), "zip"},
		{"upper-case extension", "MODEL.PTH", checkpointZip(t, ""), "zip"},
		{".pth.tar", "checkpoint.pth.tar", checkpointZip(t, ""), "zip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judge(t, tt.file, tt.data)
			wantVerdict(t, fmt.Sprintf("%s, %d bytes", tt.file, len(tt.data)), got, Verdict{State: Whole, Format: tt.format})
		})
	}
}

func TestZipCutsAreTorn(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		data  []byte
		steps int
	}{
		{"torch-like archive", "model.pt", checkpointZip(t, ""), 400},
		{"with a comment", "model.ckpt", checkpointZip(t, "saved at step 100"), 200},
		{"empty archive", "empty.zip", zipOf(t, ""), 0},
		{"zip64 with 65536 entries", "many.zip", zip64Archive(t), 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.data
			// Marks: the end record, and for zip64 its locator and record.
			assertCutsTorn(t, tt.file, d, tt.steps, eocdAt(d), eocdAt(d)-z64LocLen, eocdAt(d)-z64LocLen-z64RecMinLen, len(d)-1)
		})
	}
}

func TestZipCutReason(t *testing.T) {
	d := checkpointZip(t, "")
	got := judge(t, "model.pt", d[:4096])
	wantVerdict(t, "archive cut to 4096 bytes", got, Verdict{State: Torn, Format: "zip", Reason: "zip end record missing, file ends at 4096"})
	got = judge(t, "model.pt", d[:10])
	wantVerdict(t, "archive cut to 10 bytes", got, Verdict{State: Torn, Format: "zip", Reason: "file ends at 10, shorter than the smallest zip (22 bytes)"})
}

func TestZipAppendedIsNotTorn(t *testing.T) {
	tests := []struct {
		name string
		file string
		data []byte
	}{
		{"torch-like archive", "model.pt", checkpointZip(t, "")},
		{"with a comment", "model.keras", checkpointZip(t, "a comment")},
		{"empty archive", "empty.zip", zipOf(t, "")},
		{"zip64", "many.zip", zip64Archive(t)},
		// Not the archive with the longest comment: its end record is
		// already 64 KiB from the end, and any more is past the window.
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertAppendedNeverTorn(t, tt.file, tt.data)
		})
	}
}

func TestZipEndRecords(t *testing.T) {
	d := checkpointZip(t, "")
	e := eocdAt(d)
	z := zip64Archive(t)
	ze := eocdAt(z)
	zloc := ze - z64LocLen
	zrec := int(binary.LittleEndian.Uint64(z[zloc+8:]))
	tests := []struct {
		name string
		file string
		data []byte
		want Verdict
	}{
		{
			name: "central directory offset past the end record",
			file: "model.pt", data: patched(d, e+16, le32(uint32(e))),
			want: Verdict{State: Torn, Format: "zip", Reason: "central directory runs past the end record"},
		},
		{
			name: "central directory size past the end record",
			file: "model.pt", data: patched(d, e+12, le32(uint32(e)+1)),
			want: Verdict{State: Torn, Format: "zip", Reason: "central directory runs past the end record"},
		},
		{
			name: "comment length runs past the end (cut inside the comment)",
			file: "model.pt", data: patched(d, e+20, le16(10)),
			want: Verdict{State: Torn, Format: "zip"},
		},
		{
			name: "no central directory header where the record's size puts it",
			file: "model.pt", data: patched(d, e+12, le32(binary.LittleEndian.Uint32(d[e+12:])-1)),
			want: Verdict{State: Unknown, Format: "zip"},
		},
		{
			name: "a disk of a spanned archive",
			file: "model.pt", data: patched(d, e+4, le16(1)),
			want: Verdict{State: Unknown, Format: "zip"},
		},
		{
			name: "saturated offset without zip64 records",
			file: "model.pt", data: patched(d, e+16, le32(0xFFFFFFFF)),
			want: Verdict{State: Unknown, Format: "zip"},
		},
		{
			name: "zip64 record offset past its locator",
			file: "many.zip", data: patched(z, zloc+8, le64(uint64(zloc))),
			want: Verdict{State: Torn, Format: "zip", Reason: "zip64 end record runs past its locator"},
		},
		{
			name: "zip64 central directory past its record",
			file: "many.zip", data: patched(z, zrec+48, le64(uint64(zrec))),
			want: Verdict{State: Torn, Format: "zip", Reason: "central directory runs past the zip64 end record"},
		},
		{
			name: "zip64 record missing where the locator points",
			file: "many.zip", data: patched(z, zrec, []byte("XXXX")),
			want: Verdict{State: Unknown, Format: "zip"},
		},
		{
			name: "cut after the first local header",
			file: "x.npz", data: d[:100],
			want: Verdict{State: Torn, Format: "zip", Reason: "zip end record missing, file ends at 100"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerdict(t, tt.name, judge(t, tt.file, tt.data), tt.want)
		})
	}
}
