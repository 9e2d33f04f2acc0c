package main

import (
	"bytes"
	bin "encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/hangfs"
)

// Background scans get a walker process only with --collector.idle-priority.
func TestScanOptionsWalker(t *testing.T) {
	c := &common{}
	if got := c.scanOptions(1, true).Walker; !slices.Equal(got, []string{"/proc/self/exe", walkerArg}) {
		t.Errorf("idle: walker %q", got)
	}
	if got := c.scanOptions(1, false).Walker; got != nil {
		t.Errorf("not idle: walker %q", got)
	}
}

// The binary run as "internal-walker" speaks the walker protocol: the
// target directory as descriptor 3, its device, then a name; it answers with
// the entry's sums.
func TestBinaryServesWalker(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"checkpoint-100/a.bin", "checkpoint-100/sub/b.bin"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, 10000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	bin.Write(&in, bin.LittleEndian, st.Dev)
	name := "checkpoint-100"
	bin.Write(&in, bin.LittleEndian, uint32(len(name)))
	in.WriteString(name)
	cmd := exec.Command(binary, walkerArg)
	cmd.Stdin = &in
	cmd.ExtraFiles = []*os.File{d}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("walker: %v", err)
	}
	// The walking thread ('t' and its ID), beats ('b'), then 'r' and five
	// numbers.
	if len(out) < 5 || out[0] != 't' || bin.LittleEndian.Uint32(out[1:5]) == 0 {
		t.Fatalf("answer %q does not start with the walking thread", out)
	}
	out = bytes.TrimLeft(out[5:], "b")
	if len(out) != 1+5*8 || out[0] != 'r' {
		t.Fatalf("answer %q", out)
	}
	var v [5]uint64
	bin.Read(bytes.NewReader(out[1:]), bin.LittleEndian, &v)
	// checkpoint-100, a.bin, sub, sub/b.bin; no errors.
	if v[1] != 4 || v[4] != 0 || v[0] < 20000 {
		t.Errorf("bytes %d, files %d, errors %d; want at least 20000 bytes, 4 files, no errors", v[0], v[1], v[4])
	}
}

// childrenOf lists the live processes whose parent is pid (not zombies: a
// walker that has exited and is about to be reaped).
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		// Fields 3 (state) and 4 (ppid) follow the parenthesised command name.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[0] != "Z" && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// threadPolicies maps each thread of pid to its scheduling policy and I/O
// priority class (read back with sched_getattr and ioprio_get).
func threadPolicies(t *testing.T, pid int) map[int][2]int {
	t.Helper()
	out := map[int][2]int{}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return out // the process is gone
	}
	for _, e := range tasks {
		tid, _ := strconv.Atoi(e.Name())
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // ended meanwhile
		}
		prio, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, 1 /* IOPRIO_WHO_PROCESS */, uintptr(tid), 0)
		if errno != 0 {
			continue
		}
		out[tid] = [2]int{int(attr.Policy), int(prio >> 13)}
	}
	return out
}

// With default flags, the real server's background scans walk in a child
// process whose every thread is SCHED_IDLE and in the idle I/O class, while
// no thread of the server is; with --no-collector.idle-priority there is no
// such child. The walk is held inside a hung FUSE directory so that it can
// be looked at.
func TestServeWalksInIdleChild(t *testing.T) {
	needFUSE(t)
	for _, tc := range []struct {
		name  string
		flags []string
		child bool
	}{
		{"default", nil, true},
		{"idle priority off", []string{"--no-collector.idle-priority"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			back := filepath.Join(root, "back")
			os.Mkdir(back, 0o755)
			hfTree(t, back, 4, 5)
			h := hangfs.Mount(t, back, filepath.Join(root, "mnt"), hangfs.Options{})
			cfg := filepath.Join(root, "c.yml")
			os.WriteFile(cfg, []byte("scan_interval: 200ms\ntargets:\n  - name: t\n    path: "+h.Dir+"\n"), 0o644)
			p := startServe(t, append([]string{"--config.file=" + cfg, "--collector.full-rescan-interval=-1s"}, tc.flags...)...)
			scrapeUntil(t, p.base+"/metrics", `checkpoint_dir_up{target="t"} 1`)
			// Hang the next directory opened. That may be the target itself,
			// which the server lists before any walk (and a walker of the
			// previous scan may still be exiting): then let it go and try
			// again, until a walk is what hangs.
			walkers := map[int]map[int][2]int{} // pid: thread policies
			for range 20 {
				h.HangOn(hangfs.OpOpendir, 1)
				h.WaitBlocked(t, 30*time.Second)
				clear(walkers)
				for _, c := range childrenOf(t, p.cmd.Process.Pid) {
					cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c))
					if pols := threadPolicies(t, c); strings.Contains(string(cmdline), walkerArg) && len(pols) > 0 {
						walkers[c] = pols
					}
				}
				if len(walkers) > 0 || !tc.child {
					break
				}
				h.Release()
			}
			defer h.Release()

			if got := len(walkers) > 0; got != tc.child {
				t.Fatalf("walker processes %v; want one: %v", walkers, tc.child)
			}
			for c, pols := range walkers {
				for tid, pol := range pols {
					if pol != [2]int{unix.SCHED_IDLE, 3} {
						t.Errorf("walker %d thread %d: policy %d, I/O class %d; want SCHED_IDLE, idle (3)", c, tid, pol[0], pol[1])
					}
				}
			}
			for tid, pol := range threadPolicies(t, p.cmd.Process.Pid) {
				if pol[0] == unix.SCHED_IDLE || pol[1] == 3 {
					t.Errorf("server thread %d at policy %d, I/O class %d", tid, pol[0], pol[1])
				}
			}
		})
	}
}

