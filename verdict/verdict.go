// Package verdict says what a prune would do with each checkpoint of a
// snapshot, and why: the status column of the scan command, of the status
// page and of its JSON API, from one place. It only reads the pruner's plan
// (pruner.MakePlan) and puts its reasons into words and codes; it decides
// nothing itself.
//
// It imports checkpoint and pruner, and must not import anything that
// serves or prints (statuspage, cmd).
package verdict

import (
	"fmt"
	"strings"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// Statuses of a checkpoint.
const (
	// Keep: a prune never deletes it now (Reason says why).
	Keep = "keep"
	// Prunable: a prune by count would delete it.
	Prunable = "prunable"
	// Incomplete: being written, or left unfinished (never deleted).
	Incomplete = "incomplete"
)

// Verdict is one checkpoint's status under a policy.
type Verdict struct {
	Checkpoint checkpoint.Checkpoint
	// Status is Keep, Prunable or Incomplete.
	Status string
	// Reason is the pruner's reason for the status ("latest 3", "pinned
	// (…)", "older than the newest 3"); Explain splits it into a code and
	// a detail.
	Reason string
}

// Torn reports whether the checkpoint is a save cut short.
func (v Verdict) Torn() bool { return v.Checkpoint.Torn != "" }

// String is the status in scan's words: "keep: latest 3", "prunable",
// "incomplete: lacks …", "torn: … (prunable, goes first)".
func (v Verdict) String() string {
	c := v.Checkpoint
	switch {
	case v.Status == Incomplete && c.Why != "":
		return Incomplete + ": " + c.Why
	case v.Status == Incomplete:
		return Incomplete
	case v.Status == Prunable && c.Torn != "":
		return "torn: " + c.Torn + " (prunable, goes first)"
	case v.Status == Prunable:
		return Prunable
	case c.Torn != "":
		return "torn: " + c.Torn + " (keep: " + v.Reason + ")"
	}
	return "keep: " + v.Reason
}

// Of labels every checkpoint of s the way a prune by count (keep the newest
// p.KeepLast) would treat it at time now, in the snapshot's order. p is the
// policy a prune would plan with (pruner.Target.PolicyFor: with offload,
// what is not confirmed is kept).
func Of(s *checkpoint.Snapshot, p pruner.Policy, now time.Time) []Verdict {
	plan := pruner.MakePlan(s, p, pruner.Goal{Kind: pruner.GoalCount, Keep: p.KeepLast}, now)
	// Keyed by a checkpoint's entries, not its name: two checkpoints may
	// share a display name.
	by := make(map[string]Verdict, len(s.Checkpoints))
	for _, it := range plan.Delete {
		by[Key(it.Checkpoint)] = Verdict{Checkpoint: it.Checkpoint, Status: Prunable, Reason: it.Reason}
	}
	for _, it := range plan.Keep {
		st := Keep
		if it.Reason == pruner.ReasonIncomplete {
			st = Incomplete
		}
		by[Key(it.Checkpoint)] = Verdict{Checkpoint: it.Checkpoint, Status: st, Reason: it.Reason}
	}
	out := make([]Verdict, len(s.Checkpoints))
	for i, c := range s.Checkpoints {
		out[i] = by[Key(c)]
	}
	return out
}

// Key identifies a checkpoint within one snapshot by its entries' names (two
// checkpoints may share a display name, never an entry).
func Key(c checkpoint.Checkpoint) string {
	var b strings.Builder
	for _, e := range c.Entries {
		b.WriteString(e.Name)
		b.WriteByte(0)
	}
	return b.String()
}

// Age writes how old a checkpoint is the way scan's AGE column and the
// status page do: 45s, 12m, 3h5m, 2d4h (0s for the future: clocks differ).
func Age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}
