package pruner

import (
	"fmt"
	"math"
	"path"
	"slices"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// Policy is a target's retention policy: what is never pruned. (min_age
// belongs to the checkpoint.Target, which the scanner needs too; plans read
// it from the snapshot.)
type Policy struct {
	// KeepLast: the newest KeepLast complete checkpoints are kept (at least 1:
	// resuming needs the newest).
	KeepLast int
	// KeepEvery keeps every checkpoint whose step is a multiple of it (0: off).
	KeepEvery int64
	// KeepWithin keeps checkpoints younger than this.
	KeepWithin time.Duration
	// Protect are name globs that are never pruned.
	Protect []string
	// High and Low are the watermarks; Headroom is how long the free space
	// left after a prune must last at the observed write rate.
	High, Low checkpoint.Watermark
	Headroom  time.Duration
	// Execute: false means dry run.
	Execute bool
	// Offloaded, when set (offload configured), says whether a checkpoint is
	// confirmed copied elsewhere; the others are kept (see Target.PolicyFor).
	Offloaded func(checkpoint.Checkpoint) bool `json:"-"`
	// Lock says how a prune keeps other pruners of the directory out.
	Lock targetdir.LockMode
	// AttributeCache, when set, is how long the target's filesystem client
	// may answer from a cache of its own (a FUSE daemon's): it replaces
	// the default of the filesystem type (see targetdir.CachingOf).
	AttributeCache *time.Duration `json:",omitempty"`
}

// GoalKind says what a prune tries to reach.
type GoalKind int

const (
	// GoalCount keeps only the newest N checkpoints, as cleanup scripts do.
	GoalCount GoalKind = iota + 1
	// GoalWatermark deletes oldest first until the low watermark holds, the
	// free space covers the headroom and the target's checkpoints take no
	// more than its max_bytes (checkpoint.Target.MaxBytes).
	GoalWatermark
)

// Goal is what one prune tries to reach.
type Goal struct {
	Kind GoalKind
	// Keep is N for GoalCount; it also replaces the policy's KeepLast.
	Keep int
	// Free, if set, must hold afterwards (GoalWatermark's target; with
	// GoalCount, only checked). Zero value: the policy's Low watermark.
	Free checkpoint.Watermark
	// Headroom is extra free space to leave, in bytes (GoalWatermark).
	Headroom uint64
}

// Item is one checkpoint in a plan with the reason it goes or stays.
type Item struct {
	Checkpoint checkpoint.Checkpoint `json:"checkpoint"`
	Reason     string                `json:"reason"`
}

// Plan is what a prune would do.
type Plan struct {
	Target string
	Goal   Goal
	// Delete is oldest step first.
	Delete []Item
	Keep   []Item
	// NeedBytes is how much must be freed for the goal's free-space part to
	// hold; DeleteBytes is the disk usage of Delete.
	NeedBytes   uint64
	DeleteBytes uint64
	// OverBytes is by how much the target's checkpoints exceed its
	// max_bytes (GoalWatermark; 0 when under or unset).
	OverBytes uint64
	// Noop: the goal already holds, nothing to do.
	Noop bool
	// Free is the free-space goal that Execute checks as it goes (zero: none).
	Free checkpoint.Watermark
	// Insufficient: deleting everything prunable does not reach the goal;
	// ShortBytes says by how much.
	Insufficient bool
	ShortBytes   uint64
	// Scanned is when the scan the plan was made from began: the final
	// walk on a filesystem with a client-side cache waits until that cache
	// is younger (see Executor.settle).
	Scanned time.Time
}

// Keep reasons.
const (
	ReasonIncomplete = "incomplete"
	ReasonUncertain  = "uncertain"
	// ReasonNoRule keeps what no layout's rule names and the general series
	// rule counted (checkpoint.Checkpoint.Unrecognised): never pruned until
	// a pattern: names it.
	ReasonNoRule     = "uncertain (no rule for this layout)"
	ReasonPinned     = "pinned"
	ReasonProtected  = "protected"
	ReasonLatest     = "latest"
	ReasonTooYoung   = "too young"
	ReasonKeepWithin = "keep_within"
	ReasonKeepEvery  = "keep_every"
	ReasonNotNeeded  = "not needed for the goal"
	// ReasonNotOffloaded keeps a checkpoint the offload has not confirmed.
	ReasonNotOffloaded = "not offloaded"
	// ReasonTornYoung keeps a torn save that was written to too recently
	// to be sure no writer is still at it (see TornMinAge).
	ReasonTornYoung = "torn, written to too recently to delete"
	// ReasonSuspect keeps a save that may be cut short: it is never deleted
	// automatically, and never counts among the newest kept.
	ReasonSuspect = "suspect"
)

// TornMinAge is how long nothing must have written to a torn save before a
// prune deletes it (min_age too, when longer): a save being written looks
// torn until its last byte, and a writer can pause between tensors.
const TornMinAge = 10 * time.Minute

// ReasonTorn is the reason a torn save is deleted: first, before any whole
// checkpoint, as it is garbage that misleads a resume that picks the
// highest step.
func ReasonTorn(c checkpoint.Checkpoint) string { return "torn save: " + c.Torn }

// keepReason says why c is kept regardless of goal, or "" if it may go.
// rank is c's position among settled checkpoints counted from the newest (0),
// the better of its rank by step and its rank by modification time; minAge is
// the target's min_age.
func keepReason(c checkpoint.Checkpoint, rank, keepLast int, minAge time.Duration, p Policy, now time.Time) string {
	age := now.Sub(c.ModTime)
	switch {
	case c.Incomplete:
		return ReasonIncomplete
	case c.Unrecognised:
		return ReasonNoRule
	case c.Uncertain != "":
		return ReasonUncertain
	case c.Pinned != "":
		return ReasonPinned + " (" + c.Pinned + ")"
	case protected(c, p.Protect):
		return ReasonProtected
	case c.Torn != "" && age < max(minAge, TornMinAge):
		return ReasonTornYoung
	case c.Torn != "" && p.Offloaded != nil && !p.Offloaded(c):
		return ReasonNotOffloaded
	case c.Torn != "":
		return ""
	case c.Suspect != "":
		return ReasonSuspect + ": " + c.Suspect
	case age < minAge:
		return ReasonTooYoung
	case rank < keepLast:
		return fmt.Sprintf("%s %d", ReasonLatest, keepLast)
	case p.KeepWithin > 0 && age < p.KeepWithin:
		return ReasonKeepWithin
	case p.KeepEvery > 0 && c.Step%p.KeepEvery == 0:
		return ReasonKeepEvery
	case p.Offloaded != nil && !p.Offloaded(c):
		return ReasonNotOffloaded
	}
	return ""
}

func protected(c checkpoint.Checkpoint, globs []string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, c.Name); ok {
			return true
		}
		for _, e := range c.Entries {
			if ok, _ := path.Match(g, e.Name); ok {
				return true
			}
		}
	}
	return false
}