// Issue #23 item 2: a walker process stopped with SIGSTOP (a frozen cgroup,
// a debugger) on a filesystem that answers is not a hung filesystem. The
// exporter asks the filesystem, kills the walker and finishes the scan
// itself: the target stays up all along, a webhook prune succeeds, the
// stopped walker is gone, and a log line and a counter say why. Before, the
// target was reported down after --collector.hang-timeout and the prune
// failed with 500 "filesystem not answering".
func TestStoppedWalkerIsNotAHungFilesystem(t *testing.T) {
	needFUSE(t)
	root := t.TempDir()
	back := filepath.Join(root, "back")
	os.Mkdir(back, 0o755)
	hfTree(t, back, 4, 5)
	h := hangfs.Mount(t, back, filepath.Join(root, "mnt"), hangfs.Options{})
	tok := filepath.Join(root, "token")
	os.WriteFile(tok, []byte("t0ken"), 0o600)
	cfg := filepath.Join(root, "c.yml")
	os.WriteFile(cfg, []byte("scan_interval: 200ms\ntargets:\n  - name: t\n    path: "+h.Dir+"\n    prune: {execute: true, attribute_cache: 0s}\n"), 0o644)
	p := startServe(t, "--config.file="+cfg, "--collector.full-rescan-interval=-1s", "--collector.hang-timeout=3s", "--webhook.token-file="+tok)
	scrapeUntil(t, p.base+"/metrics", `checkpoint_dir_up{target="t"} 1`)

	// Catch a walker inside a walk (its opendir held by the filesystem),
	// stop it, then let the filesystem answer again.
	walker := 0
	for range 20 {
		h.HangOn(hangfs.OpOpendir, 1)
		h.WaitBlocked(t, 30*time.Second)
		for _, c := range childrenOf(t, p.cmd.Process.Pid) {
			if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c)); strings.Contains(string(cmdline), walkerArg) {
				walker = c
			}
		}
		if walker != 0 {
			break
		}
		h.Release()
	}
	if walker == 0 {
		h.Release()
		t.Fatal("no walker process caught inside a walk")
	}
	if err := unix.Kill(walker, unix.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Kill(walker, unix.SIGKILL) })
	h.Release()

	// Up at every look, until the walker is counted as given up.
	deadline := time.Now().Add(30 * time.Second)
	for {
		body := get(t, p.base+"/metrics")
		if strings.Contains(body, `checkpoint_dir_up{target="t"} 0`) {
			t.Fatalf("target reported down while its filesystem answers:\n%s", p.logs.String())
		}
		if strings.Contains(body, `checkpoint_scan_walker_failures_total{target="t"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stopped walker was never given up:\n%s", p.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(p.logs.String(), "said nothing for") {
		t.Errorf("no log line says why the walker was killed:\n%s", p.logs.String())
	}
	if code := postAlert(t, p.base, "t0ken", "t"); code != 200 {
		t.Errorf("webhook prune answered %d, want 200:\n%s", code, p.logs.String())
	}
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", walker)); err != nil {
			break // gone, and reaped
		}
		if time.Now().After(end) {
			t.Fatalf("the stopped walker %d is still there", walker)
		}
	}
}
