// Package config loads checkpoint_exporter's YAML configuration: the targets
// to watch and, per target, its retention and pruning policy. Loading is
// strict: unknown keys, impossible values and unsafe paths are errors that
// name the file, the key and the reason, so a bad file stops the exporter
// before it listens.
//
// It imports checkpoint, layout and targetdir for the units and names it
// validates, and must not import pruner, collector or anything above them.
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
	"github.com/checkpoint-exporter/checkpoint_exporter/layout"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// MinScanInterval is the shortest scan_interval accepted: at 1ms the
// background scans (and the autonomous guard behind them) burned more than a
// CPU.
const MinScanInterval = 100 * time.Millisecond

// DefaultDir is the quick start's target when no directory is given.
const DefaultDir = "./models"

// DefaultConfig is the configuration's defaults, documented in the README;
// DefaultTarget is every target's. UnmarshalYAML starts from them, so a key
// that is absent keeps its default and a key that is present, even as zero,
// is what the file says.
var (
	DefaultConfig = Config{ScanInterval: model.Duration(15 * time.Second)}
	DefaultTarget = Target{
		Layout:   layout.Auto,
		KeepLast: 3,
		MinAge:   model.Duration(2 * time.Minute),
		Prune:    DefaultPrune,
	}
	DefaultPrune = Prune{
		Lock:          "flock",
		HighWatermark: checkpoint.MustWatermark("85%"),
		LowWatermark:  checkpoint.MustWatermark("70%"),
		Headroom:      model.Duration(10 * time.Minute),
	}
)

// Config is the whole file.
type Config struct {
	ScanInterval model.Duration `yaml:"scan_interval"`
	Targets      []Target       `yaml:"targets"`
}

// UnmarshalYAML reads the file over DefaultConfig.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	type plain Config
	return unmarshal((*plain)(c))
}

// Target is one checkpoint directory and its policy.
type Target struct {
	Name       string         `yaml:"name"`
	Path       string         `yaml:"path"`
	HostPath   string         `yaml:"host_path"`
	Layout     string         `yaml:"layout"`
	Pattern    string         `yaml:"pattern"`
	KeepLast   int            `yaml:"keep_last"`
	KeepEvery  int64          `yaml:"keep_every"`
	KeepWithin model.Duration `yaml:"keep_within"`
	Protect    []string       `yaml:"protect"`
	MinAge     model.Duration `yaml:"min_age"`
	// MaxBytes caps the disk usage of the target's checkpoints (0: no cap).
	MaxBytes ByteSize `yaml:"max_bytes"`
	Prune    Prune    `yaml:"prune"`
	// Offload, when set, copies checkpoints elsewhere before any is pruned.
	Offload *Offload `yaml:"offload"`
}

// ByteSize is a size in bytes, written as 2TiB, 500GB or 1048576.
type ByteSize uint64

// UnmarshalYAML reads a size with checkpoint.ParseBytes.
func (b *ByteSize) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	n, err := checkpoint.ParseBytes(s)
	if err != nil {
		return err
	}
	*b = ByteSize(n)
	return nil
}

// UnmarshalYAML reads a target over DefaultTarget (its prune section
// included: keys the file omits there keep DefaultPrune's values).
func (t *Target) UnmarshalYAML(unmarshal func(any) error) error {
	*t = DefaultTarget
	type plain Target
	return unmarshal((*plain)(t))
}

// Prune is a target's pruning policy.
type Prune struct {
	Execute bool `yaml:"execute"`
	// Lock is how a prune keeps other pruners of the directory out: flock
	// (falling back to a lock file where the filesystem has none) or
	// lockfile (Lustre localflock, several nodes on one directory).
	Lock          string               `yaml:"lock"`
	HighWatermark checkpoint.Watermark `yaml:"high_watermark"`
	LowWatermark  checkpoint.Watermark `yaml:"low_watermark"`
	Headroom      model.Duration       `yaml:"headroom"`
	// AttributeCache, when set, is how long the target's filesystem client
	// may answer from a cache of its own: a FUSE daemon's (sshfs's
	// cache_timeout, rclone's --dir-cache-time). It replaces the default of
	// the filesystem type, and is required for a FUSE filesystem whose
	// caching the exporter does not know (README, "Shared and network
	// filesystems").
	AttributeCache *model.Duration `yaml:"attribute_cache"`
}

