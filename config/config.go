// Package config loads checkpoint_exporter's YAML configuration: the targets
// to watch and, per target, its retention and pruning policy. Loading is
// strict: unknown keys, impossible values and unsafe paths are errors that
// name the file, the key and the reason, so a bad file stops the exporter
// before it listens.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// Defaults, documented in the README.
const (
	DefaultScanInterval = 15 * time.Second
	DefaultKeepLast     = 3
	DefaultMinAge       = 2 * time.Minute
	DefaultHeadroom     = 10 * time.Minute
	DefaultHigh         = "85%"
	DefaultLow          = "70%"
	DefaultDir          = "./models"
)

// Config is the whole file.
type Config struct {
	ScanInterval model.Duration `yaml:"scan_interval"`
	Targets      []Target       `yaml:"targets"`
}

// Target is one checkpoint directory and its policy.
type Target struct {
	Name       string          `yaml:"name"`
	Path       string          `yaml:"path"`
	Layout     string          `yaml:"layout"`
	Pattern    string          `yaml:"pattern"`
	KeepLast   *int            `yaml:"keep_last"`
	KeepEvery  int64           `yaml:"keep_every"`
	KeepWithin model.Duration  `yaml:"keep_within"`
	Protect    []string        `yaml:"protect"`
	MinAge     *model.Duration `yaml:"min_age"`
	Prune      Prune           `yaml:"prune"`
}

// Prune is a target's pruning policy.
type Prune struct {
	Execute       bool                  `yaml:"execute"`
	HighWatermark *checkpoint.Watermark `yaml:"high_watermark"`
	LowWatermark  *checkpoint.Watermark `yaml:"low_watermark"`
	Headroom      *model.Duration       `yaml:"headroom"`
}

// Error is a configuration error: which file, which key, what is wrong.
type Error struct {
	File   string
	Key    string
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Key != "" {
		b.WriteString(": ")
		b.WriteString(e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

var nameRe = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

// Load reads, defaults and validates a configuration file. Relative target
// paths are taken relative to the file's directory.
func Load(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Reason: "empty file: at least one target is needed"}
		}
		return nil, &Error{File: file, Reason: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	base := filepath.Dir(file)
	for i := range c.Targets {
		if p := c.Targets[i].Path; p != "" && !filepath.IsAbs(p) {
			c.Targets[i].Path = filepath.Join(base, p)
		}
	}
	if err := c.finish(file); err != nil {
		return nil, err
	}
	return &c, nil
}

// FromDirs builds the quick-start configuration: one target per directory,
// named after it, layout auto and the default policy (dry run).
func FromDirs(dirs []string) (*Config, error) {
	if len(dirs) == 0 {
		dirs = []string{DefaultDir}
	}
	var c Config
	seen := map[string]int{}
	for _, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("--checkpoint.dir %s: %w", d, err)
		}
		name := sanitizeName(filepath.Base(abs))
		if parent := sanitizeName(filepath.Base(filepath.Dir(abs))); seen[name] > 0 && parent != "" {
			name = parent + "_" + name
		}
		seen[name]++
		c.Targets = append(c.Targets, Target{Name: name, Path: abs})
	}
	if err := c.finish("--checkpoint.dir"); err != nil {
		return nil, err
	}
	return &c, nil
}

var badNameChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func sanitizeName(s string) string {
	s = badNameChars.ReplaceAllString(s, "_")
	if s == "" || s == "." || s == "_" {
		return "root"
	}
	return s
}