// HeadroomBytes is the free space the headroom asks for at the snapshot's
// observed write rate; 0 when the rate is unknown. It never asks for more
// than the filesystem's size: a goal no prune can reach would only make it
// delete everything prunable.
func HeadroomBytes(s *checkpoint.Snapshot, headroom time.Duration) uint64 {
	rate, ok := s.WriteRate()
	if !ok || headroom <= 0 {
		return 0
	}
	b := rate * headroom.Seconds()
	if s.FS != nil && b > float64(s.FS.SizeBytes) {
		return s.FS.SizeBytes
	}
	return uint64(math.Ceil(b))
}

// need is how many bytes must be freed on fs for free (as a low watermark)
// to hold with at least headroom bytes available.
func need(fs targetdir.FSStats, free checkpoint.Watermark, headroom uint64) uint64 {
	n := free.Shortfall(fs)
	if headroom > fs.AvailBytes {
		n = max(n, headroom-fs.AvailBytes)
	}
	return n
}

// MakePlan decides what a prune of snapshot s deletes to reach goal under
// policy p at time now. It never plans the newest complete checkpoint nor
// anything keepReason keeps. It reads nothing but its arguments.
func MakePlan(s *checkpoint.Snapshot, p Policy, goal Goal, now time.Time) Plan {
	plan := Plan{Target: s.Target.Name, Goal: goal, Keep: make([]Item, 0, len(s.Checkpoints))}
	if !s.Time.IsZero() {
		plan.Scanned = s.Time.Add(-s.Duration)
	}
	keepLast := max(p.KeepLast, 1)
	if goal.Kind == GoalCount {
		keepLast = max(goal.Keep, 1)
	}
	free := goal.Free
	if free.IsZero() && goal.Kind == GoalWatermark {
		free = p.Low
	}
	plan.Free = free
	if s.FS != nil && !free.IsZero() {
		plan.NeedBytes = need(*s.FS, free, goal.Headroom)
	}
	if limit := s.Target.MaxBytes; limit > 0 && goal.Kind == GoalWatermark && uint64(s.Bytes()) > limit {
		plan.OverBytes = uint64(s.Bytes()) - limit
	}
	minAge := s.Target.MinAge
	// What the general series rule counted is a guess: it fills no slot of
	// the newest kept, so it never pushes a checkpoint out of them.
	ranks := newestRanks(s.Checkpoints, func(c checkpoint.Checkpoint) bool {
		return c.Whole() && c.Suspect == "" && !c.Unrecognised && now.Sub(c.ModTime) >= minAge
	})
	kept := make([]string, len(s.Checkpoints))
	for i, c := range s.Checkpoints {
		r := keepLast // not settled: rank does not matter
		if ranks[i] >= 0 {
			r = ranks[i]
		}
		kept[i] = keepReason(c, r, keepLast, minAge, p, now)
	}

	if goal.Kind == GoalWatermark && plan.NeedBytes == 0 && plan.OverBytes == 0 {
		plan.Noop = true
	}
	var freed uint64
	// Torn saves go first, whatever the goal needs beyond them.
	deleting := !plan.Noop
	for i, c := range s.Checkpoints {
		if kept[i] == "" && c.Torn != "" && deleting {
			plan.Delete = append(plan.Delete, Item{Checkpoint: c, Reason: ReasonTorn(c)})
			freed += uint64(max(c.Bytes, 0))
		}
	}
	for i, c := range s.Checkpoints {
		reason := kept[i]
		if c.Torn != "" && reason == "" {
			if deleting {
				continue // planned above
			}
			reason = ReasonNotNeeded
		}
		if reason == "" {
			switch {
			case goal.Kind == GoalCount:
				reason = fmt.Sprintf("older than the newest %d", keepLast)
			case freed < plan.NeedBytes:
				reason = "oldest, to free space"
			case freed < plan.OverBytes:
				reason = "oldest, over max_bytes"
			}
			if reason != "" {
				plan.Delete = append(plan.Delete, Item{Checkpoint: c, Reason: reason})
				freed += uint64(max(c.Bytes, 0))
				continue
			}
			reason = ReasonNotNeeded
		}
		plan.Keep = append(plan.Keep, Item{Checkpoint: c, Reason: reason})
	}
	plan.DeleteBytes = freed
	if goal.Kind == GoalCount && len(plan.Delete) == 0 && plan.NeedBytes == 0 {
		plan.Noop = true
	}
	if need := max(plan.NeedBytes, plan.OverBytes); freed < need {
		plan.Insufficient = true
		plan.ShortBytes = need - freed
	}
	return plan
}

// newestRanks ranks the settled checkpoints (complete and older than
// min_age: a young one may still be half written, so it must not push a fully
// written one out of the newest N; young ones are kept anyway) from the
// newest, 0 first, and -1 for the others. A checkpoint's rank is the better of
// its rank by step and its rank by modification time: a run resumed from an
// earlier step writes low steps after old high ones, and its new saves are the
// newest too (docs/architecture.md, invariant 1). cs is sorted by step.
func newestRanks(cs []checkpoint.Checkpoint, settled func(checkpoint.Checkpoint) bool) []int {
	ranks := make([]int, len(cs))
	var idx []int
	for i := range cs {
		ranks[i] = -1
		if settled(cs[i]) {
			idx = append(idx, i)
		}
	}
	for r, i := range slices.Backward(idx) {
		ranks[i] = len(idx) - 1 - r
	}
	byTime := slices.Clone(idx)
	slices.SortFunc(byTime, func(a, b int) int {
		if c := cs[b].ModTime.Compare(cs[a].ModTime); c != 0 {
			return c
		}
		return b - a // same time: the higher step is the newer
	})
	for r, i := range byTime {
		ranks[i] = min(ranks[i], r)
	}
	return ranks
}
