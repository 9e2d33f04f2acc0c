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

	"github.com/checkpoint-exporter/checkpoint_exporter/layout"
)

// ioprioClassIdle is the idle I/O class of ioprio_get(2).
const ioprioClassIdle = 3

// threadPriority reads the CPU policy and I/O class of thread tid (0: the
// calling thread).
func threadPriority(tid int) (policy uint32, ioClass int, err error) {
	attr, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("sched_getattr: %w", err)
	}
	const whoProcess, classShift = 1, 13
	prio, _, e := unix.Syscall(unix.SYS_IOPRIO_GET, whoProcess, uintptr(tid), 0)
	if e != 0 {
		return 0, 0, fmt.Errorf("ioprio_get: %w", e)
	}
	return attr.Policy, int(prio >> classShift), nil
}

// keras builds a target of n Keras checkpoints, each a directory-free file.
func kerasTarget(t *testing.T, n int) Target {
	t.Helper()
	entries := map[string]int{}
	for i := 1; i <= n; i++ {
		entries[fmt.Sprintf("checkpoint_step_%d.keras", i*100)] = 4096
	}
	return Target{Name: "t", Path: tree(t, entries), Layout: layout.Auto}
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