// finish applies defaults and validates.
func (c *Config) finish(file string) error {
	if c.ScanInterval == 0 {
		c.ScanInterval = model.Duration(DefaultScanInterval)
	}
	if c.ScanInterval < 0 {
		return &Error{File: file, Key: "scan_interval", Reason: "must be positive"}
	}
	if len(c.Targets) == 0 {
		return &Error{File: file, Key: "targets", Reason: "at least one target is needed"}
	}
	names := map[string]int{}
	for i := range c.Targets {
		t := &c.Targets[i]
		key := func(k string) string {
			if t.Name != "" {
				return fmt.Sprintf("targets[%d] (%s).%s", i, t.Name, k)
			}
			return fmt.Sprintf("targets[%d].%s", i, k)
		}
		fail := func(k, format string, args ...any) error {
			return &Error{File: file, Key: key(k), Reason: fmt.Sprintf(format, args...)}
		}
		if t.Name == "" {
			return fail("name", "missing")
		}
		if !nameRe.MatchString(t.Name) {
			return fail("name", "%q may only contain letters, digits, '_', '.' and '-'", t.Name)
		}
		if j, dup := names[t.Name]; dup {
			return fail("name", "duplicate name %q (also targets[%d])", t.Name, j)
		}
		names[t.Name] = i
		if err := checkPath(t.Path); err != nil {
			return fail("path", "%v", err)
		}
		t.Path = filepath.Clean(t.Path)
		if t.Layout == "" {
			t.Layout = checkpoint.LayoutAuto
		}
		if !slices.Contains(checkpoint.LayoutNames(), t.Layout) {
			return fail("layout", "unknown layout %q (want one of %s)", t.Layout, strings.Join(checkpoint.LayoutNames(), ", "))
		}
		if t.Pattern != "" {
			if _, err := checkpoint.CompilePattern(t.Pattern); err != nil {
				return fail("pattern", "%v", err)
			}
		}
		if t.KeepLast == nil {
			n := DefaultKeepLast
			t.KeepLast = &n
		}
		if *t.KeepLast < 1 {
			return fail("keep_last", "must be at least 1 (the newest checkpoint is needed to resume), got %d", *t.KeepLast)
		}
		if t.KeepEvery < 0 {
			return fail("keep_every", "must not be negative, got %d", t.KeepEvery)
		}
		if t.KeepWithin < 0 {
			return fail("keep_within", "must not be negative")
		}
		for _, g := range t.Protect {
			if _, err := path.Match(g, ""); err != nil || g == "" || strings.Contains(g, "/") {
				return fail("protect", "invalid glob %q (a name pattern such as best_*)", g)
			}
		}
		if t.MinAge == nil {
			d := model.Duration(DefaultMinAge)
			t.MinAge = &d
		}
		if *t.MinAge < 0 {
			return fail("min_age", "must not be negative")
		}
		p := &t.Prune
		if p.HighWatermark == nil {
			w := checkpoint.MustWatermark(DefaultHigh)
			p.HighWatermark = &w
		}
		if p.LowWatermark == nil {
			w := checkpoint.MustWatermark(DefaultLow)
			p.LowWatermark = &w
		}
		if p.Headroom == nil {
			d := model.Duration(DefaultHeadroom)
			p.Headroom = &d
		}
		if *p.Headroom < 0 {
			return fail("prune.headroom", "must not be negative")
		}
		hi, lo := *p.HighWatermark, *p.LowWatermark
		switch {
		case !hi.IsBytes() && !lo.IsBytes() && lo.Ratio >= hi.Ratio:
			return fail("prune.low_watermark", "%s must be below high_watermark %s", lo, hi)
		case hi.IsBytes() && lo.IsBytes() && lo.Free <= hi.Free:
			return fail("prune.low_watermark", "%s of free space must be more than high_watermark %s", lo, hi)
		}
	}
	return nil
}

// checkPath refuses paths a pruner must never work in. A path that does not
// exist yet is accepted (the training job may create it later; the target
// reports down until then).
func checkPath(p string) error {
	if strings.TrimSpace(p) == "" {
		return errors.New("missing")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	real := abs
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		real = r
	}
	if filepath.Clean(real) == "/" {
		return fmt.Errorf("%q is the root directory", p)
	}
	st, err := os.Stat(real)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("%q is not a directory", p)
	}
	return nil
}

// ScanTarget is the target as the scanner sees it.
func (t *Target) ScanTarget() checkpoint.Target {
	return checkpoint.Target{
		Name:    t.Name,
		Path:    t.Path,
		Layout:  t.Layout,
		Pattern: t.Pattern,
		MinAge:  time.Duration(*t.MinAge),
	}
}

// Find returns the target called name, or nil.
func (c *Config) Find(name string) *Target {
	for i := range c.Targets {
		if c.Targets[i].Name == name {
			return &c.Targets[i]
		}
	}
	return nil
}
