package pruner

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/hangfs"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

func mountHangFS(t *testing.T, opts hangfs.Options) (backing string, h *hangfs.FS) {
	t.Helper()
	backing = t.TempDir()
	return backing, hangfs.Mount(t, backing, filepath.Join(t.TempDir(), "mnt"), opts)
}

// A target whose filesystem hangs is reported down and its prunes fail at
// once, counted and logged, while a target elsewhere is pruned as usual;
// after the filesystem answers again the target recovers by itself.
func TestHungTargetFailsFastOthersPrune(t *testing.T) {
	backing, h := mountHangFS(t, hangfs.Options{})
	kerasFiles(t, backing, 4096, 100, 200, 300)
	okDir := t.TempDir()
	kerasFiles(t, okDir, 4096, 100, 200, 300, 400, 500)

	logger := testLogger(t)
	targets := []checkpoint.Target{{Name: "hung", Path: h.Dir}, {Name: "ok", Path: okDir}}
	var scanners []*checkpoint.Scanner
	for _, tg := range targets {
		sc, err := checkpoint.NewScanner(tg, checkpoint.ScanOptions{HangTimeout: 300 * time.Millisecond, StatFSTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		scanners = append(scanners, sc)
	}
	inv := checkpoint.NewInventory(logger, 50*time.Millisecond, scanners...)
	for _, s := range inv.ScanAll(context.Background()) {
		if !s.Up() {
			t.Fatalf("%s: %v", s.Target.Name, s.Err)
		}
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, []string{"hung", "ok"})
	// A low watermark no disk reaches: every trigger deletes all it may.
	p := Policy{KeepLast: 2, High: checkpoint.MustWatermark("2%"), Low: checkpoint.MustWatermark("1%"), Execute: true}
	svc := NewService(logger, inv, withPolicy(p, targets...), &Executor{Logger: logger, LockWait: time.Second}, m)

	// The scan hangs in the middle: statfs answered, the directory read does not.
	h.HangOn(hangfs.OpOpendir, 1)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { inv.Run(ctx); close(ran) }()
	defer func() { h.Release(); cancel(); <-ran }()
	waitFor(t, "hung target marked down", func() bool {
		s, _ := inv.Latest("hung")
		return errors.Is(s.Err, targetdir.ErrHung)
	})

	triggered := make(chan map[string]*QueuedRun, 1)
	go func() { triggered <- svc.Trigger(TriggerWebhook, "hung", "ok") }()
	var flights map[string]*QueuedRun
	select {
	case flights = <-triggered:
	case <-time.After(30 * time.Second):
		t.Fatal("Trigger blocked on the hung filesystem")
	}
	select {
	case <-flights["hung"].Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the hung target's prune did not fail fast")
	}
	if r, _ := flights["hung"].Result("hung"); r.Outcome != ResultError || r.Error == "" {
		t.Fatalf("hung target: %+v, want result error", r)
	}
	<-flights["ok"].Done()
	if r, _ := flights["ok"].Result("ok"); r.Outcome != ResultInsufficient || len(r.Deleted) != 3 {
		t.Fatalf("other target: %+v, want 3 deleted", r)
	}
	if got := testutil.ToFloat64(m.runs.WithLabelValues("hung", TriggerWebhook, ResultError)); got != 1 {
		t.Errorf("error runs of the hung target = %v, want 1", got)
	}

	h.Release()
	waitFor(t, "hung target back up", func() bool {
		s, _ := inv.Latest("hung")
		return s.Up()
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
