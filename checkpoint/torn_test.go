package checkpoint

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// zipBytes is a whole zip archive of about size bytes (stored, as torch.save
// and Keras write tensors), the kind of file a .keras or .pt save is.
func zipBytes(t *testing.T, size int) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, err := w.CreateHeader(&zip.FileHeader{Name: "archive/data/0", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7) | 1
	}
	f.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// safetensorsBytes is a whole safetensors file holding one tensor of n bytes.
func safetensorsBytes(t *testing.T, n int) []byte {
	t.Helper()
	header, _ := json.Marshal(map[string]any{"w": map[string]any{"dtype": "U8", "shape": []int{n}, "data_offsets": []int{0, n}}})
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(out, header...)
	return append(out, make([]byte, n)...)
}

// writeAt writes data to p with mtime at.
func writeAt(t *testing.T, p string, data []byte, at time.Time) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, data, 0o644))
	must(t, os.Chtimes(p, at, at))
	if d := filepath.Dir(p); filepath.Base(d) != filepath.Base(filepath.Dir(d)) {
		os.Chtimes(d, at, at)
	}
}

// Issue #21 items 1 and 3: the newest three saves truncated (0 B, 4 KiB, 64
// KiB) are torn, counted neither as checkpoints nor as the latest; the
// three whole ones are; the reasons say what is missing.
func TestTornSingleFiles(t *testing.T) {
	hourAgo := time.Now().Add(-time.Hour)
	for _, tt := range []struct {
		name  string
		file  string
		whole func(t *testing.T) []byte
	}{
		{"keras zip", "checkpoint_step_%d.keras", func(t *testing.T) []byte { return zipBytes(t, 200<<10) }},
		{"torch zip", "checkpoint_step_%d.pt", func(t *testing.T) []byte { return zipBytes(t, 200<<10) }},
		{"safetensors", "model_step_%d.safetensors", func(t *testing.T) []byte { return safetensorsBytes(t, 200<<10) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			whole := tt.whole(t)
			for i, step := range []int{100, 200, 300, 400, 500, 600} {
				data := whole
				switch step {
				case 400:
					data = whole[:64<<10]
				case 500:
					data = whole[:4<<10]
				case 600:
					data = nil
				}
				writeAt(t, filepath.Join(dir, fmt.Sprintf(tt.file, step)), data, hourAgo.Add(time.Duration(i)*time.Minute))
			}
			snap := scan(t, Target{Name: "t", Path: dir, MinAge: 2 * time.Minute}, ScanOptions{})
			var complete, torn []int64
			for _, c := range snap.Complete() {
				complete = append(complete, c.Step)
			}
			for _, c := range snap.Torn() {
				torn = append(torn, c.Step)
				if c.Incomplete || c.Torn == "" {
					t.Errorf("%s: incomplete %v torn %q", c.Name, c.Incomplete, c.Torn)
				}
			}
			if !slices.Equal(complete, []int64{100, 200, 300}) || !slices.Equal(torn, []int64{400, 500, 600}) {
				t.Fatalf("complete %v torn %v, want [100 200 300] and [400 500 600]", complete, torn)
			}
			if l := snap.Latest(); l == nil || l.Step != 300 {
				t.Errorf("latest %+v, want step 300", l)
			}
			if why := snap.Checkpoints[5].Torn; why != "empty file" {
				t.Errorf("0-byte save: torn %q, want \"empty file\"", why)
			}
		})
	}
}

// A save still being written (younger than min_age) looks torn: it is only
// incomplete, and says why.
func TestYoungTornIsInProgress(t *testing.T) {
	dir := t.TempDir()
	whole := zipBytes(t, 100<<10)
	old := time.Now().Add(-time.Hour)
	writeAt(t, filepath.Join(dir, "checkpoint_step_100.keras"), whole, old)
	writeAt(t, filepath.Join(dir, "checkpoint_step_200.keras"), whole, old.Add(time.Minute))
	writeAt(t, filepath.Join(dir, "checkpoint_step_300.keras"), whole[:8<<10], time.Now())
	snap := scan(t, Target{Name: "t", Path: dir, MinAge: 2 * time.Minute}, ScanOptions{})
	c := snap.Checkpoints[2]
	if !c.Incomplete || c.Torn != "" || !strings.Contains(c.Why, "zip") {
		t.Fatalf("a save being written: incomplete %v torn %q why %q; want incomplete, not torn, saying why", c.Incomplete, c.Torn, c.Why)
	}
}