// MaxAttributeCache bounds prune.attribute_cache: every prune waits that
// long before its first deletion.
const MaxAttributeCache = time.Hour

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

// Load reads, defaults and validates a configuration file, the target
// directories included (see CheckDirs). Relative target paths are taken
// relative to the file's directory.
func Load(file string) (*Config, error) {
	c, err := Parse(file)
	if err != nil {
		return nil, err
	}
	if err := c.CheckDirs(file); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse reads, defaults and validates a configuration file without looking
// at the target directories: what check-config does.
func Parse(file string) (*Config, error) {
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
	if err := c.validate(file); err != nil {
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
	c := DefaultConfig
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
		t := DefaultTarget
		t.Name, t.Path = name, abs
		c.Targets = append(c.Targets, t)
	}
	const source = "--checkpoint.dir"
	if err := c.validate(source); err != nil {
		return nil, err
	}
	if err := c.CheckDirs(source); err != nil {
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

// validate checks the whole configuration without touching the disk.
func (c *Config) validate(file string) error {
	if c.ScanInterval <= 0 {
		return &Error{File: file, Key: "scan_interval", Reason: "must be positive"}
	}
	if time.Duration(c.ScanInterval) < MinScanInterval {
		return &Error{File: file, Key: "scan_interval", Reason: fmt.Sprintf("%s is below the minimum %s (a scan more often than that only burns CPU; Prometheus scrapes every few seconds at most)", c.ScanInterval, model.Duration(MinScanInterval))}
	}
	if len(c.Targets) == 0 {
		return &Error{File: file, Key: "targets", Reason: "at least one target is needed"}
	}
	names := map[string]int{}
	for i := range c.Targets {
		t := &c.Targets[i]
		if err := t.validate(); err != nil {
			return t.errorAt(file, i, err)
		}
		if j, dup := names[t.Name]; dup {
			return t.errorAt(file, i, keyError{"name", fmt.Sprintf("duplicate name %q (also targets[%d])", t.Name, j)})
		}
		names[t.Name] = i
	}
	return nil
}

// CheckDirs refuses target paths that exist but are no directory a pruner
// may work in, and lock files where the filesystem cannot show other hosts'
// (CheckLocks): what start-up and reload check beyond validation.
func (c *Config) CheckDirs(file string) error {
	for i := range c.Targets {
		t := &c.Targets[i]
		if err := checkDir(t.Path); err != nil {
			return t.errorAt(file, i, keyError{"path", err.Error()})
		}
	}
	if err := c.CheckLocks(file); err != nil {
		return err
	}
	return c.CheckOverlap(file)
}

// keyError is a target's validation error: which key, and why.
type keyError struct{ key, reason string }

func (e keyError) Error() string { return e.key + ": " + e.reason }

func failf(key, format string, args ...any) error {
	return keyError{key, fmt.Sprintf(format, args...)}
}

// errorAt places a target's keyError in the file.
func (t *Target) errorAt(file string, i int, err error) error {
	var ke keyError
	if !errors.As(err, &ke) {
		return &Error{File: file, Key: fmt.Sprintf("targets[%d]", i), Reason: err.Error()}
	}
	key := fmt.Sprintf("targets[%d].%s", i, ke.key)
	if t.Name != "" {
		key = fmt.Sprintf("targets[%d] (%s).%s", i, t.Name, ke.key)
	}
	return &Error{File: file, Key: key, Reason: ke.reason}
}

// validate checks one target without touching the disk; it cleans the path.
func (t *Target) validate() error {
	switch {
	case t.Name == "":
		return failf("name", "missing")
	case !nameRe.MatchString(t.Name):
		return failf("name", "%q may only contain letters, digits, '_', '.' and '-'", t.Name)
	}
	if err := checkPath(t.Path); err != nil {
		return failf("path", "%v", err)
	}
	t.Path = filepath.Clean(t.Path)
	if t.HostPath != "" {
		if !filepath.IsAbs(t.HostPath) {
			return failf("host_path", "%q must be absolute: the target's path on the node", t.HostPath)
		}
		t.HostPath = filepath.Clean(t.HostPath)
	}
	if !slices.Contains(layout.Names(), t.Layout) {
		return failf("layout", "unknown layout %q (want one of %s)", t.Layout, strings.Join(layout.Names(), ", "))
	}
	if t.Pattern != "" {
		if _, err := layout.CompilePattern(t.Pattern); err != nil {
			return failf("pattern", "%v", err)
		}
	}
	switch {
	case t.KeepLast < 1:
		return failf("keep_last", "must be at least 1 (the newest checkpoint is needed to resume), got %d", t.KeepLast)
	case t.KeepEvery < 0:
		return failf("keep_every", "must not be negative, got %d", t.KeepEvery)
	case t.KeepWithin < 0:
		return failf("keep_within", "must not be negative")
	case t.MinAge < 0:
		return failf("min_age", "must not be negative")
	}
	for _, g := range t.Protect {
		if _, err := path.Match(g, ""); err != nil || g == "" || strings.Contains(g, "/") {
			return failf("protect", "invalid glob %q (a name pattern such as best_*)", g)
		}
	}
	if err := t.Prune.validate(); err != nil {
		return err
	}
	if c := t.Prune.AttributeCache; c != nil && *c > 0 && time.Duration(t.MinAge) <= time.Duration(*c)+targetdir.ClockGrain {
		return failf("min_age", "%s must exceed prune.attribute_cache %s and a second (caches count whole seconds): a save another node is writing can show an mtime that old on this filesystem and be taken for a finished one", t.MinAge, *c)
	}
	return t.Offload.validate()
}

func (p *Prune) validate() error {
	if p.Lock != "flock" && p.Lock != "lockfile" {
		return failf("prune.lock", "unknown lock mode %q (want flock or lockfile)", p.Lock)
	}
	if p.Headroom < 0 {
		return failf("prune.headroom", "must not be negative")
	}
	// (A negative duration is refused by the YAML decoder already.)
	switch c := p.AttributeCache; {
	case c == nil:
	case time.Duration(*c) > MaxAttributeCache:
		return failf("prune.attribute_cache", "%s is more than %s: every prune would wait that long before its first deletion; lower the mount's cache timeout instead", *c, model.Duration(MaxAttributeCache))
	}
	hi, lo := p.HighWatermark, p.LowWatermark
	switch {
	case !hi.IsBytes() && !lo.IsBytes() && lo.Ratio >= hi.Ratio:
		return failf("prune.low_watermark", "%s must be below high_watermark %s", lo, hi)
	case hi.IsBytes() && lo.IsBytes() && lo.Free <= hi.Free:
		return failf("prune.low_watermark", "%s of free space must be more than high_watermark %s", lo, hi)
	}
	return nil
}

// checkPath refuses paths a pruner must never work in, from the text alone.
func checkPath(p string) error {
	if strings.TrimSpace(p) == "" {
		return errors.New("missing")
	}
	if abs, err := filepath.Abs(p); err == nil && filepath.Clean(abs) == "/" {
		return fmt.Errorf("%q is the root directory", p)
	}
	return nil
}

// checkDir refuses a path that resolves to the root directory or that exists
// and is not a directory. A path that does not exist yet is accepted (the
// training job may create it later; the target reports down until then).
func checkDir(p string) error {
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
