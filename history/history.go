// Package history keeps the exporter's deletion history: every prune run,
// what asked for it (the command line, the autonomous guard, or the
// Alertmanager alerts of a webhook request), every checkpoint it deleted
// (or, in a dry run, would have deleted) and every planned deletion it
// skipped. A Store keeps the recent runs of each target in memory and, with
// a file, appends them to it as JSON Lines, fsynced before Record returns,
// so a run that was reported survives a crash; the file is read back when
// the store is opened. Nothing here can delete a checkpoint: the history
// only tells.
//
// It imports pruner (PruneRecorder turns a pruner.Report into a Run) and
// must not import checkpoint scanning, statuspage or cmd.
package history

import (
	"encoding/base64"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Trigger values the exporter records (the same words as the
// checkpoint_prune_runs_total{trigger} label).
const (
	TriggerCLI        = "cli"
	TriggerWebhook    = "webhook"
	TriggerAutonomous = "autonomous"
)

// Alert is an Alertmanager alert that asked for a prune.
type Alert struct {
	// Name is the alert's alertname label.
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Labels are all its labels (only on the run's own record in the file).
	Labels map[string]string `json:"labels,omitempty"`
}

// Item is one checkpoint a run deleted, would have deleted (dry run) or
// skipped.
type Item struct {
	Name  string `json:"name"`
	Step  int64  `json:"step"`
	Bytes int64  `json:"bytes"`
	// Reason is why it was to be deleted (deleted, dry run) or why it was
	// not (skipped).
	Reason string `json:"reason"`
	// Cause is a skipped deletion's cause: changed, gone, mount_point, error.
	Cause string `json:"cause,omitempty"`
}

// Run is one prune of one target.
type Run struct {
	// ID ties a run's records together in the file; Record sets it.
	ID string `json:"id"`
	// Time is when the run finished.
	Time    time.Time `json:"time"`
	Target  string    `json:"target"`
	Trigger string    `json:"trigger"`
	// Alerts are the alerts that asked for the run (webhook triggers, also
	// when they joined a run another trigger queued); AlertsOmitted counts
	// those past the ones kept.
	Alerts        []Alert `json:"alerts,omitempty"`
	AlertsOmitted int     `json:"alerts_omitted,omitempty"`
	// Result is ok, dry_run, noop, insufficient or error.
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
	// Deleted are the checkpoints deleted, or in a dry run those that would
	// have been; Skipped the planned deletions that did not happen.
	Deleted []Item `json:"deleted"`
	Skipped []Item `json:"skipped,omitempty"`
	// PlannedBytes is what the plan meant to free, FreedBytes the disk
	// usage of what was deleted, FreeSpaceChange what statfs saw change
	// meanwhile (other writers move it), ShortBytes how far the goal was
	// missed.
	PlannedBytes    uint64 `json:"planned_bytes"`
	FreedBytes      int64  `json:"freed_bytes"`
	FreeSpaceChange int64  `json:"free_space_change_bytes"`
	ShortBytes      uint64 `json:"short_bytes,omitempty"`
}

// DryRun reports whether the run deleted nothing by design.
func (r Run) DryRun() bool { return r.Result == "dry_run" }

// AlertNames are the distinct names of the alerts that asked, in order.
func (r Run) AlertNames() []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range r.Alerts {
		if !seen[a.Name] {
			seen[a.Name] = true
			out = append(out, a.Name)
		}
	}
	return out
}

// MarshalJSON writes the item with, for a name that is not valid UTF-8
// (JSON text cannot hold it), its exact bytes as name_base64.
func (it Item) MarshalJSON() ([]byte, error) {
	type plain Item
	out := struct {
		plain
		NameBase64 string `json:"name_base64,omitempty"`
	}{plain: plain(it)}
	if !utf8.ValidString(it.Name) {
		out.NameBase64 = base64.StdEncoding.EncodeToString([]byte(it.Name))
	}
	return json.Marshal(out)
}
