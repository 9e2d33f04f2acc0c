package statuspage

import (
	"encoding/base64"
	"math"
	"time"
	"unicode/utf8"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/history"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
	"github.com/checkpoint-exporter/checkpoint_exporter/verdict"
)

// Status is what the page shows and /api/v1/status returns.
type Status struct {
	Version     string    `json:"version"`
	GeneratedAt time.Time `json:"generated_at"`
	// HistoryFile is the deletion history's file ("" when it is kept in
	// memory only and lost at restart).
	HistoryFile string   `json:"history_file"`
	Targets     []Target `json:"targets"`
}

// Target is one target's state.
type Target struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// PathBase64 is the path's exact bytes when they are not valid UTF-8.
	PathBase64 string `json:"path_base64,omitempty"`
	// Up: the last scan succeeded; Error says why not. Scanned is false
	// until the first scan since start (or since a reload changed the
	// target).
	Up        bool      `json:"up"`
	Scanned   bool      `json:"scanned"`
	Error     string    `json:"error,omitempty"`
	ScannedAt time.Time `json:"scanned_at,omitzero"`
	Layout    string    `json:"layout,omitempty"`
	Series    string    `json:"series,omitempty"`
	Framework string    `json:"framework,omitempty"`
	// SuggestedPattern is the pattern: that makes the checkpoints of a
	// layout no rule names (layout unrecognised: all kept as uncertain)
	// prunable, read alike; Candidates, where the names read as several
	// series and none is counted, are each series' pattern.
	SuggestedPattern string   `json:"suggested_pattern,omitempty"`
	Candidates       []string `json:"candidates,omitempty"`
	Policy           Policy   `json:"policy"`

	Filesystem *Filesystem `json:"filesystem,omitempty"`
	// CheckpointBytes is the disk usage of all its checkpoints.
	CheckpointBytes int64 `json:"checkpoint_bytes"`
	// Counts are how many checkpoints have each status (keep, prunable,
	// incomplete) and how many are torn.
	Counts Counts `json:"counts"`
	// SaveIntervalSeconds and WriteBytesPerSecond are the observed save
	// cadence and write rate (absent when unknown); SavesUntilFull and
	// SecondsUntilFull what the free space holds at them.
	SaveIntervalSeconds float64  `json:"save_interval_seconds,omitempty"`
	WriteBytesPerSecond float64  `json:"write_bytes_per_second,omitempty"`
	SavesUntilFull      *int64   `json:"saves_until_full,omitempty"`
	SecondsUntilFull    *float64 `json:"seconds_until_full,omitempty"`

	// Checkpoints are every checkpoint, oldest step first, with the status a
	// prune by count (keep_last) gives it.
	Checkpoints []Checkpoint `json:"checkpoints"`
	// NextPrune is what a prune triggered now (webhook, autonomous guard)
	// would do.
	NextPrune *NextPrune `json:"next_prune,omitempty"`
	// Offload counts checkpoints by offload state (targets with offload:).
	Offload map[string]int `json:"offload,omitempty"`
	// Runs are the recent prunes, newest first.
	Runs []history.Run `json:"runs"`
	// Usage are the filesystem's samples of the last 24 hours, oldest first.
	Usage []Sample `json:"usage"`
}

// Policy is the part of a target's configuration the page shows.
type Policy struct {
	KeepLast      int    `json:"keep_last"`
	HighWatermark string `json:"high_watermark"`
	LowWatermark  string `json:"low_watermark"`
	Headroom      string `json:"headroom"`
	MaxBytes      uint64 `json:"max_bytes,omitempty"`
	Execute       bool   `json:"execute"`
	Offload       bool   `json:"offload"`
}

// Filesystem is the target's filesystem as the last scan measured it.
type Filesystem struct {
	Mountpoint string  `json:"mountpoint"`
	Device     string  `json:"device"`
	FSType     string  `json:"fstype"`
	SizeBytes  uint64  `json:"size_bytes"`
	AvailBytes uint64  `json:"avail_bytes"`
	UsedBytes  uint64  `json:"used_bytes"`
	UsedRatio  float64 `json:"used_ratio"`
	ReadOnly   bool    `json:"readonly"`
	// HighUsedBytes and LowUsedBytes are the watermarks as used bytes:
	// usage at which a prune is needed, and down to which it deletes.
	HighUsedBytes uint64 `json:"high_watermark_used_bytes"`
	LowUsedBytes  uint64 `json:"low_watermark_used_bytes"`
	// HighReached: usage is at or past the high watermark.
	HighReached bool `json:"high_watermark_reached"`
}

// Counts are checkpoints by status.
type Counts struct {
	Keep       int `json:"keep"`
	Prunable   int `json:"prunable"`
	Incomplete int `json:"incomplete"`
	Torn       int `json:"torn"`
}

