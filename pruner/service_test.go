package pruner

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// blockingDeleter is a Deleter whose first call waits until released, so a
// test can hold a prune run for as long as it needs to.
type blockingDeleter struct {
	entered chan struct{} // closed when the first call has begun
	release chan struct{} // closing it lets the first call return

	mu    sync.Mutex // guards calls
	calls []string   // target of every call, in order
}

func newBlockingDeleter() *blockingDeleter {
	return &blockingDeleter{entered: make(chan struct{}), release: make(chan struct{})}
}

func (d *blockingDeleter) Execute(_ context.Context, _ *targetdir.Dir, t Target, plan Plan, _ string) (Result, error) {
	d.mu.Lock()
	d.calls = append(d.calls, t.Name)
	first := len(d.calls) == 1
	d.mu.Unlock()
	if first {
		close(d.entered)
		<-d.release
	}
	return Result{Target: t.Name, Outcome: ResultNoop, Deleted: []Deleted{}, PlannedBytes: plan.DeleteBytes}, nil
}

func (d *blockingDeleter) targets() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

// Triggers that arrive while a prune of the filesystem runs coalesce into
// exactly one follow-up run that covers every target they asked for.
func TestTriggersCoalesceIntoOneFollowUp(t *testing.T) {
	base := t.TempDir() // both targets on one filesystem
	var targets []checkpoint.Target
	var scanners []*checkpoint.Scanner
	for _, name := range []string{"a", "b"} {
		dir := base + "/" + name
		must(t, os.Mkdir(dir, 0o755))
		kerasFiles(t, dir, 100, 100, 200, 300, 400, 500)
		tg := checkpoint.Target{Name: name, Path: dir}
		sc, err := checkpoint.NewScanner(tg, checkpoint.ScanOptions{})
		must(t, err)
		targets = append(targets, tg)
		scanners = append(scanners, sc)
	}
	logger := testLogger(t)
	inv := checkpoint.NewInventory(logger, time.Hour, scanners...)
	inv.ScanAll(context.Background()) // the service groups targets by the filesystem their last scan saw
	m := NewMetrics(nil, []string{"a", "b"})
	del := newBlockingDeleter()
	svc := NewService(logger, inv, withPolicy(defaultPolicy, targets...), del, m)

	first := svc.Trigger(TriggerWebhook, "a")["a"]
	<-del.entered // the first run is now inside the deleter and stays there

	const n = 20
	got := make([]map[string]*QueuedRun, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []string{"a", "b"}[i%2]
			got[i] = svc.Trigger(TriggerWebhook, name)
		}()
	}
	wg.Wait()
	followUp := got[0][[]string{"a", "b"}[0]]
	for i, fl := range got {
		name := []string{"a", "b"}[i%2]
		if fl[name] == nil || fl[name] == first || fl[name] != followUp {
			t.Fatalf("trigger %d (%s) got flight %p; want the one follow-up %p (first run %p)", i, name, fl[name], followUp, first)
		}
	}
	select {
	case <-followUp.Done():
		t.Fatal("follow-up finished while the first run was still going")
	default:
	}

	close(del.release)
	<-first.Done()
	<-followUp.Done()
	calls := del.targets()
	if len(calls) != 3 || calls[0] != "a" {
		t.Fatalf("deleter calls %v; want the first run (a) and one follow-up over a and b", calls)
	}
	for _, name := range []string{"a", "b"} {
		if _, ok := followUp.Result(name); !ok {
			t.Errorf("follow-up has no result for %s", name)
		}
		runs := testutil.ToFloat64(m.runs.WithLabelValues(name, TriggerWebhook, ResultNoop))
		want := map[string]float64{"a": 2, "b": 1}[name]
		if runs != want {
			t.Errorf("runs{target=%s} = %v, want %v", name, runs, want)
		}
	}
	// With nothing running, the next trigger starts a new run at once.
	again := svc.Trigger(TriggerWebhook, "b")["b"]
	<-again.Done()
	if again == followUp || len(del.targets()) != 4 {
		t.Errorf("a trigger after the runs ended did not start a run of its own (calls %v)", del.targets())
	}
}

// One path for every prune: the mode in the request, with the policy's
// execute setting, decides whether it deletes; the plan and the result come
// back together.
func TestPruneModes(t *testing.T) {
	tests := []struct {
		name    string
		execute bool // the target's prune.execute
		mode    Mode
		deletes bool
	}{
		{"policy dry run", false, ModePolicy, false},
		{"policy execute", true, ModePolicy, true},
		{"CLI preview of an execute target", true, ModeDryRun, false},
		{"CLI --execute of a dry-run target", false, ModeExecute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			kerasFiles(t, dir, 100, 100, 200, 300, 400, 500)
			tg := checkpoint.Target{Name: "t", Path: dir}
			sc, err := checkpoint.NewScanner(tg, checkpoint.ScanOptions{})
			must(t, err)
			logger := testLogger(t)
			p := defaultPolicy
			p.Execute = tt.execute
			svc := NewService(logger, checkpoint.NewInventory(logger, time.Hour, sc), withPolicy(p, tg), &Executor{Logger: logger}, nil)
			run, err := svc.Prune(context.Background(), Request{Target: "t", Trigger: TriggerCLI, Mode: tt.mode, Keep: 2})
			must(t, err)
			if got := steps(run.Plan.Delete); len(got) != 3 || got[0] != 100 {
				t.Fatalf("plan deletes %v, want the oldest 3", got)
			}
			left := len(names(t, dir))
			want, result := 5, ResultDryRun
			if tt.deletes {
				want, result = 2, ResultOK
			}
			if left != want || run.Result.Outcome != result || len(run.Result.Deleted) != 3 {
				t.Errorf("%d files left, result %+v; want %d left, result %s listing 3", left, run.Result, want, result)
			}
		})
	}
	noSvc := NewService(testLogger(t), checkpoint.NewInventory(testLogger(t), time.Hour), nil, nil, nil)
	if run, err := noSvc.Prune(context.Background(), Request{Target: "nope"}); err == nil || run.Result.Outcome != ResultError {
		t.Errorf("unknown target: %+v %v", run.Result, err)
	}
}
