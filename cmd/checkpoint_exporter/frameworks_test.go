package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/fixture"
)

// TestPruneKeepsWhatFrameworksKeep builds a tree per framework as its save
// code writes it (internal/fixture/testdata names the source of each) and
// runs the real binary: `prune --keep=3` (preview) must list nothing the
// framework keeps (best, last, final, latest and their targets, saves in
// progress, logs, configs, tokenizer files, run directories), and `scan`
// must say which layout it recognised and from which evidence.
func TestPruneKeepsWhatFrameworksKeep(t *testing.T) {
	cols := regexp.MustCompile(`\s{2,}`)
	fixture.Run(t, func(t *testing.T, f *fixture.Fixture, dir string) {
		out, stderr, code := runCLI(t, "scan", "--checkpoint.dir="+dir, "--output=json")
		var reports []scanReport
		if err := json.Unmarshal([]byte(out), &reports); err != nil || code != 0 || len(reports) != 1 {
			t.Fatalf("scan: exit %d, %v\n%s", code, err, stderr)
		}
		r := reports[0]
		if f.Want.Layout != "" && (r.Layout != f.Want.Layout || len(r.Evidence) == 0) {
			t.Errorf("scan: layout %q evidence %q, want layout %q with evidence", r.Layout, r.Evidence, f.Want.Layout)
		}
		if r.Framework != f.Want.Framework {
			t.Errorf("scan: framework %q, want %q", r.Framework, f.Want.Framework)
		}
		entries := map[string][]string{}
		for _, c := range r.Checkpoints {
			entries[c.Name] = c.Entries
		}

		out, stderr, code = runCLI(t, "prune", "--checkpoint.dir="+dir, "--keep=3")
		if code != 0 || !strings.Contains(out, "dry run") && !strings.Contains(out, "nothing to do") {
			t.Fatalf("prune preview: exit %d\n%s%s", code, out, stderr)
		}
		var deleted []string
		for _, line := range strings.Split(out, "\n") {
			if !strings.HasPrefix(line, "delete ") {
				continue
			}
			name := cols.Split(line, -1)[1]
			es, ok := entries[name]
			if !ok {
				t.Errorf("prune lists %q, which scan does not show", name)
			}
			deleted = append(deleted, es...)
		}
		for _, k := range f.Keep {
			if slices.Contains(deleted, k) {
				t.Errorf("prune --keep=3 would delete %s, which the framework keeps\n%s", k, out)
			}
		}
	})
}

// A reading auto is not sure of is counted, kept and explained: scan says
// why and which pattern: settles it, and prune never lists it.
func TestScanExplainsUncertainReadings(t *testing.T) {
	f, err := fixture.Load(fixture.Dir() + "/ambiguous.txt")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := f.Build(dir); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, "scan", "--checkpoint.dir="+dir)
	if code != 0 {
		t.Fatalf("scan: %d %s", code, stderr)
	}
	for _, want := range []string{"layout torch (PyTorch)", "evidence: 5 entries named model_{n}_{step}.pt", "keep: uncertain",
		"uncertain (kept, never pruned): step not certain", `pattern: "model_*_{step}.pt"`} {
		if !strings.Contains(out, want) {
			t.Errorf("scan output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "prunable") {
		t.Errorf("an uncertain checkpoint is prunable:\n%s", out)
	}
	out, _, _ = runCLI(t, "prune", "--checkpoint.dir="+dir, "--keep=1")
	if strings.Contains(out, "\ndelete ") {
		t.Errorf("prune lists an uncertain checkpoint:\n%s", out)
	}
	// The JSON output carries the reason too.
	out, _, _ = runCLI(t, "scan", "--checkpoint.dir="+dir, "--output=json")
	var reports []scanReport
	if err := json.Unmarshal([]byte(out), &reports); err != nil || reports[0].Checkpoints[0].Uncertain == "" {
		t.Fatalf("json: %v %+v", err, reports)
	}
}
