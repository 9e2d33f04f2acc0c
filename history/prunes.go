package history

import (
	"context"

	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// PruneRecorder returns the pruner.Recorder that writes the pruner's
// reports into s (pruner.Service.RecordTo).
func (s *Store) PruneRecorder() pruner.Recorder { return prunes{s} }

// prunes writes the pruner's reports into a store.
type prunes struct{ store *Store }

func (p prunes) Record(ctx context.Context, r pruner.Report) error {
	run := Run{Time: r.Time, Target: r.Result.Target, Trigger: r.Trigger, Result: r.Result.Outcome, Error: r.Result.Error,
		AlertsOmitted: r.Asked.Omitted, Deleted: make([]Item, 0, len(r.Result.Deleted)),
		PlannedBytes: r.Result.PlannedBytes, FreedBytes: r.Result.FreedBytes, FreeSpaceChange: r.Result.FreeSpaceChange, ShortBytes: r.Result.ShortBytes}
	for _, a := range r.Asked.Alerts {
		run.Alerts = append(run.Alerts, Alert{Name: a.Name, Fingerprint: a.Fingerprint, Labels: a.Labels})
	}
	for _, d := range r.Result.Deleted {
		run.Deleted = append(run.Deleted, Item{Name: d.Name, Step: d.Step, Bytes: d.Bytes, Reason: d.Reason})
	}
	for _, s := range r.Result.Skipped {
		run.Skipped = append(run.Skipped, Item{Name: s.Name, Step: s.Step, Cause: s.Cause, Reason: s.Reason})
	}
	return p.store.Record(ctx, run)
}