// Checkpoint is one checkpoint's row.
type Checkpoint struct {
	Name string `json:"name"`
	// NameBase64 is the name's exact bytes when they are not valid UTF-8
	// (Name then has U+FFFD in place of the invalid bytes).
	NameBase64 string `json:"name_base64,omitempty"`
	// Step is null where the name carries a time, not a step.
	Step    *int64    `json:"step"`
	Bytes   int64     `json:"bytes"`
	ModTime time.Time `json:"mtime"`
	// Status is keep, prunable or incomplete; Torn marks a save cut short
	// (with why in TornReason).
	Status     string `json:"status"`
	Torn       bool   `json:"torn,omitempty"`
	TornReason string `json:"torn_reason,omitempty"`
	// Reason is why, as a code (verdict.Code*) and a detail; Text says the
	// whole status in scan's words.
	Reason verdict.Explained `json:"reason"`
	Text   string            `json:"text"`
	// Offload is its offload state (targets with offload: only).
	Offload *Offload `json:"offload,omitempty"`
}

// Offload is a checkpoint's offload state.
type Offload struct {
	State  string    `json:"state"`
	Time   time.Time `json:"time,omitzero"`
	Detail string    `json:"detail,omitempty"`
}

// NextPrune is the plan of a watermark prune made now from the last scan:
// what the webhook or the autonomous guard would delete, and why.
type NextPrune struct {
	// LowWatermark is the goal; HeadroomBytes the free space the headroom
	// asks for at the observed write rate.
	LowWatermark  string `json:"low_watermark"`
	HeadroomBytes uint64 `json:"headroom_bytes"`
	// NeedBytes must be freed for the watermark and headroom, OverBytes for
	// max_bytes.
	NeedBytes uint64 `json:"need_bytes"`
	OverBytes uint64 `json:"over_bytes,omitempty"`
	// HighReached: usage is at or past the high watermark, so an alert (or
	// the autonomous guard) asks for this prune now; otherwise it is what
	// one would do if it ran now.
	HighReached bool `json:"high_watermark_reached"`
	// Noop: nothing to do now. Insufficient: deleting all it may does not
	// reach the goal, by ShortBytes.
	Noop         bool   `json:"noop"`
	Insufficient bool   `json:"insufficient"`
	ShortBytes   uint64 `json:"short_bytes,omitempty"`
	// DryRun: the target's prune.execute is false, so a prune only reports.
	DryRun      bool   `json:"dry_run"`
	DeleteBytes uint64 `json:"delete_bytes"`
	// Delete are the checkpoints it would delete, in order.
	Delete []Planned `json:"delete"`
	// NextInLine are, when nothing is to be deleted now, the checkpoints a
	// prune would delete first once one is needed (at most a few).
	NextInLine []Planned `json:"next_in_line,omitempty"`
}

// Planned is a checkpoint in a plan.
type Planned struct {
	Name       string            `json:"name"`
	NameBase64 string            `json:"name_base64,omitempty"`
	Step       int64             `json:"step"`
	Bytes      int64             `json:"bytes"`
	Reason     verdict.Explained `json:"reason"`
	Text       string            `json:"text"`
}

// nextInLine is how many checkpoints the preview names as next in line.
const nextInLine = 5

// exact is s's bytes in base64 when s is not valid UTF-8, else "".
func exact(s string) string {
	if utf8.ValidString(s) {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(s))
}

// inputs are what one target's state is built from.
type inputs struct {
	target  pruner.Target
	snap    *checkpoint.Snapshot // nil: not scanned yet
	offload func(checkpoint.Checkpoint) (Offload, bool)
	runs    []history.Run
	usage   []Sample
	now     time.Time
}

