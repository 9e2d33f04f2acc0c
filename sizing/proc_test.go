package sizing

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// beats is a progress clock: when it was last moved on.
type beats struct {
	mu   sync.Mutex // guards last
	last time.Time
}

func (b *beats) Beat() { b.mu.Lock(); b.last = time.Now(); b.mu.Unlock() }

// since is how long the clock has stood still, counted from start if it
// never moved.
func (b *beats) since(start time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		return time.Since(start)
	}
	return time.Since(b.last)
}

// lockedThread runs fn on a goroutine locked to its own OS thread and
// returns the thread's ID once fn has started.
func lockedThread(t *testing.T, fn func()) int {
	t.Helper()
	tid := make(chan int)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- unix.Gettid()
		fn()
	}()
	return <-tid
}

// A walker waiting for a CPU is making progress; one asleep in a system
// call (the pattern of a hung mount) is not: the watch moves the progress
// clock only for the first.
func TestWalkerWatchTellsStarvedFromStuck(t *testing.T) {
	var stop atomic.Bool
	defer stop.Store(true)
	spinning := lockedThread(t, func() {
		for !stop.Load() {
		}
	})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rfd := int(r.Fd()) // blocking mode: the thread sleeps in read(2)
	blocked := lockedThread(t, func() {
		var b [1]byte
		unix.Read(rfd, b[:])
	})
	for deadline := time.Now().Add(30 * time.Second); threadRunnable(os.Getpid(), blocked); {
		if time.Now().After(deadline) {
			t.Fatal("the reader never went to sleep in read(2)")
		}
		time.Sleep(10 * time.Millisecond) // let the reader reach read(2)
	}

	for _, tc := range []struct {
		name     string
		tid      int
		runnable bool
	}{
		{"runnable thread", spinning, true},
		{"thread asleep in a system call", blocked, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.runnable {
				// The spinning goroutine may be preempted now and then, its
				// thread then waits a moment for it: runnable most of the time.
				for deadline := time.Now().Add(30 * time.Second); !threadRunnable(os.Getpid(), tc.tid); {
					if time.Now().After(deadline) {
						t.Fatal("a spinning thread is never runnable")
					}
					time.Sleep(time.Millisecond)
				}
			} else if threadRunnable(os.Getpid(), tc.tid) {
				t.Fatal("a thread asleep in read(2) is runnable")
			}
			clock := &beats{}
			p := &Proc{cmd: &exec.Cmd{Process: &os.Process{Pid: os.Getpid()}}, alive: clock}
			p.tid.Store(int32(tc.tid))
			start := time.Now()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { p.watch(ctx); close(done) }()
			time.Sleep(10 * beatEvery)
			cancel()
			<-done
			stalled := clock.since(start)
			if tc.runnable && stalled >= 9*beatEvery {
				t.Errorf("runnable walker: no progress for %s", stalled)
			}
			if !tc.runnable && stalled < 10*beatEvery {
				t.Errorf("walker asleep in a system call counted as progress (stalled only %s)", stalled)
			}
		})
	}
	w.Write([]byte{0}) // let the reader go
}
