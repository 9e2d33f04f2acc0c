package checkpoint

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// keras builds a target of n Keras checkpoints, each a directory-free file.
func kerasTarget(t *testing.T, n int) Target {
	t.Helper()
	entries := map[string]int{}
	for i := 1; i <= n; i++ {
		entries[fmt.Sprintf("checkpoint_step_%d.keras", i*100)] = 4096
	}
	return Target{Name: "t", Path: tree(t, entries), Layout: LayoutAuto}
}

type observed struct {
	mu       sync.Mutex
	policies []uint32
	classes  []int
}

func (o *observed) record(t *testing.T) func() {
	return func() {
		policy, class, err := threadPriority()
		if err != nil {
			t.Error(err)
			return
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		o.policies = append(o.policies, policy)
		o.classes = append(o.classes, class)
	}
}

func TestWorkerPriority(t *testing.T) {
	if err := CheckIdlePriority(); err != nil {
		t.Skipf("this process may not lower its threads' priority: %v", err)
	}
	tg := kerasTarget(t, 8)
	for _, tc := range []struct {
		name       string
		idle       bool
		background bool
		wantIdle   bool
	}{
		{"background scan with idle on", true, true, true},
		{"background scan with idle off", false, true, false},
		{"on-demand scan with idle on", true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewScanner(tg, ScanOptions{Idle: tc.idle, Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			var o observed
			s.onWorker = o.record(t)
			var snap *Snapshot
			if tc.background {
				var ok bool
				if snap, ok = s.ScanBackground(context.Background()); !ok {
					t.Fatal("background scan gave way with nothing to give way to")
				}
			} else {
				snap = s.Scan(context.Background())
			}
			if snap.Err != nil || len(snap.Checkpoints) != 8 {
				t.Fatalf("scan: err %v, %d checkpoints, want 8", snap.Err, len(snap.Checkpoints))
			}
			if len(o.policies) == 0 {
				t.Fatal("no worker ran")
			}
			for i := range o.policies {
				gotIdle := o.policies[i] == unix.SCHED_IDLE && o.classes[i] == ioprioClassIdle
				if gotIdle != tc.wantIdle {
					t.Errorf("worker %d: policy %d, I/O class %d; want idle=%v", i, o.policies[i], o.classes[i], tc.wantIdle)
				}
			}
		})
	}
	// The idle threads end with their goroutines: none is left for the rest
	// of the process (the HTTP server) to run on.
	deadline := time.Now().Add(30 * time.Second)
	for {
		idle := idleThreads(t)
		if len(idle) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("threads still at SCHED_IDLE after the scans ended: %v", idle)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// idleThreads lists this process's threads whose policy is SCHED_IDLE
// (field 41 of /proc/self/task/TID/stat).
func idleThreads(t *testing.T) []string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var idle []string
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "stat"))
		if err != nil {
			continue // the thread ended meanwhile
		}
		// The command name (field 2) is in parentheses and may hold spaces.
		rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
		fields := strings.Fields(rest)
		if len(fields) > 38 && fields[38] == fmt.Sprint(unix.SCHED_IDLE) {
			idle = append(idle, task.Name())
		}
	}
	return idle
}

func TestScanPreemptsBackgroundScan(t *testing.T) {
	tg := kerasTarget(t, 4)
	s, err := NewScanner(tg, ScanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	hold, held := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.onWorker = func() {
		once.Do(func() { close(held); <-hold }) // only the background scan's worker waits
	}
	type bg struct {
		snap *Snapshot
		ok   bool
	}
	bgDone := make(chan bg, 1)
	go func() {
		snap, ok := s.ScanBackground(context.Background())
		bgDone <- bg{snap, ok}
	}()
	<-held
	fgDone := make(chan *Snapshot, 1)
	go func() { fgDone <- s.Scan(context.Background()) }()
	// Release the background worker only once Scan has asked it to give way.
	for {
		s.bgMu.Lock()
		asked := s.urgent > 0
		s.bgMu.Unlock()
		if asked {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(hold)
	if r := <-bgDone; r.ok || r.snap != nil {
		t.Fatalf("background scan overtaken by Scan returned ok=%v snap=%v; want it to give way", r.ok, r.snap)
	}
	fg := <-fgDone
	if fg.Err != nil || len(fg.Checkpoints) != 4 {
		t.Fatalf("on-demand scan: err %v, %d checkpoints, want 4", fg.Err, len(fg.Checkpoints))
	}
	if s.lastFull.IsZero() {
		t.Error("the on-demand scan's full rescan was not recorded")
	}
	// With nothing to give way to, the next background scan completes.
	if snap, ok := s.ScanBackground(context.Background()); !ok || snap.Err != nil {
		t.Fatalf("background scan: ok=%v err=%v", ok, snap.Err)
	}
}

func TestPreemptedScanLeavesScannerState(t *testing.T) {
	tg := kerasTarget(t, 3)
	s, err := NewScanner(tg, ScanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	s.onWorker = func() { cancel(errPreempted) }
	snap, _ := s.scan(ctx, false, false)
	if snap.Err == nil {
		t.Fatal("cancelled scan reported no error")
	}
	if !s.lastFull.IsZero() || len(s.cache) != 0 {
		t.Errorf("cancelled scan changed state: lastFull %v, %d cached entries", s.lastFull, len(s.cache))
	}
}
