package history

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// A pruner report becomes one run with every field the history keeps.
func TestPruneRecorderKeepsTheReport(t *testing.T) {
	s := New(Options{})
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	rep := pruner.Report{Time: at, Trigger: pruner.TriggerWebhook,
		Asked: pruner.Asked{Alerts: []pruner.AlertRef{{Name: "CheckpointDiskPruneNeeded", Fingerprint: "f1", Labels: map[string]string{"target": "a"}}}, Omitted: 2},
		Result: pruner.Result{Target: "a", Outcome: pruner.ResultOK, PlannedBytes: 300, FreedBytes: 200, FreeSpaceChange: -5, ShortBytes: 7, Error: "partly",
			Deleted: []pruner.Deleted{{Name: "checkpoint-100", Step: 100, Bytes: 200, Reason: "oldest"}},
			Skipped: []pruner.Skipped{{Name: "checkpoint-200", Step: 200, Cause: pruner.CauseChanged, Reason: "written meanwhile"}}},
	}
	if err := s.PruneRecorder().Record(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	runs := s.Runs("a", 10)
	if len(runs) != 1 {
		t.Fatalf("%d runs", len(runs))
	}
	want := Run{Time: at, Target: "a", Trigger: pruner.TriggerWebhook, Result: pruner.ResultOK, Error: "partly",
		Alerts:        []Alert{{Name: "CheckpointDiskPruneNeeded", Fingerprint: "f1", Labels: map[string]string{"target": "a"}}},
		AlertsOmitted: 2, PlannedBytes: 300, FreedBytes: 200, FreeSpaceChange: -5, ShortBytes: 7,
		Deleted: []Item{{Name: "checkpoint-100", Step: 100, Bytes: 200, Reason: "oldest"}},
		Skipped: []Item{{Name: "checkpoint-200", Step: 200, Cause: pruner.CauseChanged, Reason: "written meanwhile"}},
	}
	got := runs[0]
	if got.ID == "" {
		t.Error("the run has no ID")
	}
	got.ID = ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("run\n got %+v\nwant %+v", got, want)
	}
}
