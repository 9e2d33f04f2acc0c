package config

import (
	"encoding/json"
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
	must(t, os.Mkdir(filepath.Join(dir, "models"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "afile"), []byte("x"), 0o644))
	p := filepath.Join(dir, "config.yml")
	must(t, os.WriteFile(p, []byte(body), 0o644))
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
	if time.Duration(c.ScanInterval) != 15*time.Second || tg.KeepLast != 3 || tg.Layout != "auto" ||
		time.Duration(tg.MinAge) != 2*time.Minute || tg.Prune.Execute ||
		tg.Prune.HighWatermark.String() != "85%" || tg.Prune.LowWatermark.String() != "70%" ||
		time.Duration(tg.Prune.Headroom) != 10*time.Minute {
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
	if tg.KeepLast != 2 || tg.KeepEvery != 5000 || !tg.Prune.Execute || !tg.Prune.HighWatermark.IsBytes() ||
		tg.Prune.LowWatermark.Free != 20<<30 || time.Duration(tg.MinAge) != 5*time.Minute {
		t.Errorf("values not read: %+v", tg)
	}
}

// BadCase is one file of testdata/bad: a configuration start-up refuses,
// with the key and reason it must name. Disk cases are wrong only because of
// what is on disk (a path that is a file), so Parse accepts them.
type badCase struct {
	File   string
	Key    string `json:"key"`
	Reason string `json:"reason"`
	Disk   bool   `json:"disk"`
}

func badCases(t *testing.T) []badCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yml"))
	must(t, err)
	var out []badCase
	for _, f := range files {
		data, err := os.ReadFile(f)
		must(t, err)
		header, _, _ := strings.Cut(string(data), "\n")
		c := badCase{File: f}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(header, "# want: ")), &c); err != nil {
			t.Fatalf("%s: header %q: %v", f, header, err)
		}
		out = append(out, c)
	}
	if len(out) < 10 {
		t.Fatalf("only %d bad configurations in testdata/bad", len(out))
	}
	return out
}

func TestLoadErrors(t *testing.T) {
	for _, tt := range badCases(t) {
		t.Run(filepath.Base(tt.File), func(t *testing.T) {
			_, err := Load(tt.File)
			checkError(t, err, tt)
			_, err = Parse(tt.File)
			if tt.Disk {
				if err != nil {
					t.Errorf("Parse, which must not look at the disk, refused: %v", err)
				}
				return
			}
			checkError(t, err, tt)
		})
	}
}

func checkError(t *testing.T, err error, tt badCase) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s loaded without error", tt.File)
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *config.Error", err)
	}
	if ce.File != tt.File || ce.Key != tt.Key || !strings.Contains(ce.Reason, tt.Reason) {
		t.Errorf("got file=%q key=%q reason=%q; want file=%q key=%q reason containing %q", ce.File, ce.Key, ce.Reason, tt.File, tt.Key, tt.Reason)
	}
}

// A partly given prune section keeps the defaults of the keys it omits;
// Parse never looks at the target directory.
func TestPartialSectionsKeepDefaults(t *testing.T) {
	p := writeConfig(t, `
targets:
  - name: a
    path: /nonexistent/checkpoints
    prune: {execute: true}
  - name: b
    path: /nonexistent/other
    keep_last: 7
`)
	c, err := Parse(p)
	must(t, err)
	a, b := c.Targets[0], c.Targets[1]
	if !a.Prune.Execute || a.Prune.HighWatermark.String() != "85%" || a.Prune.LowWatermark.String() != "70%" ||
		a.Prune.Headroom != DefaultPrune.Headroom || a.KeepLast != 3 {
		t.Errorf("target a: %+v, want execute with default watermarks, headroom and keep_last", a)
	}
	if b.KeepLast != 7 || b.Prune.Execute || b.MinAge != DefaultTarget.MinAge || b.Layout != "auto" {
		t.Errorf("target b: %+v", b)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
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
	if len(c.Targets) != 3 || !c.Targets[0].Prune.Execute || c.Targets[1].Layout != "hf" ||
		c.Targets[2].MaxBytes != 2<<40 || c.Targets[2].Prune.Lock != "lockfile" || c.Targets[0].Prune.Lock != "flock" {
		t.Errorf("example parsed as %+v", c.Targets)
	}
}
