package sizing

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
)

// Background scans at idle priority size checkpoints in a walker process, a
// child whose every thread is at idle CPU and I/O priority, not on idle
// threads of this process. An idle thread of a Go program holds back the
// whole program whenever the kernel leaves it waiting while it runs Go code:
// a garbage collection cannot start or finish until every thread has
// stopped, so with every core busy the exporter stood still for 0.2 to 0.5 s
// at each collection (BENCHMARKS.md, "Beside a training job"). A starved
// walker process only slows its own walk.
//
// The protocol, over the child's stdin and stdout, all integers little
// endian: the parent sends the target's device number (u64), then for each
// top-level entry to size its name (u32 length, bytes). The child first
// sends 't' and the ID of the thread that walks (u32), then answers each
// name with 'r' and five u64s (bytes, files, newest mtime, newest ctime,
// errors), preceded by any number of 'b' (still walking) while it walks.
// The target directory is the child's file descriptor 3; the child ends when
// its stdin does.
//
// A starved walker is not a hung one. While the walking thread is runnable
// (state R: it waits for a CPU, not for a system call to return) the parent
// counts it as progress, so a busy node never makes a target look hung;
// a walk stuck in a system call of a dead mount sleeps (D or S) and does not
// count.
//
// Nor is a frozen walker (stopped with SIGSTOP, a frozen cgroup, a debugger)
// a hung filesystem. When the walker has said nothing for a third of the
// hang timeout, the parent asks the filesystem itself (statfs and a listing
// of the target directory); if that answers, the walker is killed and the
// scan finished in this process at normal priority, so the target stays up.
// Only a filesystem that does not answer is left for the hang watchdog.

// walkerDirFD is the target directory in the walker process.
const walkerDirFD = 3

// beatEvery is how often a walker process says it is still walking.
const beatEvery = 100 * time.Millisecond

// Proc is the parent's end of one walker process, used by one scan.
type Proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	in    *bufio.Writer
	out   *bufio.Reader
	alive Progress
	stop  func() bool  // stops killing the process when the scan's context ends
	once  sync.Once    // of close
	tid   atomic.Int32 // the walker's walking thread, once it said

	// heard is when the walker last said anything or was seen runnable
	// (unix nanoseconds); after freeze without a word the filesystem is
	// asked with probe, and a walker that froze while it answers is killed:
	// frozen then says why.
	heard  atomic.Int64
	freeze time.Duration
	probe  func() error
	frozen atomic.Pointer[error]

	// OnReply, when set (tests), runs after each answer with the
	// process's ID.
	OnReply func(pid int)
}

// StartProc starts argv as a walker process for the directory dirfd on
// device dev. It is killed when ctx ends, and when it says nothing for
// freeze while probe (a question to the filesystem) answers in time.
func StartProc(ctx context.Context, argv []string, dirfd int, dev uint64, alive Progress, freeze time.Duration, probe func() error) (*Proc, error) {
	if len(argv) == 0 {
		return nil, errors.New("no walker command")
	}
	fd, err := unix.FcntlInt(uintptr(dirfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("walker: dup target directory: %w", err)
	}
	dir := os.NewFile(uintptr(fd), "target")
	defer dir.Close() // the child has its own copy once started
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.ExtraFiles = []*os.File{dir} // walkerDirFD
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("walker: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("walker: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("walker: start %s: %w", argv[0], err)
	}
	p := &Proc{cmd: cmd, stdin: stdin, in: bufio.NewWriter(stdin), out: bufio.NewReader(stdout), alive: alive, freeze: freeze, probe: probe}
	p.heard.Store(time.Now().UnixNano())
	stopKill := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	watchCtx, stopWatch := context.WithCancel(context.Background())
	p.stop = func() bool { stopWatch(); return stopKill() }
	go p.watch(watchCtx)
	if err := binary.Write(p.in, binary.LittleEndian, dev); err != nil {
		p.Close()
		return nil, fmt.Errorf("walker: %w", err)
	}
	return p, nil
}

// watch moves the progress clock on every beatEvery while the walker's
// walking thread is runnable: starved by busier processes, not stuck. A
// walker that says nothing for freeze is checked with checkFrozen.
func (p *Proc) watch(ctx context.Context) {
	tick := time.NewTicker(beatEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if tid := p.tid.Load(); tid != 0 && threadRunnable(p.cmd.Process.Pid, int(tid)) {
				p.alive.Beat()
				p.heard.Store(now.UnixNano())
				continue
			}
			if p.freeze > 0 && p.probe != nil && now.Sub(time.Unix(0, p.heard.Load())) >= p.freeze {
				if p.checkFrozen(ctx) {
					return
				}
				p.heard.Store(time.Now().UnixNano()) // the filesystem did not answer: ask again later
			}
		}
	}
}

