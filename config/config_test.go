package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "models"), 0o755)
	os.WriteFile(filepath.Join(dir, "afile"), []byte("x"), 0o644)
	p := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	p := writeConfig(t, `
targets:
  - name: caocrvfy
    path: models
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	tg := c.Targets[0]
	if time.Duration(c.ScanInterval) != DefaultScanInterval || *tg.KeepLast != 3 || tg.Layout != "auto" ||
		time.Duration(*tg.MinAge) != 2*time.Minute || tg.Prune.Execute ||
		tg.Prune.HighWatermark.String() != "85%" || tg.Prune.LowWatermark.String() != "70%" ||
		time.Duration(*tg.Prune.Headroom) != 10*time.Minute {
		t.Errorf("defaults not applied: %+v %+v", c, tg)
	}
	if want := filepath.Join(filepath.Dir(p), "models"); tg.Path != want {
		t.Errorf("relative path = %s, want %s (relative to the file)", tg.Path, want)
	}
}

func TestLoadFull(t *testing.T) {
	p := writeConfig(t, `
scan_interval: 30s
targets:
  - name: caocrvfy
    path: models
    layout: keras
    pattern: "checkpoint_step_{step}.keras"
    keep_last: 2
    keep_every: 5000
    keep_within: 1h
    protect: ["best_*"]
    min_age: 5m
    prune:
      execute: true
      high_watermark: 5GiB
      low_watermark: 20GiB
      headroom: 2m
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	tg := c.Targets[0]
	if *tg.KeepLast != 2 || tg.KeepEvery != 5000 || !tg.Prune.Execute || !tg.Prune.HighWatermark.IsBytes() ||
		tg.Prune.LowWatermark.Free != 20<<30 || tg.ScanTarget().MinAge != 5*time.Minute {
		t.Errorf("values not read: %+v", tg)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, body, key, reason string
	}{
		{"unknown key", "targets:\n  - name: a\n    path: models\n    keep_lats: 3\n", "", "field keep_lats not found"},
		{"duplicate name", "targets:\n  - name: a\n    path: models\n  - name: a\n    path: models\n", "targets[1] (a).name", "duplicate name"},
		{"root path", "targets:\n  - name: a\n    path: /\n", "targets[0] (a).path", "root directory"},
		{"file path", "targets:\n  - name: a\n    path: afile\n", "targets[0] (a).path", "not a directory"},
		{"keep_last 0", "targets:\n  - name: a\n    path: models\n    keep_last: 0\n", "targets[0] (a).keep_last", "at least 1"},
		{"low above high", "targets:\n  - name: a\n    path: models\n    prune: {high_watermark: 70%, low_watermark: 80%}\n", "targets[0] (a).prune.low_watermark", "below high_watermark"},
		{"bad watermark", "targets:\n  - name: a\n    path: models\n    prune: {high_watermark: lots}\n", "", "invalid watermark"},
		{"bad name", "targets:\n  - name: 'a b'\n    path: models\n", "targets[0] (a b).name", "may only contain"},
		{"bad layout", "targets:\n  - name: a\n    path: models\n    layout: pytorch\n", "targets[0] (a).layout", "unknown layout"},
		{"bad pattern", "targets:\n  - name: a\n    path: models\n    pattern: x.keras\n", "targets[0] (a).pattern", "{step}"},
		{"no targets", "scan_interval: 15s\n", "targets", "at least one target"},
		{"empty file", "", "", "empty file"},
		{"missing path", "targets:\n  - name: a\n", "targets[0] (a).path", "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeConfig(t, tt.body)
			_, err := Load(p)
			if err == nil {
				t.Fatalf("config %q loaded without error", tt.body)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *config.Error", err)
			}
			if ce.File != p || ce.Key != tt.key || !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("got file=%q key=%q reason=%q; want file=%q key=%q reason containing %q", ce.File, ce.Key, ce.Reason, p, tt.key, tt.reason)
			}
		})
	}
}

func TestFromDirs(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "run1", "models"), filepath.Join(t.TempDir(), "run2", "models")
	c, err := FromDirs([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if c.Targets[0].Name != "models" || c.Targets[1].Name != "run2_models" {
		t.Errorf("names %q, %q; want models, run2_models", c.Targets[0].Name, c.Targets[1].Name)
	}
	c, err = FromDirs(nil)
	if err != nil || !strings.HasSuffix(c.Targets[0].Path, "/models") {
		t.Errorf("default dir: %v %+v", err, c)
	}
	if _, err := FromDirs([]string{"/"}); err == nil {
		t.Error("--checkpoint.dir=/ accepted")
	}
}

// The shipped example configuration loads (paths need not exist).
func TestExampleConfigLoads(t *testing.T) {
	c, err := Load(filepath.Join("..", "examples", "checkpoint_exporter.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Targets) != 2 || !c.Targets[0].Prune.Execute || c.Targets[1].Layout != "hf" {
		t.Errorf("example parsed as %+v", c.Targets)
	}
}
