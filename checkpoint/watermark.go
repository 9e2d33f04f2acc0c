package checkpoint

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/alecthomas/units"

	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// ParseBytes parses a byte size: "84MB" (powers of 1000), "10GiB" (powers of
// 1024) or a plain number of bytes.
func ParseBytes(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n, nil
	}
	n, err := units.ParseStrictBytes(s)
	if err != nil {
		return 0, fmt.Errorf("invalid byte size %q (want e.g. 84MB, 10GiB)", s)
	}
	if n < 0 {
		return 0, fmt.Errorf("invalid byte size %q: negative", s)
	}
	return uint64(n), nil
}

// Watermark is a filesystem fill level, given either as a used share of the
// filesystem ("85%") or as an amount of free space ("10GiB": as a high
// watermark, free space below it; as a low watermark, free space at least it).
type Watermark struct {
	// Ratio is the used share (0..1) when the watermark is a percentage.
	Ratio float64
	// Free is the free space in bytes when the watermark is a size.
	Free    uint64
	isBytes bool
	text    string
}

// ParseWatermark parses "85%" (a used share) or a byte size such as
// "10GiB" (free space).
func ParseWatermark(s string) (Watermark, error) {
	s = strings.TrimSpace(s)
	if v, ok, err := parsePercent(s); ok {
		if err != nil {
			return Watermark{}, fmt.Errorf("invalid watermark %q: %w", s, err)
		}
		return Watermark{Ratio: v / 100, text: s}, nil
	}
	n, err := ParseBytes(s)
	if err != nil {
		return Watermark{}, fmt.Errorf("invalid watermark %q: want a percentage (85%%) or a free-space size (10GiB)", s)
	}
	return Watermark{Free: n, isBytes: true, text: s}, nil
}

// ParseFreeGoal parses a prune's goal given as free space, as prune
// --free-target takes it: "20%" (a free share: at most 80% used) or a byte
// size such as "10GiB" (at least that much free). "" is no goal.
func ParseFreeGoal(s string) (Watermark, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Watermark{}, nil
	}
	if v, ok, err := parsePercent(s); ok {
		if err != nil {
			return Watermark{}, fmt.Errorf("invalid free-space goal %q: %w", s, err)
		}
		return UsedAtMost(100 - v), nil
	}
	return ParseWatermark(s)
}

// parsePercent parses "85%": ok says s is a percentage at all, err that it
// is not strictly between 0 and 100.
func parsePercent(s string) (v float64, ok bool, err error) {
	p, ok := strings.CutSuffix(s, "%")
	if !ok {
		return 0, false, nil
	}
	v, err = strconv.ParseFloat(strings.TrimSpace(p), 64)
	if err != nil || math.IsNaN(v) || v <= 0 || v >= 100 {
		return 0, true, errors.New("a percentage must be between 0% and 100%, exclusive")
	}
	return v, true, nil
}

// UsedAtMost is the watermark "at most percent of the filesystem used"
// (0 < percent < 100), as a low watermark of 70% is.
func UsedAtMost(percent float64) Watermark {
	return Watermark{Ratio: percent / 100, text: strconv.FormatFloat(percent, 'g', -1, 64) + "%"}
}

// MustWatermark is ParseWatermark for constants.
func MustWatermark(s string) Watermark {
	w, err := ParseWatermark(s)
	if err != nil {
		panic(err)
	}
	return w
}

// IsBytes reports whether the watermark is a free-space size.
func (w Watermark) IsBytes() bool { return w.isBytes }

func (w Watermark) String() string { return w.text }

// IsZero reports whether the watermark is unset.
func (w Watermark) IsZero() bool { return w.text == "" }

// Reached reports whether fs is at or past w used as a high watermark.
func (w Watermark) Reached(fs targetdir.FSStats) bool {
	if w.isBytes {
		return fs.AvailBytes < w.Free
	}
	return fs.UsedRatio() >= w.Ratio
}

// Shortfall is how many bytes must be freed on fs for w, used as a low
// watermark, to hold (usage at or below the ratio, or free space at least the
// size). Zero means it holds.
func (w Watermark) Shortfall(fs targetdir.FSStats) uint64 {
	var want uint64
	if w.isBytes {
		want = w.Free
	} else {
		// Usage may be at most Ratio of the size: floor, so that an exact
		// ratio is not missed by a rounding error.
		want = fs.SizeBytes - min(fs.SizeBytes, uint64(math.Floor(w.Ratio*float64(fs.SizeBytes))))
	}
	if fs.AvailBytes >= want {
		return 0
	}
	return want - fs.AvailBytes
}

// UnmarshalYAML reads a watermark from YAML.
func (w *Watermark) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	v, err := ParseWatermark(s)
	if err != nil {
		return err
	}
	*w = v
	return nil
}

// MarshalYAML writes the watermark as written.
func (w Watermark) MarshalYAML() (any, error) { return w.text, nil }
