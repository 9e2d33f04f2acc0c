package sizing

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// I/O priority classes and the "who" of ioprio_set(2); x/sys has no names
// for them.
const (
	ioprioWhoProcess = 1 // with who = 0: the calling thread
	ioprioClassShift = 13
	ioprioClassIdle  = 3
)

// enterIdlePriority moves the calling OS thread to the SCHED_IDLE CPU policy
// and the idle I/O class, so the kernel gives it only CPU and disk time that
// no other thread wants. The caller must hold runtime.LockOSThread and must
// let its goroutine exit without unlocking: the runtime then ends the thread
// instead of handing an idle-priority thread to other goroutines. runIdle
// does all this.
func enterIdlePriority() error { return setIdlePriority(0) }

// setIdlePriority moves thread tid (0: the calling thread) to SCHED_IDLE and
// the idle I/O class.
func setIdlePriority(tid int) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}
	if err := unix.SchedSetAttr(tid, &attr, 0); err != nil {
		return fmt.Errorf("sched_setattr SCHED_IDLE: %w", err)
	}
	if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), ioprioClassIdle<<ioprioClassShift); e != 0 {
		return fmt.Errorf("ioprio_set IOPRIO_CLASS_IDLE: %w", e)
	}
	return nil
}

// runIdle calls fn on an OS thread at idle CPU and I/O priority and waits for
// it to return. The thread ends when fn returns: the goroutine that locked it
// exits without unlocking, so the runtime never hands an idle-priority thread
// to other goroutines (the HTTP server), and threads it creates later are
// cloned from its template thread, never from a locked one. If the policy
// cannot be set (a seccomp profile may forbid it), fn still runs, at normal
// priority, and the error is returned.
func runIdle(fn func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread cannot end: the runtime would park it for good,
			// still at idle priority, where it may be the one to take the
			// process's signals. While this goroutine holds it, a new one
			// runs on another thread.
			errc <- runIdle(fn)
			runtime.UnlockOSThread()
			return
		}
		err := enterIdlePriority()
		fn()
		errc <- err
	}()
	return <-errc
}

// CheckIdlePriority reports whether this process may move threads to idle
// priority; it tries on a throwaway thread.
func CheckIdlePriority() error {
	return runIdle(func() {})
}
