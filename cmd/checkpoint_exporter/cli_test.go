package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// The one-shot commands (scan, prune, plan) through the real binary.

func TestScanTableAndJSON(t *testing.T) {
	dir := seedTree(t)
	out, stderr, code := runCLI(t, "scan", "--checkpoint.dir="+dir)
	if code != 0 {
		t.Fatalf("scan: %d %s", code, stderr)
	}
	for _, want := range []string{"checkpoint_step_25000.keras", "keep: latest 3", "prunable", "important_backup_15000.keras", `series "checkpoint_step_{step}.keras"`} {
		if !strings.Contains(out, want) {
			t.Errorf("scan output lacks %q", want)
		}
	}
	out, _, code = runCLI(t, "scan", "--checkpoint.dir="+dir, "--output=json")
	var reports []scanReport
	if err := json.Unmarshal([]byte(out), &reports); err != nil || code != 0 {
		t.Fatalf("json: %v %d", err, code)
	}
	r := reports[0]
	if len(r.Checkpoints) != 250 || r.Checkpoints[249].Status != "keep: latest 3" || r.Checkpoints[0].Status != "prunable" || len(r.Ignored) != 1 {
		t.Errorf("json report: %d checkpoints, last %+v, first %+v, ignored %v", len(r.Checkpoints), r.Checkpoints[249], r.Checkpoints[0], r.Ignored)
	}
}

// remaining lists dir without the pruner's own lock file.
func remaining(t *testing.T, dir string) []string {
	es, _ := os.ReadDir(dir)
	var out []string
	for _, e := range es {
		if e.Name() != targetdir.LockFile && e.Name() != targetdir.SpareLeaseFile { // the pruner's own, made ahead of need
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// The cleanup_old_checkpoints.py replacement, on the operator guide's case.
func TestPruneSeedCase(t *testing.T) {
	dir := seedTree(t)
	out, stderr, code := runCLI(t, "prune", "--checkpoint.dir="+dir, "--keep=3")
	if code != 0 {
		t.Fatalf("preview: %d %s", code, stderr)
	}
	if n := strings.Count(out, "\ndelete "); n != 247 {
		t.Errorf("preview lists %d deletions, want 247", n)
	}
	if !strings.Contains(out, "would delete 247 checkpoints") || len(remaining(t, dir)) != 251 {
		t.Errorf("preview deleted something or did not say so:\n%s", out)
	}
	out, stderr, code = runCLI(t, "prune", "--checkpoint.dir="+dir, "--keep=3", "--execute")
	if code != 0 {
		t.Fatalf("execute: %d %s", code, stderr)
	}
	want := []string{"checkpoint_step_24800.keras", "checkpoint_step_24900.keras", "checkpoint_step_25000.keras", "important_backup_15000.keras"}
	if got := remaining(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
	if !strings.Contains(out, "deleted 247 checkpoints") {
		t.Errorf("output: %s", out)
	}
}

func TestPruneTwoProcessesAtOnce(t *testing.T) {
	dir := seedTree(t)
	var wg sync.WaitGroup
	outs := make([]string, 2)
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], _, codes[i] = runCLI(t, "prune", "--checkpoint.dir="+dir, "--keep=3", "--execute")
		}()
	}
	wg.Wait()
	total := 0
	for i := range 2 {
		if codes[i] != 0 {
			t.Errorf("process %d exited %d:\n%s", i, codes[i], outs[i])
		}
		var n int
		for _, line := range strings.Split(outs[i], "\n") {
			if _, err := fmt.Sscanf(line, "deleted %d checkpoints", &n); err == nil {
				total += n
			}
		}
	}
	if total != 247 {
		t.Errorf("the two processes deleted %d checkpoints together, want 247 (each once)", total)
	}
	if got := remaining(t, dir); len(got) != 4 || got[2] != "checkpoint_step_25000.keras" {
		t.Errorf("left %v", got)
	}
}

func TestPruneInsufficientExitCode(t *testing.T) {
	dir := seedTree(t)
	_, _, code := runCLI(t, "prune", "--checkpoint.dir="+dir, "--free-target=99.9%")
	if code != exitInsufficient {
		t.Errorf("unreachable free target: exit %d, want %d", code, exitInsufficient)
	}
	if _, _, code := runCLI(t, "prune", "--checkpoint.dir="+dir, "--free-target=lots"); code != exitUsage {
		t.Errorf("bad --free-target: exit %d, want %d", code, exitUsage)
	}
}

func TestPlanFromFlags(t *testing.T) {
	tests := []struct {
		args  []string
		files string
		bytes string
	}{
		{[]string{"--save-every=100", "--steps=25000", "--size=84MB"}, "250 files", "21.0 GB"},
		{[]string{"--save-every=500", "--keep=3"}, "3 files", "252.0 MB"},
		{[]string{"--save-every=1000", "--keep=2"}, "2 files", "168.0 MB"},
		// max_bytes caps the count: 1 GB holds 11 checkpoints of 84 MB.
		{[]string{"--save-every=100", "--max-bytes=1GB"}, "11 files", "924.0 MB"},
		{[]string{"--save-every=100", "--keep=5", "--max-bytes=1GB"}, "5 files", "420.0 MB"},
		{[]string{"--save-every=100", "--max-bytes=10MB"}, "1 files", "84.0 MB"},
	}
	for _, tt := range tests {
		out, _, code := runCLI(t, append([]string{"plan"}, tt.args...)...)
		if code != 0 || !strings.Contains(out, tt.files+", "+tt.bytes) {
			t.Errorf("plan %v: code %d\n%s\nwant %s, %s", tt.args, code, out, tt.files, tt.bytes)
		}
	}
}

func TestPlanLive(t *testing.T) {
	dir := seedTree(t)
	out, _, code := runCLI(t, "plan", "--checkpoint.dir="+dir)
	if code != 0 || !strings.Contains(out, "more saves fit") || !strings.Contains(out, "one save every 1m40s") {
		t.Errorf("live plan: %d\n%s", code, out)
	}
}
