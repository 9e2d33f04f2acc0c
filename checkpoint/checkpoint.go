package checkpoint

import (
	"slices"
	"sort"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// Checkpoint is one checkpoint of a target: a single top-level file or
// directory, or a group of top-level files that share a prefix.
type Checkpoint struct {
	// Name is the entry name, or the shared prefix of a file group (TensorFlow).
	Name string
	Step int64
	// Entries are the top-level names in the target directory that make up the
	// checkpoint; deleting the checkpoint means deleting exactly these.
	Entries []Entry
	// Bytes is disk usage (st_blocks*512), hard links counted once per target.
	Bytes int64
	Files int64
	// ModTime is the newest modification time of anything in the checkpoint.
	ModTime time.Time
	// ChangeTime is the newest status change (ctime) of anything in the
	// checkpoint as of its last walk; unlike mtime it cannot be set back, so
	// a deleter can tell whether anything changed inside since.
	ChangeTime time.Time
	Incomplete bool
	// Why says why a checkpoint is incomplete when its layout's markers or
	// siblings tell ("lacks model_config.json that 50/ has").
	Why string
	// Torn says why the save is known to be cut short (ENOSPC, a kill): a
	// file shorter than its own header says, an end record missing. Only
	// conclusive evidence sets it, and only once nothing has written to the
	// checkpoint for min_age: a save still being written is Incomplete. A
	// torn save is no complete checkpoint.
	Torn string
	// Suspect says why the save may be cut short without conclusive
	// evidence (far shorter than its siblings, in a format with no end
	// marker). It counts as complete, but never as the newest one kept.
	Suspect string
	// Pinned says which framework state file pins the checkpoint, if any.
	Pinned string
	// Uncertain says why layout detection is not sure of this checkpoint's
	// reading (and which setting settles it): it is counted, never pruned.
	Uncertain string
	// Unrecognised: no layout's rule names it; the general series rule
	// counted it. It is never pruned and fills no keep_last slot.
	Unrecognised bool
	// NoStep: its name carries a time, not a step; Step holds that time as
	// a number, which orders the checkpoints but is never shown as a step.
	NoStep bool
}

// Entry identifies one top-level directory entry of a checkpoint as it was
// when scanned, so that a deleter can tell whether it changed since.
type Entry struct {
	Name    string
	Ino     uint64
	Dev     uint64
	Size    int64 // st_size, bytes
	Mtime   int64 // nanoseconds
	Ctime   int64 // nanoseconds
	Dir     bool
	Symlink bool
}

// Snapshot is the result of one scan of one target.
type Snapshot struct {
	Target Target
	// Layout is the layout that recognised the checkpoints and Series the name
	// pattern it chose ("" when nothing matched).
	Layout string
	Series string
	// Evidence says what the layout recognised the checkpoints by: names,
	// state files, markers, links.
	Evidence []string
	// Framework is the training framework the names and state files point
	// to, a hint for the operator ("" when nothing was recognised).
	Framework string
	// Suggested is the pattern: that makes the checkpoints the general
	// series rule counted (layout unrecognised) prunable, read alike.
	Suggested string
	// Candidates are the patterns of series the general rule could not
	// choose between; it counted none of them.
	Candidates []string
	// Checkpoints are sorted by ascending step (then name).
	Checkpoints []Checkpoint
	// Ignored are top-level names that are not part of any checkpoint.
	Ignored []string
	// Err is set when the scan failed as a whole (the target is down).
	Err error
	FS  *targetdir.FSStats
	// Errors counts entries that could not be read in this scan; ErrorsTotal
	// counts them over the life of the scanner.
	Errors      uint64
	ErrorsTotal uint64
	Duration    time.Duration
	Time        time.Time
	// WalkerErr is why this background scan could not size checkpoints in a
	// walker process at idle priority and did so itself, at normal priority.
	WalkerErr error
	// WalkerFailuresTotal counts, over the life of the scanner, the
	// background scans whose walker process failed or was killed (frozen
	// while the filesystem answered) and that were finished in-process.
	WalkerFailuresTotal uint64
}

// Up reports whether the scan succeeded.
func (s *Snapshot) Up() bool { return s != nil && s.Err == nil }

// Whole reports whether c is a complete checkpoint: not being written, not
// torn. (A suspect one is whole: there is no conclusive evidence against it.)
func (c *Checkpoint) Whole() bool { return !c.Incomplete && c.Torn == "" }

// Complete returns the complete checkpoints, oldest step first.
func (s *Snapshot) Complete() []Checkpoint {
	out := make([]Checkpoint, 0, len(s.Checkpoints))
	for _, c := range s.Checkpoints {
		if c.Whole() {
			out = append(out, c)
		}
	}
	return out
}

// Torn returns the torn saves, oldest step first.
func (s *Snapshot) Torn() []Checkpoint {
	var out []Checkpoint
	for _, c := range s.Checkpoints {
		if c.Torn != "" {
			out = append(out, c)
		}
	}
	return out
}

// Latest returns the newest complete checkpoint that is not suspect (the
// newest suspect one if all are), or nil.
func (s *Snapshot) Latest() *Checkpoint {
	var suspect *Checkpoint
	for i := len(s.Checkpoints) - 1; i >= 0; i-- {
		c := &s.Checkpoints[i]
		switch {
		case !c.Whole():
		case c.Suspect == "":
			return c
		case suspect == nil:
			suspect = c
		}
	}
	return suspect
}

// Bytes is the disk usage of all checkpoints, complete or not.
func (s *Snapshot) Bytes() int64 {
	var n int64
	for _, c := range s.Checkpoints {
		n += c.Bytes
	}
	return n
}

// recentSaves is how many of the newest saves the save interval looks at.
const recentSaves = 10

// MinSaveGap is the shortest gap between two checkpoints' modification times
// that counts as a save interval. Checkpoints copied or extracted together
// (cp, rsync, tar) are milliseconds apart; taken as saves they would claim a
// write rate the disk never saw (84 MB every millisecond) and make a prune's
// headroom ask for everything. No training loop saves twice a second.
const MinSaveGap = 500 * time.Millisecond

// SaveInterval is the median time between the most recent complete saves,
// judged by their modification times; gaps shorter than MinSaveGap are not
// save intervals and are left out. ok is false when no gap is left (fewer
// than two saves, or only saves made at once).
func (s *Snapshot) SaveInterval() (d time.Duration, ok bool) {
	// The newest complete saves only, without copying every checkpoint
	// (a status page asks this of thousands).
	times := make([]time.Time, 0, recentSaves+1)
	for i := len(s.Checkpoints) - 1; i >= 0 && len(times) < recentSaves+1; i-- {
		if c := &s.Checkpoints[i]; c.Whole() {
			times = append(times, c.ModTime)
		}
	}
	if len(times) < 2 {
		return 0, false
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	gaps := make([]time.Duration, 0, len(times)-1)
	for i := 1; i < len(times); i++ {
		if g := times[i].Sub(times[i-1]); g >= MinSaveGap {
			gaps = append(gaps, g)
		}
	}
	if len(gaps) == 0 {
		return 0, false
	}
	slices.Sort(gaps)
	mid := len(gaps) / 2
	if len(gaps)%2 == 1 {
		return gaps[mid], true
	}
	return (gaps[mid-1] + gaps[mid]) / 2, true
}

// WriteRate is the observed checkpoint write rate in bytes per second: the
// newest checkpoint's size over the save interval. ok is false when unknown.
func (s *Snapshot) WriteRate() (bytesPerSecond float64, ok bool) {
	latest := s.Latest()
	iv, ok := s.SaveInterval()
	if latest == nil || !ok || iv <= 0 {
		return 0, false
	}
	return float64(latest.Bytes) / iv.Seconds(), true
}