// checkFrozen asks the filesystem (probe, at most freeze long) and kills the
// walker if it answers: the walker, not the filesystem, stopped. It reports
// whether it killed it. A probe that does not answer is left running (a
// hung mount) and the walker alone: the hang watchdog decides.
func (p *Proc) checkFrozen(ctx context.Context) bool {
	answered := make(chan error, 1)
	go func() { answered <- p.probe() }()
	t := time.NewTimer(p.freeze)
	defer t.Stop()
	select {
	case err := <-answered:
		if err != nil {
			return false
		}
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
	if time.Since(time.Unix(0, p.heard.Load())) < p.freeze {
		return false // it spoke meanwhile
	}
	err := fmt.Errorf("walker process %d said nothing for %s while the filesystem answered (stopped or frozen?): killed, the scan finished at normal priority",
		p.cmd.Process.Pid, p.freeze)
	p.frozen.Store(&err)
	_ = p.cmd.Process.Kill()
	return true
}

// threadRunnable reports whether thread tid of process pid is running or
// waiting for a CPU (state R in /proc/PID/task/TID/stat).
func threadRunnable(pid, tid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'R'
}

// Size asks the walker process to measure the top-level entry name.
func (p *Proc) Size(name string) (Usage, error) {
	var u Usage
	if err := binary.Write(p.in, binary.LittleEndian, uint32(len(name))); err != nil {
		return u, fmt.Errorf("walker: %w", err)
	}
	if _, err := p.in.WriteString(name); err != nil {
		return u, fmt.Errorf("walker: %w", err)
	}
	if err := p.in.Flush(); err != nil {
		return u, fmt.Errorf("walker: %w", err)
	}
	for {
		kind, err := p.out.ReadByte()
		if err != nil {
			if frozen := p.frozen.Load(); frozen != nil {
				return u, *frozen
			}
			return u, fmt.Errorf("walker: %w", err)
		}
		p.heard.Store(time.Now().UnixNano())
		switch kind {
		case 't':
			var tid uint32
			if err := binary.Read(p.out, binary.LittleEndian, &tid); err != nil {
				return u, fmt.Errorf("walker: %w", err)
			}
			p.tid.Store(int32(tid))
		case 'b':
			p.alive.Beat()
		case 'r':
			var v [5]uint64
			if err := binary.Read(p.out, binary.LittleEndian, &v); err != nil {
				return u, fmt.Errorf("walker: %w", err)
			}
			if p.OnReply != nil {
				p.OnReply(p.cmd.Process.Pid)
			}
			return Usage{Bytes: int64(v[0]), Files: int64(v[1]), Mtime: int64(v[2]), Ctime: int64(v[3]), Errors: v[4]}, nil
		default:
			return u, fmt.Errorf("walker: unexpected message %q", kind)
		}
	}
}

// Close ends the walker: its stdin closes, it exits; it is killed if it
// does not (a scan that was cancelled, or a walk stuck on a hung mount: then
// it is left to exit when the mount answers, and reaped in the background).
func (p *Proc) Close() { p.once.Do(p.end) }

func (p *Proc) end() {
	p.stop()
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		_ = p.cmd.Process.Kill()
	}
}

// ServeWalker is the walker process's side: it moves every thread of this
// process to idle CPU and I/O priority, then sizes the entries its parent
// names in the directory open as file descriptor 3, until in ends. A
// priority that cannot be set is reported on stderr; the walk goes on.
func ServeWalker(in io.Reader, out io.Writer) error {
	if err := enterIdleProcess(); err != nil {
		fmt.Fprintln(os.Stderr, "walker: running at normal priority:", err)
	}
	r := bufio.NewReader(in)
	w := bufio.NewWriter(out)
	var dev uint64
	if err := binary.Read(r, binary.LittleEndian, &dev); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("walker: %w", err)
	}
	// Walk on this thread only, and tell the parent which it is.
	runtime.LockOSThread()
	if err := w.WriteByte('t'); err != nil {
		return err
	}
	if err := binary.Write(w, binary.LittleEndian, uint32(unix.Gettid())); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	b := &pipeBeat{w: w}
	wk := &Walker{s: NewSizer(dev), ctx: context.Background(), alive: b}
	nameZ := make([]byte, 0, 256)
	for {
		var n uint32
		if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("walker: %w", err)
		}
		if n > unix.PathMax {
			return fmt.Errorf("walker: name of %d bytes", n)
		}
		nameZ = slices.Grow(nameZ[:0], int(n)+1)[:n]
		if _, err := io.ReadFull(r, nameZ); err != nil {
			return fmt.Errorf("walker: %w", err)
		}
		nameZ = append(nameZ, 0)
		u := wk.sizeEntry(walkerDirFD, nameZ)
		if b.err != nil {
			return b.err
		}
		if err := w.WriteByte('r'); err != nil {
			return err
		}
		v := [5]uint64{uint64(u.Bytes), uint64(u.Files), uint64(u.Mtime), uint64(u.Ctime), u.Errors}
		if err := binary.Write(w, binary.LittleEndian, v); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

// sizeEntry measures the top-level entry nameZ of the directory dirfd: the
// entry itself and, for a directory, everything below it, on the target's
// filesystem only.
func (w *Walker) sizeEntry(dirfd int, nameZ []byte) Usage {
	var u Usage
	var st unix.Stat_t
	if err := dirfs.LstatAt(dirfd, nameZ, &st); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			u.Errors++
		}
		return u
	}
	if st.Dev != w.s.dev {
		return u // a mount point: another filesystem is never entered
	}
	return w.measure(dirfd, nameZ, &st)
}

// pipeBeat tells the parent the walk goes on, at most every beatEvery.
type pipeBeat struct {
	w    *bufio.Writer
	last time.Time
	err  error
}

func (b *pipeBeat) Beat() {
	if now := time.Now(); b.err == nil && now.Sub(b.last) >= beatEvery {
		b.last = now
		if b.err = b.w.WriteByte('b'); b.err == nil {
			b.err = b.w.Flush()
		}
	}
}

// enterIdleProcess moves every thread of this process to idle CPU and I/O
// priority. Threads started later inherit it from the thread that starts
// them, so the list is read until a pass finds no thread left to move.
func enterIdleProcess() error {
	done := map[int]bool{}
	for {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("list threads: %w", err)
		}
		moved := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || done[tid] {
				continue
			}
			if err := setIdlePriority(tid); err != nil && !errors.Is(err, unix.ESRCH) {
				return err
			}
			done[tid], moved = true, true
		}
		if !moved {
			return nil
		}
	}
}