// Directory checkpoints and file groups: a torn file inside (a weights shard,
// a TensorFlow index) makes the whole checkpoint torn, named in the reason.
func TestTornInsideDirectoriesAndGroups(t *testing.T) {
	old := time.Now().Add(-time.Hour)
	t.Run("hf directory", func(t *testing.T) {
		dir := t.TempDir()
		st := safetensorsBytes(t, 64<<10)
		for i, step := range []int{500, 1000, 1500} {
			data := st
			if step == 1500 {
				data = st[:10<<10]
			}
			d := filepath.Join(dir, fmt.Sprintf("checkpoint-%d", step))
			writeAt(t, filepath.Join(d, "model.safetensors"), data, old.Add(time.Duration(i)*time.Minute))
			writeAt(t, filepath.Join(d, "trainer_state.json"), []byte("{}"), old.Add(time.Duration(i)*time.Minute))
		}
		snap := scan(t, Target{Name: "t", Path: dir}, ScanOptions{})
		if torn := snap.Torn(); len(torn) != 1 || torn[0].Step != 1500 || !strings.HasPrefix(torn[0].Torn, "model.safetensors: ") {
			t.Fatalf("torn %+v, want checkpoint-1500 for its model.safetensors", torn)
		}
		if l := snap.Latest(); l == nil || l.Step != 1000 {
			t.Errorf("latest %+v, want 1000", l)
		}
	})
	t.Run("tensorflow index", func(t *testing.T) {
		dir := t.TempDir()
		for i, step := range []int{1, 2, 3} {
			at := old.Add(time.Duration(i) * time.Minute)
			writeAt(t, filepath.Join(dir, fmt.Sprintf("ckpt-%d.data-00000-of-00001", step)), make([]byte, 4096), at)
			// An index cut before its 48-byte footer: a tensor bundle's
			// head (the header entry under the empty key, a
			// BundleHeaderProto value), then nothing.
			head := append([]byte{0, 0, 6, 0x08, 1, 0x10, 0, 0x1a, 2, 0x08, 1}, make([]byte, 9)...)
			writeAt(t, filepath.Join(dir, fmt.Sprintf("ckpt-%d.index", step)), head, at)
		}
		snap := scan(t, Target{Name: "t", Path: dir}, ScanOptions{})
		for _, c := range snap.Checkpoints {
			if c.Torn == "" || !strings.HasPrefix(c.Torn, c.Name+".index: ") {
				t.Errorf("%s: torn %q, want its index named", c.Name, c.Torn)
			}
		}
	})
}

// A file in a recognised format with no end marker to check (torch's legacy
// format whose pickles cannot be followed) far shorter than its siblings is
// suspect: counted, never the latest while a whole one is there. One in a
// format not understood at all is judged as before.
func TestSuspectFarShorter(t *testing.T) {
	// The legacy format's magic pickle, then a protocol version no torch
	// wrote: recognised, with nothing to follow.
	legacy := "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02K\x05."
	for _, tt := range []struct {
		name, file, head string
		suspect          bool
	}{
		{"torch legacy", "checkpoint_%d.pt", legacy, true},
		{"not understood", "checkpoint_%d.msgpack", "\x81", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			old := time.Now().Add(-time.Hour)
			for i, step := range []int{1, 2, 3, 4} {
				size := 256 << 10
				if step == 4 {
					size = 16 << 10
				}
				data := append([]byte(tt.head), bytes.Repeat([]byte{0x81}, size)...)
				writeAt(t, filepath.Join(dir, fmt.Sprintf(tt.file, step)), data, old.Add(time.Duration(i)*time.Minute))
			}
			snap := scan(t, Target{Name: "t", Path: dir}, ScanOptions{})
			c := snap.Checkpoints[3]
			if (c.Suspect != "") != tt.suspect || c.Torn != "" || !c.Whole() {
				t.Fatalf("step 4: suspect %q torn %q whole %v; want suspect %v", c.Suspect, c.Torn, c.Whole(), tt.suspect)
			}
			wantLatest := int64(4)
			if tt.suspect {
				wantLatest = 3 // the suspect one is not the latest
			}
			if l := snap.Latest(); l == nil || l.Step != wantLatest {
				t.Errorf("latest %+v, want %d", l, wantLatest)
			}
			for _, c := range snap.Checkpoints[:3] {
				if c.Suspect != "" {
					t.Errorf("%s suspect: %s", c.Name, c.Suspect)
				}
			}
		})
	}
}

// Files are read once per version of the checkpoint: an unchanged rescan
// reads none, a changed checkpoint is read again.
func TestVerdictsReadOncePerVersion(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	whole := zipBytes(t, 10<<10)
	for i := range 5 {
		writeAt(t, filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", i)), whole, old.Add(time.Duration(i)*time.Minute))
	}
	s, err := NewScanner(Target{Name: "t", Path: dir}, ScanOptions{})
	must(t, err)
	var reads []string
	s.onJudge = func(name string) { reads = append(reads, name) }
	s.Scan(context.Background())
	if len(reads) != 5 {
		t.Fatalf("first scan read %v, want all 5", reads)
	}
	reads = nil
	s.Scan(context.Background())
	if len(reads) != 0 {
		t.Errorf("unchanged rescan read %v, want none", reads)
	}
	writeAt(t, filepath.Join(dir, "checkpoint_step_4.keras"), whole[:1000], old.Add(10*time.Minute))
	snap := s.Scan(context.Background())
	if !slices.Equal(reads, []string{"checkpoint_step_4.keras"}) {
		t.Errorf("after one changed: read %v, want only it", reads)
	}
	if snap.Checkpoints[4].Torn == "" {
		t.Error("the changed, now truncated file is not torn")
	}
}
