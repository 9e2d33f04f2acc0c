package pruner

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// memRecorder keeps the reports it gets.
type memRecorder struct {
	mu      sync.Mutex // guards reports
	reports []Report
}

func (m *memRecorder) Record(_ context.Context, r Report) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reports = append(m.reports, r)
	return nil
}

func (m *memRecorder) all() []Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.reports)
}

// Triggers that join a queued run are recorded with it: every alert that
// asked, once.
func TestCoalescedTriggersRecordEveryAlert(t *testing.T) {
	dir := t.TempDir()
	kerasFiles(t, dir, 100, 100, 200, 300, 400, 500)
	tg := checkpoint.Target{Name: "a", Path: dir}
	sc, err := checkpoint.NewScanner(tg, checkpoint.ScanOptions{})
	must(t, err)
	logger := testLogger(t)
	inv := checkpoint.NewInventory(logger, time.Hour, sc)
	inv.ScanAll(context.Background())
	del := newBlockingDeleter()
	svc := NewService(logger, inv, withPolicy(defaultPolicy, tg), del, nil)
	rec := &memRecorder{}
	svc.RecordTo(rec)

	first := svc.Trigger(TriggerAutonomous, "a")["a"]
	<-del.entered
	x := AlertRef{Name: "CheckpointDiskPruneNeeded", Fingerprint: "x"}
	y := AlertRef{Name: "NodeFilesystemAlmostOutOfSpace", Fingerprint: "y", Labels: map[string]string{"mountpoint": "/data"}}
	f1 := svc.TriggerFor(TriggerWebhook, map[string]Asked{"a": {Alerts: []AlertRef{x}}})["a"]
	f2 := svc.TriggerFor(TriggerWebhook, map[string]Asked{"a": {Alerts: []AlertRef{x, y}}})["a"]
	if f1 != f2 || f1 == first {
		t.Fatal("the webhook triggers did not join one follow-up run")
	}
	close(del.release)
	<-f1.Done()
	got := rec.all()
	// The first run, autonomous, found nothing to do (noop): not recorded.
	if len(got) != 1 {
		t.Fatalf("%d reports, want the follow-up's only: %+v", len(got), got)
	}
	r := got[0]
	if r.Trigger != TriggerWebhook || len(r.Asked.Alerts) != 2 || r.Asked.Alerts[0].Fingerprint != "x" || r.Asked.Alerts[1].Labels["mountpoint"] != "/data" {
		t.Errorf("follow-up report %+v", r)
	}
}

func TestWhatIsRecorded(t *testing.T) {
	for _, tc := range []struct {
		trigger, result string
		recorded        bool
	}{
		{TriggerWebhook, ResultOK, true},
		{TriggerWebhook, ResultNoop, true},
		{TriggerWebhook, ResultDryRun, true},
		{TriggerCLI, ResultDryRun, true},
		{TriggerCLI, ResultInsufficient, true},
		{TriggerAutonomous, ResultOK, true},
		{TriggerAutonomous, ResultError, true},
		{TriggerAutonomous, ResultInsufficient, true},
		{TriggerAutonomous, ResultDryRun, false},
		{TriggerAutonomous, ResultNoop, false},
	} {
		t.Run(tc.trigger+"/"+tc.result, func(t *testing.T) {
			svc := NewService(testLogger(t), nil, nil, nil, nil)
			rec := &memRecorder{}
			svc.RecordTo(rec)
			svc.record(context.Background(), tc.trigger, Asked{}, Result{Target: "t", Outcome: tc.result})
			if got := len(rec.all()) == 1; got != tc.recorded {
				t.Errorf("recorded: %v, want %v", got, tc.recorded)
			}
		})
	}
}

func TestAskedKeepsAtMostMaxAsked(t *testing.T) {
	var k Asked
	for i := range MaxAsked + 5 {
		k.Add(AlertRef{Name: "A", Fingerprint: string(rune('a' + i))})
		k.Add(AlertRef{Name: "A", Fingerprint: string(rune('a' + i))}) // the same alert again
	}
	if len(k.Alerts) != MaxAsked || k.Omitted != 10 {
		t.Errorf("kept %d, omitted %d; want %d and 10", len(k.Alerts), k.Omitted, MaxAsked)
	}
}
