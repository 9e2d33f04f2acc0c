package main

import (
	"bytes"
	bin "encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// Background scans get a walker process only with --collector.idle-priority.
func TestScanOptionsWalker(t *testing.T) {
	c := &common{}
	if got := c.scanOptions(1, true).Walker; !slices.Equal(got, []string{"/proc/self/exe", walkerArg}) {
		t.Errorf("idle: walker %q", got)
	}
	if got := c.scanOptions(1, false).Walker; got != nil {
		t.Errorf("not idle: walker %q", got)
	}
}

// The binary run as "internal-walker" speaks the walker protocol: the
// target directory as descriptor 3, its device, then a name; it answers with
// the entry's sums.
func TestBinaryServesWalker(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"checkpoint-100/a.bin", "checkpoint-100/sub/b.bin"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, 10000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	bin.Write(&in, bin.LittleEndian, st.Dev)
	name := "checkpoint-100"
	bin.Write(&in, bin.LittleEndian, uint32(len(name)))
	in.WriteString(name)
	cmd := exec.Command(binary, walkerArg)
	cmd.Stdin = &in
	cmd.ExtraFiles = []*os.File{d}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("walker: %v", err)
	}
	// Beats ('b') may come first; then 'r' and five numbers.
	out = bytes.TrimLeft(out, "b")
	if len(out) != 1+5*8 || out[0] != 'r' {
		t.Fatalf("answer %q", out)
	}
	var v [5]uint64
	bin.Read(bytes.NewReader(out[1:]), bin.LittleEndian, &v)
	// checkpoint-100, a.bin, sub, sub/b.bin; no errors.
	if v[1] != 4 || v[4] != 0 || v[0] < 20000 {
		t.Errorf("bytes %d, files %d, errors %d; want at least 20000 bytes, 4 files, no errors", v[0], v[1], v[4])
	}
}
