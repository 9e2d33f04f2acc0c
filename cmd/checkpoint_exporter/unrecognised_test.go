package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/fixture"
)

// buildFixture builds the fixture file name (internal/fixture/testdata)
// in a directory called models, and returns that directory.
func buildFixture(t *testing.T, name string) (*fixture.Fixture, string) {
	t.Helper()
	f, err := fixture.Load(filepath.Join(fixture.Dir(), name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "models")
	must(t, os.Mkdir(dir, 0o755))
	if err := f.Build(dir); err != nil {
		t.Fatal(err)
	}
	return f, dir
}

// pastedPattern is the configuration line scan's table tells to paste.
func pastedPattern(t *testing.T, table string) string {
	t.Helper()
	lines := strings.Split(table, "\n")
	for i, ln := range lines {
		if strings.HasSuffix(ln, "add to the target's configuration:") && i+1 < len(lines) {
			if p := strings.TrimSpace(lines[i+1]); strings.HasPrefix(p, "pattern: ") {
				return p
			}
		}
	}
	t.Fatalf("scan names no pattern: to paste:\n%s", table)
	return ""
}

// firstEntries are each checkpoint's first entry, in the report's order.
func firstEntries(r scanReport) []string {
	var out []string
	for _, c := range r.Checkpoints {
		out = append(out, c.Entries[0])
	}
	return out
}

// Issue #27: series no layout's rule names (single files, file groups per
// step, directories of shards, timestamped directories, epoch and batch
// names) are counted, in order, kept as uncertain, and never deleted by a
// prune; the pattern: scan prints, pasted into a config, reads the same
// checkpoints as prunable ones, and a prune then deletes them.
func TestUnrecognisedSeriesThroughTheBinary(t *testing.T) {
	tests := []struct {
		fixture string
		pattern string
		order   []string // each checkpoint's first entry, oldest first
		noStep  bool
	}{
		{"unrecognised-mxnet", "resnet-{step}.params",
			[]string{"resnet-0001.params", "resnet-0002.params", "resnet-0003.params", "resnet-0004.params", "resnet-0005.params"}, false},
		{"unrecognised-allennlp", "*_state_epoch_{step}.th",
			[]string{"model_state_epoch_0.th", "model_state_epoch_1.th", "model_state_epoch_2.th", "model_state_epoch_3.th"}, false},
		{"unrecognised-shards", "gpt-step-{step}", []string{"gpt-step-001000", "gpt-step-002000", "gpt-step-003000"}, false},
		{"unrecognised-unixtime", "snapshot-{step}",
			[]string{"snapshot-1704110400", "snapshot-1704114000", "snapshot-1704117600", "snapshot-1704121200"}, true},
		{"unrecognised-timestamps", "ckpt_{epoch}-{step}",
			[]string{"ckpt_20240101-223000", "ckpt_20240102-060000", "ckpt_20240102-233000", "ckpt_20240103-081500"}, true},
		{"unrecognised-epoch-batch", "*_state_e{epoch}_b{step}.th",
			[]string{"model_state_e0_b1000.th", "model_state_e0_b2000.th", "model_state_e1_b0.th", "model_state_e1_b1000.th", "model_state_e1_b2000.th"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			f, dir := buildFixture(t, tt.fixture)
			r := scanJSON(t, "--checkpoint.dir="+dir)
			if r.Layout != "unrecognised" || r.SuggestedPattern != tt.pattern || !slices.Equal(firstEntries(r), tt.order) {
				t.Fatalf("scan: layout %q pattern %q order %q; want unrecognised, %q, %q", r.Layout, r.SuggestedPattern, firstEntries(r), tt.pattern, tt.order)
			}
			for _, c := range r.Checkpoints {
				if c.Status != "keep: uncertain (no rule for this layout)" || (c.Step == nil) != tt.noStep {
					t.Errorf("%s: status %q step %v; want keep: uncertain (no rule for this layout), a step: %v", c.Name, c.Status, c.Step, !tt.noStep)
				}
			}
			table, _, code := runCLI(t, "scan", "--checkpoint.dir="+dir)
			pasted := pastedPattern(t, table)
			if code != exitOK || pasted != "pattern: "+strconv.Quote(tt.pattern) || !strings.Contains(table, "uncertain (kept, never pruned): no rule for this layout") {
				t.Errorf("scan table: exit %d, pasted %q:\n%s", code, pasted, table)
			}

			// Before the pattern: a prune deletes none of them.
			before := remaining(t, dir)
			out, stderr, code := runCLI(t, "prune", "--checkpoint.dir="+dir, "--keep=1", "--execute")
			if code != exitOK || strings.Contains(out, "\ndelete ") || !slices.Equal(remaining(t, dir), before) {
				t.Fatalf("prune --keep=1 --execute: exit %d, left %q of %q\n%s%s", code, remaining(t, dir), before, out, stderr)
			}

			// The pattern pasted into the target's configuration.
			cfg := filepath.Join(t.TempDir(), "config.yml")
			must(t, os.WriteFile(cfg, []byte("targets:\n  - name: models\n    path: "+strconv.Quote(dir)+"\n    "+pasted+"\n"), 0o644))
			p := scanJSON(t, "--config.file="+cfg)
			if p.Layout != "pattern" || len(p.Checkpoints) != f.Want.Complete || !slices.Equal(firstEntries(p), tt.order) {
				t.Fatalf("with %s: layout %q, %d checkpoints in order %q; want pattern, %d in order %q", pasted, p.Layout, len(p.Checkpoints), firstEntries(p), f.Want.Complete, tt.order)
			}
			for i, c := range p.Checkpoints {
				if !slices.Equal(c.Entries, r.Checkpoints[i].Entries) || c.Uncertain != "" {
					t.Errorf("with %s: %q (uncertain %q), where the rule read %q", pasted, c.Entries, c.Uncertain, r.Checkpoints[i].Entries)
				}
			}
			out, stderr, code = runCLI(t, "prune", "--config.file="+cfg, "--keep=1", "--execute")
			newest := p.Checkpoints[len(p.Checkpoints)-1].Entries
			left := remaining(t, dir)
			if code != exitOK || !strings.Contains(out, fmt.Sprintf("deleted %d checkpoints", len(p.Checkpoints)-1)) {
				t.Fatalf("prune with the pattern: exit %d\n%s%s", code, out, stderr)
			}
			for _, c := range p.Checkpoints {
				for _, e := range c.Entries {
					if slices.Contains(left, e) != slices.Contains(newest, e) {
						t.Errorf("after prune --keep=1 with the pattern: %s left %v; want only the newest, %q", e, slices.Contains(left, e), newest)
					}
				}
			}
		})
	}
}

// Issue #27: what training writes beside checkpoints, numbered like them,
// stays invisible: no checkpoint, no pattern suggested, nothing deleted.
func TestNumberedNonCheckpointsStayInvisible(t *testing.T) {
	for _, name := range []string{"tensorboard-events", "training-logs", "samples", "webdataset", "configs"} {
		t.Run(name, func(t *testing.T) {
			_, dir := buildFixture(t, name)
			r := scanJSON(t, "--checkpoint.dir="+dir)
			if r.Layout != "none" || len(r.Checkpoints) != 0 || r.SuggestedPattern != "" || len(r.Candidates) != 0 {
				t.Errorf("scan: layout %q, %d checkpoints, pattern %q, candidates %q; want nothing", r.Layout, len(r.Checkpoints), r.SuggestedPattern, r.Candidates)
			}
			before := remaining(t, dir)
			if out, _, code := runCLI(t, "prune", "--checkpoint.dir="+dir, "--keep=1", "--execute"); code != exitOK || !slices.Equal(remaining(t, dir), before) {
				t.Errorf("prune: exit %d, left %q of %q\n%s", code, remaining(t, dir), before, out)
			}
		})
	}
}

// Issue #27 item 3: where the names read as several series, scan lists
// each one's pattern and counts none; the metrics count none either.
func TestAmbiguousSeriesAreListedNotCounted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "models")
	must(t, os.Mkdir(dir, 0o755))
	for _, name := range []string{"model_1.npz", "model_2.npz", "model_3.npz", "weights_10.npz", "weights_20.npz", "weights_30.npz", "weights_40.npz"} {
		must(t, os.WriteFile(filepath.Join(dir, name), make([]byte, 4096), 0o644))
	}
	r := scanJSON(t, "--checkpoint.dir="+dir)
	want := []string{"model_{step}.npz", "weights_{step}.npz"}
	if got := slices.Sorted(slices.Values(r.Candidates)); len(r.Checkpoints) != 0 || r.SuggestedPattern != "" || !slices.Equal(got, want) {
		t.Errorf("scan: %d checkpoints, pattern %q, candidates %q; want none, none, %q", len(r.Checkpoints), r.SuggestedPattern, got, want)
	}
	table, _, _ := runCLI(t, "scan", "--checkpoint.dir="+dir)
	for _, line := range []string{"read as 2 series: none is counted", `    pattern: "model_{step}.npz"`, `    pattern: "weights_{step}.npz"`} {
		if !strings.Contains(table, line) {
			t.Errorf("scan table lacks %q:\n%s", line, table)
		}
	}
	base, _ := serve(t, "--checkpoint.dir="+dir)
	body := scrapeUntil(t, base+"/metrics", `checkpoint_dir_up{target="models"} 1`)
	for _, line := range []string{`checkpoint_dir_checkpoints{target="models"} 0`, `checkpoint_dir_uncertain_checkpoints{target="models"} 0`} {
		if !strings.Contains(body, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}

// Issue #27 item 2: the metrics count checkpoints no rule names like any
// (bytes, latest, save interval, saves until full) and tell them apart as
// uncertain; a time in their names is never exported as a step.
func TestUnrecognisedMetricsThroughTheBinary(t *testing.T) {
	for _, tt := range []struct {
		fixture      string
		count        string
		latestStep   bool
		intervalSecs string
		newest       string
	}{
		{"unrecognised-mxnet", "5", true, "600", "step 5"},
		{"unrecognised-unixtime", "4", false, "600", "snapshot-1704121200"},
	} {
		t.Run(tt.fixture, func(t *testing.T) {
			_, dir := buildFixture(t, tt.fixture)
			base, _ := serve(t, "--checkpoint.dir="+dir)
			body := scrapeUntil(t, base+"/metrics", `checkpoint_dir_up{target="models"} 1`)
			for _, line := range []string{
				`checkpoint_dir_checkpoints{target="models"} ` + tt.count,
				`checkpoint_dir_uncertain_checkpoints{target="models"} ` + tt.count,
				`checkpoint_dir_info{layout="unrecognised"`,
				`checkpoint_dir_save_interval_seconds{target="models"} ` + tt.intervalSecs,
				`checkpoint_dir_latest_bytes{target="models"} `,
				`checkpoint_dir_saves_until_full{target="models"} `,
			} {
				if !strings.Contains(body, line) {
					t.Errorf("metrics lack %s", line)
				}
			}
			if got := strings.Contains(body, `checkpoint_dir_latest_step{target="models"}`); got != tt.latestStep {
				t.Errorf("checkpoint_dir_latest_step exposed: %v, want %v", got, tt.latestStep)
			}
			if strings.Contains(body, `checkpoint_dir_bytes{target="models"} 0`) {
				t.Errorf("checkpoint_dir_bytes is 0: the checkpoints are not sized")
			}
			// The live projection works from them too, naming the newest
			// by its step, or by its name where that carries a time.
			out, _, code := runCLI(t, "plan", "--checkpoint.dir="+dir)
			if code != exitOK || !strings.Contains(out, "newest ("+tt.newest+")") || !strings.Contains(out, "more saves fit") {
				t.Errorf("plan: exit %d, want the newest named (%s):\n%s", code, tt.newest, out)
			}
		})
	}
}
