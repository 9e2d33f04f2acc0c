package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
	"github.com/checkpoint-exporter/checkpoint_exporter/layout"
	"github.com/checkpoint-exporter/checkpoint_exporter/sizing"
)

// walkerEnv makes the test binary a walker process (see TestMain).
const walkerEnv = "CHECKPOINT_EXPORTER_TEST_WALKER"

func TestMain(m *testing.M) {
	if os.Getenv(walkerEnv) == "1" {
		if err := sizing.ServeWalker(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testWalker returns the command of a walker process: this test binary.
func testWalker(t *testing.T) []string {
	t.Setenv(walkerEnv, "1")
	return []string{os.Args[0]}
}

// hfTarget builds n Hugging Face checkpoint directories with nested files;
// the last two checkpoints share a hard-linked file.
func hfTarget(t *testing.T, n int) Target {
	t.Helper()
	entries := map[string]int{}
	for i := 1; i <= n; i++ {
		d := fmt.Sprintf("checkpoint-%d/", i*100)
		entries[d+"model.safetensors"] = 8192 * i
		entries[d+"trainer_state.json"] = 100
		entries[d+"optimizer/shard-0.pt"] = 4096
		entries[d+"optimizer/deeper/shard-1.pt"] = 4096
	}
	dir := tree(t, entries)
	a := filepath.Join(dir, fmt.Sprintf("checkpoint-%d", (n-1)*100), "model.safetensors")
	b := filepath.Join(dir, fmt.Sprintf("checkpoint-%d", n*100), "linked.bin")
	if err := os.Link(a, b); err != nil {
		t.Fatal(err)
	}
	return Target{Name: "t", Path: dir, Layout: layout.Auto}
}

// sameSizes compares two scans of one tree: the same checkpoints with the
// same file counts, and the same total bytes. (Which of two checkpoints
// sharing a hard-linked file is charged for it depends on which is walked
// first, so bytes are compared per target.)
func sameSizes(t *testing.T, got, want *Snapshot) {
	t.Helper()
	files := func(s *Snapshot) map[string]int64 {
		out := map[string]int64{}
		for _, c := range s.Checkpoints {
			out[c.Name] = c.Files
		}
		return out
	}
	g, w := files(got), files(want)
	if len(g) != len(w) || len(w) == 0 {
		t.Fatalf("checkpoints: %v, want %v", g, w)
	}
	for name, v := range w {
		if g[name] != v {
			t.Errorf("%s: %d files; sized in this process %d", name, g[name], v)
		}
	}
	if got.Bytes() != want.Bytes() {
		t.Errorf("%d bytes in all; sized in this process %d", got.Bytes(), want.Bytes())
	}
}

// threadsOf lists the thread IDs of process pid.
func threadsOf(t *testing.T, pid int) []int {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var tids []int
	for _, e := range tasks {
		tid, err := strconv.Atoi(e.Name())
		if err == nil {
			tids = append(tids, tid)
		}
	}
	return tids
}

// Background scans size checkpoints in a walker process whose every thread
// is at idle CPU and I/O priority, with the same results as sizing here; no
// thread of this process is ever moved; on-demand scans and scans without a
// walker command walk here, at normal priority.
func TestWalkerPriority(t *testing.T) {
	if err := sizing.CheckIdlePriority(); err != nil {
		testenv.Missing(t, "this process may not lower its threads' priority: %v", err)
	}
	tg := hfTarget(t, 6)
	ref, err := NewScanner(tg, ScanOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := ref.Scan(context.Background())
	if want.Err != nil {
		t.Fatal(want.Err)
	}
	walker := testWalker(t)
	for _, tc := range []struct {
		name       string
		walker     []string
		background bool
		wantProc   bool
	}{
		{"background scan with a walker", walker, true, true},
		{"background scan without a walker", nil, true, false},
		{"on-demand scan with a walker", walker, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewScanner(tg, ScanOptions{Walker: tc.walker, Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			replies := 0
			s.onWalkerReply = func(pid int) {
				mu.Lock()
				defer mu.Unlock()
				replies++
				if pid == os.Getpid() {
					t.Error("the walker is this process")
				}
				for _, tid := range threadsOf(t, pid) {
					policy, class, err := threadPriority(tid)
					if errors.Is(err, unix.ESRCH) {
						continue // the thread ended meanwhile
					}
					if err != nil || policy != unix.SCHED_IDLE || class != ioprioClassIdle {
						t.Errorf("walker thread %d: policy %d, I/O class %d, err %v; want SCHED_IDLE, idle", tid, policy, class, err)
					}
				}
			}
			s.onWorker = func() {
				if policy, class, err := threadPriority(0); err != nil || policy == unix.SCHED_IDLE || class == ioprioClassIdle {
					t.Errorf("a sizing worker of this process runs at policy %d, I/O class %d (err %v)", policy, class, err)
				}
			}
			var snap *Snapshot
			if tc.background {
				var ok bool
				if snap, ok = s.ScanBackground(context.Background()); !ok {
					t.Fatal("background scan gave way with nothing to give way to")
				}
			} else {
				snap = s.Scan(context.Background())
			}
			if snap.Err != nil || snap.WalkerErr != nil {
				t.Fatalf("scan: err %v, walker err %v", snap.Err, snap.WalkerErr)
			}
			sameSizes(t, snap, want)
			if got := replies > 0; got != tc.wantProc {
				t.Errorf("%d answers from a walker process; want a walker: %v", replies, tc.wantProc)
			}
			if idle := idleThreads(t); len(idle) > 0 {
				t.Errorf("threads of this process at SCHED_IDLE: %v", idle)
			}
		})
	}
}

// A walker that cannot start, ends early or answers nonsense is given up:
// the scan is finished in this process with the same results and says why.
func TestWalkerFailureFallsBack(t *testing.T) {
	tg := hfTarget(t, 4)
	ref, err := NewScanner(tg, ScanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := ref.Scan(context.Background())
	for _, tc := range []struct {
		name   string
		walker []string
	}{
		{"cannot start", []string{"/nonexistent/walker"}},
		{"exits at once", []string{"/bin/true"}},
		{"answers nonsense", []string{"/bin/sh", "-c", "head -c 20 >/dev/null; printf x"}},
		{"dies after one answer", testWalker(t)}, // killed by the hook below
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewScanner(tg, ScanOptions{Walker: tc.walker, Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "dies after one answer" {
				s.onWalkerReply = func(pid int) { _ = unix.Kill(pid, unix.SIGKILL) }
			}
			snap, ok := s.ScanBackground(context.Background())
			if !ok || snap.Err != nil {
				t.Fatalf("scan: ok %v, err %v", ok, snap.Err)
			}
			if snap.WalkerErr == nil {
				t.Error("no walker error reported")
			}
			sameSizes(t, snap, want)
		})
	}
}

// A background scan that gives way ends its walker process.
func TestWalkerEndsWithItsScan(t *testing.T) {
	tg := hfTarget(t, 4)
	s, err := NewScanner(tg, ScanOptions{Walker: testWalker(t), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var pids []int
	s.onWalkerReply = func(pid int) {
		pids = append(pids, pid)
		cancel()
	}
	snap, _ := s.scan(ctx, true, false)
	if snap.Err == nil {
		t.Error("cancelled scan reported no error")
	}
	if len(pids) == 0 {
		t.Fatal("no walker process answered")
	}
	// The process was waited for: it is gone, not even a zombie.
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pids[0])); !os.IsNotExist(err) {
		t.Errorf("walker process %d still there after its scan ended (%v)", pids[0], err)
	}
}

// Plain files need no walk: a target of single files never starts a walker
// (here one that could not start, which would be reported).
func TestWalkerOnlyForDirectories(t *testing.T) {
	s, err := NewScanner(kerasTarget(t, 5), ScanOptions{Walker: []string{"/nonexistent/walker"}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	snap, ok := s.ScanBackground(context.Background())
	if !ok || snap.Err != nil || len(snap.Checkpoints) != 5 {
		t.Fatalf("scan: ok %v, err %v, %d checkpoints", ok, snap.Err, len(snap.Checkpoints))
	}
	if snap.WalkerErr != nil {
		t.Errorf("a walker was started for plain files: %v", snap.WalkerErr)
	}
}
