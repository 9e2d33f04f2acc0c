package layout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// python is Debian's interpreter, which has Debian's torch and h5py; another
// python3 on PATH (pyenv's) has neither.
const python = "/usr/bin/python3"

// realFile is one entry of the generator's manifest.
type realFile struct {
	File   string `json:"file"`
	Writer string `json:"writer"`
	Format string `json:"format"`
	Kind   string `json:"kind"` // whole, failed, killed, family
	Want   string `json:"want"` // whole, torn, unknown, not-torn
	Note   string `json:"note"`
}

// realWriterFiles runs testdata/gen_realwriters.py into a temporary
// directory and returns it with the manifest. A machine without the
// writers fails the test: these files are the evidence that the rules
// match what the frameworks write.
func realWriterFiles(t *testing.T) (string, []realFile) {
	t.Helper()
	if out, err := exec.Command(python, "-c", "import torch, h5py, numpy").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import torch, h5py and numpy (%v: %s); install Debian's packages: apt-get install python3-torch python3-h5py", python, err, bytes.TrimSpace(out))
	}
	dir := t.TempDir()
	cmd := exec.Command(python, filepath.Join("testdata", "gen_realwriters.py"), dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen_realwriters.py: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var files []realFile
	if err := json.Unmarshal(b, &files); err != nil {
		t.Fatal(err)
	}
	return dir, files
}

func TestRealWriters(t *testing.T) {
	dir, files := realWriterFiles(t)
	wholes := 0
	for _, rf := range files {
		data, err := os.ReadFile(filepath.Join(dir, rf.File))
		if err != nil {
			t.Fatal(err)
		}
		if rf.Kind == "whole" {
			wholes++
			t.Run("cut "+rf.File, func(t *testing.T) {
				assertCutsTorn(t, rf.File, data, 150)
			})
			t.Run("appended "+rf.File, func(t *testing.T) {
				assertAppendedNeverTorn(t, rf.File, data)
			})
		}
		t.Run(rf.Kind+" "+rf.File, func(t *testing.T) {
			got, err := checkOSFile(filepath.Join(dir, rf.File))
			if err != nil {
				t.Fatal(err)
			}
			if rf.Note != "" {
				t.Logf("%s by %s: %s: %v", rf.File, rf.Writer, rf.Note, got)
			}
			input := fmt.Sprintf("%s (%s by %s, %d bytes)", rf.File, rf.Kind, rf.Writer, len(data))
			switch rf.Want {
			case "whole":
				wantVerdict(t, input, got, Verdict{State: Whole, Format: rf.Format})
			case "torn":
				wantVerdict(t, input, got, Verdict{State: Torn, Format: rf.Format})
			case "unknown":
				wantVerdict(t, input, got, Verdict{State: Unknown, Format: got.Format})
			case "not-torn":
				if got.State == Torn {
					t.Errorf("%s: got %v, want anything but torn", input, got)
				}
			default:
				t.Fatalf("%s: manifest wants %q", rf.File, rf.Want)
			}
		})
	}
	if wholes < 30 {
		t.Errorf("the generator wrote %d whole files, want at least 30", wholes)
	}
	t.Run("pickle machine on Python's pickles", func(t *testing.T) {
		pickleCorpus(t, dir)
	})
}

func checkOSFile(path string) (Verdict, error) {
	f, err := os.Open(path)
	if err != nil {
		return Verdict{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Verdict{}, err
	}
	return CheckFile(filepath.Base(path), st.Size(), f)
}

// pickleCorpus runs the machine over pickles of many objects in every
// protocol, written by Python's pickle module, and wants each to end where
// pickle.load ends it.
func pickleCorpus(t *testing.T, dir string) {
	data, err := os.ReadFile(filepath.Join(dir, "pickles.bin"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "pickles.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64
	if err := json.Unmarshal(b, &ends); err != nil {
		t.Fatal(err)
	}
	m := newPickleMachine(&file{r: bytes.NewReader(data), size: int64(len(data))})
	start := int64(0)
	for i, end := range ends {
		if _, err := m.load(); err != nil {
			t.Fatalf("pickle %d (bytes %d to %d, %q...): %v", i, start, end, data[start:min(end, start+40)], err)
		}
		if m.pos != end {
			t.Fatalf("pickle %d (from %d, %q...) ended at %d, pickle.load ends it at %d", i, start, data[start:min(end, start+40)], m.pos, end)
		}
		start = end
	}
}