// buildTarget makes a target's state. It reads memory only.
func buildTarget(in inputs) Target {
	t, snap := in.target, in.snap
	p := t.Policy
	out := Target{Name: t.Name, Path: t.Path, PathBase64: exact(t.Path), Runs: in.runs, Usage: in.usage, Checkpoints: []Checkpoint{},
		Policy: Policy{KeepLast: p.KeepLast, HighWatermark: p.High.String(), LowWatermark: p.Low.String(), Headroom: p.Headroom.String(),
			MaxBytes: t.MaxBytes, Execute: p.Execute, Offload: t.Offload != nil}}
	if out.Runs == nil {
		out.Runs = []history.Run{}
	}
	if out.Usage == nil {
		out.Usage = []Sample{}
	}
	if snap == nil {
		return out
	}
	out.Scanned, out.Up, out.ScannedAt = true, snap.Up(), snap.Time
	if snap.FS != nil {
		out.Filesystem = filesystem(*snap.FS, p)
	}
	if !snap.Up() {
		out.Error = snap.Err.Error()
		return out
	}
	out.Layout, out.Series, out.Framework = snap.Layout, snap.Series, snap.Framework
	out.SuggestedPattern, out.Candidates = snap.Suggested, snap.Candidates
	out.CheckpointBytes = snap.Bytes()
	if iv, ok := snap.SaveInterval(); ok {
		out.SaveIntervalSeconds = iv.Seconds()
	}
	rate, rated := snap.WriteRate()
	if rated {
		out.WriteBytesPerSecond = rate
	}
	if fs := snap.FS; fs != nil {
		if l := snap.Latest(); l != nil && l.Bytes > 0 {
			n := int64(fs.AvailBytes / uint64(l.Bytes))
			out.SavesUntilFull = &n
		}
		if rated && rate > 0 {
			s := float64(fs.AvailBytes) / rate
			out.SecondsUntilFull = &s
		}
	}

	// The policy a prune would plan with: with offload, what is not
	// confirmed is kept. The page asks the offloader's memory (as of its
	// last look, at the last scan), never the disk.
	policy := p
	if in.offload != nil {
		out.Offload = map[string]int{}
		policy.Offloaded = func(c checkpoint.Checkpoint) bool {
			o, ok := in.offload(c)
			return ok && o.State == offloaded
		}
	}
	out.Checkpoints = make([]Checkpoint, 0, len(snap.Checkpoints))
	for _, v := range verdict.Of(snap, policy, in.now) {
		c := v.Checkpoint
		row := Checkpoint{Name: c.Name, NameBase64: exact(c.Name), Bytes: c.Bytes, ModTime: c.ModTime,
			Status: v.Status, Torn: v.Torn(), TornReason: c.Torn, Reason: verdict.Explain(v.Reason), Text: v.String()}
		if !c.NoStep {
			row.Step = &c.Step
		}
		if v.Status == verdict.Incomplete && row.Reason.Detail == "" {
			row.Reason.Detail = c.Why // what the layout found missing
		}
		switch v.Status {
		case verdict.Keep:
			out.Counts.Keep++
		case verdict.Prunable:
			out.Counts.Prunable++
		case verdict.Incomplete:
			out.Counts.Incomplete++
		}
		if row.Torn {
			out.Counts.Torn++
		}
		if in.offload != nil {
			if o, ok := in.offload(c); ok {
				row.Offload = &o
				out.Offload[o.State]++
			}
		}
		out.Checkpoints = append(out.Checkpoints, row)
	}
	out.NextPrune = nextPrune(snap, policy, in.now)
	out.NextPrune.HighReached = out.Filesystem != nil && out.Filesystem.HighReached
	return out
}

// offloaded is the offload state of a confirmed copy (offload.StateOffloaded).
const offloaded = "offloaded"

// filesystem is fs with p's watermarks as used bytes.
func filesystem(fs targetdir.FSStats, p pruner.Policy) *Filesystem {
	used := fs.SizeBytes - min(fs.SizeBytes, fs.AvailBytes)
	return &Filesystem{Mountpoint: fs.Mountpoint, Device: fs.Device, FSType: fs.FSType, SizeBytes: fs.SizeBytes, AvailBytes: fs.AvailBytes,
		UsedBytes: used, UsedRatio: fs.UsedRatio(), ReadOnly: fs.ReadOnly,
		HighUsedBytes: usedAt(p.High, fs.SizeBytes), LowUsedBytes: usedAt(p.Low, fs.SizeBytes), HighReached: !p.High.IsZero() && p.High.Reached(fs)}
}

// usedAt is watermark w of a filesystem of size bytes as used bytes: a share
// of the size, or the size less a free-space amount.
func usedAt(w checkpoint.Watermark, size uint64) uint64 {
	switch {
	case w.IsZero():
		return 0
	case w.IsBytes():
		return size - min(size, w.Free)
	}
	return uint64(math.Floor(w.Ratio * float64(size)))
}

// nextPrune plans the watermark prune the webhook would run now
// (pruner.Service: the policy's low watermark, the headroom at the observed
// write rate, max_bytes).
func nextPrune(snap *checkpoint.Snapshot, p pruner.Policy, now time.Time) *NextPrune {
	headroom := pruner.HeadroomBytes(snap, p.Headroom)
	plan := pruner.MakePlan(snap, p, pruner.Goal{Kind: pruner.GoalWatermark, Headroom: headroom}, now)
	np := &NextPrune{LowWatermark: plan.Free.String(), HeadroomBytes: headroom, NeedBytes: plan.NeedBytes, OverBytes: plan.OverBytes,
		Noop: plan.Noop, Insufficient: plan.Insufficient, ShortBytes: plan.ShortBytes, DryRun: !p.Execute, DeleteBytes: plan.DeleteBytes,
		Delete: planned(plan.Delete, -1)}
	if plan.Noop {
		// What goes first once a prune is needed: a goal no disk meets
		// plans every checkpoint that may go, in the order they would.
		all := pruner.MakePlan(snap, p, pruner.Goal{Kind: pruner.GoalWatermark, Headroom: math.MaxUint64}, now)
		np.NextInLine = planned(all.Delete, nextInLine)
	}
	return np
}

func planned(items []pruner.Item, limit int) []Planned {
	out := []Planned{}
	for i, it := range items {
		if limit >= 0 && i >= limit {
			break
		}
		c := it.Checkpoint
		out = append(out, Planned{Name: c.Name, NameBase64: exact(c.Name), Step: c.Step, Bytes: c.Bytes, Reason: verdict.Explain(it.Reason), Text: it.Reason})
	}
	return out
}
