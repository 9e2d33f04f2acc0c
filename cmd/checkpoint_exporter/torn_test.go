package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// debianPython is Debian's interpreter, which has Debian's python3-torch;
// another python3 first on PATH (pyenv's) has not.
const debianPython = "/usr/bin/python3"

// wholeZip is a whole zip archive as torch.save and Keras 3 write (stored
// members), of about size bytes.
func wholeZip(t *testing.T, size int) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, err := w.CreateHeader(&zip.FileHeader{Name: "model/data/0", Method: zip.Store})
	must(t, err)
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*13) | 1
	}
	f.Write(data)
	must(t, w.Close())
	return b.Bytes()
}

// scanJSON runs scan --output=json on dir and returns its one report.
func scanJSON(t *testing.T, args ...string) scanReport {
	t.Helper()
	out, stderr, code := runCLI(t, append([]string{"scan", "--output=json"}, args...)...)
	var reports []scanReport
	if err := json.Unmarshal([]byte(out), &reports); err != nil || code != 0 || len(reports) != 1 {
		t.Fatalf("scan: exit %d, %v\n%s", code, err, stderr)
	}
	return reports[0]
}

// Issue #21: the newest three Keras saves truncated to 0 B, 4 KiB and 64
// KiB, the older three whole. scan and the metrics say torn and name the
// newest whole one as the latest; prune --keep=3 --execute keeps the three
// whole ones and deletes the torn ones. (Before: the broken files were
// "keep: latest 3" and every whole one was deleted.)
func TestTornNewestSavesThroughTheBinary(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "models")
	must(t, os.Mkdir(dir, 0o755))
	whole := wholeZip(t, 256<<10)
	base := time.Now().Add(-2 * time.Hour)
	for i, step := range []int{100, 200, 300, 400, 500, 600} {
		data := whole
		switch step {
		case 400:
			data = whole[:0]
		case 500:
			data = whole[:4<<10]
		case 600:
			data = whole[:64<<10]
		}
		p := filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", step))
		must(t, os.WriteFile(p, data, 0o644))
		mt := base.Add(time.Duration(i) * time.Minute)
		must(t, os.Chtimes(p, mt, mt))
	}
	r := scanJSON(t, "--checkpoint.dir="+dir)
	for _, c := range r.Checkpoints {
		torn := *c.Step >= 400
		if torn != (c.Torn != "") || torn != strings.HasPrefix(c.Status, "torn: ") {
			t.Errorf("%s: torn %q status %q", c.Name, c.Torn, c.Status)
		}
	}
	if got := r.Checkpoints[5].Status; !strings.Contains(got, "zip end record missing") {
		t.Errorf("status of the 64 KiB cut: %q, want the zip end record named", got)
	}
	base2, _ := serve(t, "--checkpoint.dir="+dir)
	body := scrapeUntil(t, base2+"/metrics", `checkpoint_dir_torn_checkpoints{target="models"} 3`)
	for _, want := range []string{`checkpoint_dir_checkpoints{target="models"} 3`, `checkpoint_dir_latest_step{target="models"} 300`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	out, stderr, code := runCLI(t, "prune", "--checkpoint.dir="+dir, "--keep=3", "--execute")
	if code != exitOK {
		t.Fatalf("prune: exit %d\n%s\n%s", code, out, stderr)
	}
	want := []string{"checkpoint_step_100.keras", "checkpoint_step_200.keras", "checkpoint_step_300.keras"}
	if got := remaining(t, dir); !slices.Equal(got, want) {
		t.Errorf("left %v, want the three whole saves %v\n%s", got, want, out)
	}
}

// Real PyTorch, real ENOSPC: a training loop saving checkpoint_step_N.pt
// with torch.save into a small tmpfs until the disk is full leaves its last
// save torn, and a resume that picks the newest fails on it. Once nothing
// writes to it, prune --keep=3 --execute deletes it and keeps the three
// newest whole saves, and the same resume loads the newest of them. In
// torch's zip format and in its legacy format.
func TestRealTorchSaveIntoAFullDisk(t *testing.T) {
	if out, err := exec.Command(debianPython, "-c", "import torch").CombinedOutput(); err != nil {
		testenv.Missing(t, "%s cannot import torch (%v: %s): install Debian's python3-torch", debianPython, err, bytes.TrimSpace(out))
	}
	script, err := filepath.Abs(filepath.Join("testdata", "torch_trainer.py"))
	must(t, err)
	for _, format := range []string{"zip", "legacy"} {
		t.Run(format, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "models")
			testenv.MountTmpfs(t, dir, "4m")
			train := exec.Command(debianPython, script, dir, format, "100000")
			if out, err := train.CombinedOutput(); err == nil {
				t.Fatalf("the training loop saved 1000 checkpoints into 4 MiB:\n%s", out)
			}
			steps := torchSteps(t, dir)
			if len(steps) < 4 {
				t.Fatalf("only %v saved before the disk filled", steps)
			}
			newest := steps[len(steps)-1]
			resume := exec.Command(debianPython, script, "--resume", dir)
			if out, err := resume.CombinedOutput(); err == nil {
				t.Fatalf("resume loaded the newest save %d: it was to be torn by ENOSPC\n%s", newest, out)
			}
			// Nothing has written to the saves for an hour.
			for i, s := range steps {
				mt := time.Now().Add(-time.Hour + time.Duration(i)*time.Second)
				must(t, os.Chtimes(filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.pt", s)), mt, mt))
			}
			r := scanJSON(t, "--checkpoint.dir="+dir)
			last := r.Checkpoints[len(r.Checkpoints)-1]
			if last.Torn == "" {
				t.Fatalf("the save ENOSPC cut short (%s, %d bytes) is not torn: %+v", last.Name, last.Bytes, last)
			}
			t.Logf("%s: %s", last.Name, last.Status)
			out, stderr, code := runCLI(t, "prune", "--checkpoint.dir="+dir, "--keep=3", "--execute")
			if code != exitOK {
				t.Fatalf("prune: exit %d\n%s\n%s", code, out, stderr)
			}
			want := steps[len(steps)-4 : len(steps)-1]
			if got := torchSteps(t, dir); !slices.Equal(got, want) {
				t.Errorf("left %v, want the three newest whole saves %v\n%s", got, want, out)
			}
			resumed, err := exec.Command(debianPython, script, "--resume", dir).CombinedOutput()
			if err != nil || strings.TrimSpace(string(resumed)) != strconv.Itoa(want[2]) {
				t.Errorf("resume after the prune: %v %s; want step %d", err, resumed, want[2])
			}
		})
	}
}

// torchSteps lists the steps of dir's checkpoint_step_N.pt files.
func torchSteps(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	var out []int
	for _, e := range entries {
		if s, ok := strings.CutPrefix(e.Name(), "checkpoint_step_"); ok {
			if n, err := strconv.Atoi(strings.TrimSuffix(s, ".pt")); err == nil {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}
