package layout

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkCheckFile prices one CheckFile per format, reading an *os.File
// as the exporter will (from the page cache here: a cold read adds the
// device's latency per ReadAt, of which each case's reads are counted).
func BenchmarkCheckFile(b *testing.B) {
	bigZip := zipOf(b, "", zipEntry{name: "archive/data.pkl", data: []byte("\x80\x02}q\x00.")}, zipEntry{name: "archive/data/0", data: bytes.Repeat([]byte{1, 2, 3, 4}, 1<<18)})
	cases := []struct {
		name string
		file string
		data []byte
		want State
	}{
		{"zip whole 1MiB", "model.pt", bigZip, Whole},
		{"zip torn 1MiB", "model.pt", bigZip[:len(bigZip)/2], Torn},
		{"zip64 65536 entries", "many.zip", zip64Archive(b), Whole},
		{"safetensors 302 tensors", "model.safetensors", safetensorsOf(b, map[string]string{"format": "pt"}, manyTensors()...), Whole},
		{"hdf5 v0 1MiB", "model.h5", hdf5Spec{version: 0, offSize: 8, base: -1, eof: 1 << 20}.bytes(), Whole},
		{"hdf5 v3 1MiB", "model.weights.h5", hdf5Spec{version: 3, offSize: 8, base: -1, eof: 1 << 20}.bytes(), Whole},
		{"tf-index 3000 tensors", "model.ckpt-1.index", tfBundle(3000, 4096), Whole},
		{"tf-index torn", "model.ckpt-1.index", tfBundle(3000, 4096)[:100000], Torn},
		{"torch-legacy 500 tensors", "model.pt", legacyTorch(modelTensors(500), legacyOptions{}), Whole},
		{"unknown bin", "model.bin", bytes.Repeat([]byte("not a checkpoint "), 1000), Unknown},
	}
	dir := b.TempDir()
	for _, c := range cases {
		path := filepath.Join(dir, c.file)
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		size := int64(len(c.data))
		b.Run(c.name, func(b *testing.B) {
			counted := &countingReader{r: f}
			if v, err := CheckFile(c.file, size, counted); err != nil || v.State != c.want {
				b.Fatalf("CheckFile(%s) = %v, %v; want %v", c.file, v, err, c.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := CheckFile(c.file, size, f); err != nil {
					b.Fatal(err)
				}
			}
			// After the loop: resetting the timer drops reported metrics.
			b.ReportMetric(float64(counted.reads), "reads/op")
			b.ReportMetric(float64(counted.bytes), "bytes-read/op")
		})
	}
}

// countingReader counts the reads through it.
type countingReader struct {
	r     *os.File
	reads int
	bytes int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	c.bytes += int64(len(p))
	return c.r.ReadAt(p, off)
}
