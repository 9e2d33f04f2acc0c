package offload

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// Results of one offload, as in checkpoint_offload_runs_total{result}.
const (
	ResultOK = "ok"
	// ResultFailed: the command exited with a non-zero status.
	ResultFailed = "failed"
	// ResultTimeout: the command ran longer than the timeout and was killed.
	ResultTimeout = "timeout"
	// ResultKilled: the command was ended by a signal it was not sent by us.
	ResultKilled = "killed"
	// ResultChanged: the checkpoint changed before or during the copy; the
	// copy is not trusted and is done again after the next scan.
	ResultChanged = "changed"
	// ResultError: the command could not be started, or the checkpoint not
	// read.
	ResultError = "error"
)

// Results lists every result, for metrics.
var Results = []string{ResultOK, ResultFailed, ResultTimeout, ResultKilled, ResultChanged, ResultError}

// tailBytes is how much of a command's output is kept for the log.
const tailBytes = 2048

// tail keeps the last tailBytes written to it.
type tail struct {
	mu  sync.Mutex // guards buf: stdout and stderr write concurrently
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailBytes {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailBytes:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// expand fills the placeholders of argv for entry e of checkpoint c.
func expand(argv []string, target checkpoint.Target, c checkpoint.Checkpoint, e checkpoint.Entry) []string {
	r := strings.NewReplacer(
		"{path}", target.Path+"/"+e.Name,
		"{name}", e.Name,
		"{step}", strconv.FormatInt(c.Step, 10),
		"{target}", target.Name,
	)
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = r.Replace(a)
	}
	return out
}

// runError is a command that did not succeed, with its result label.
type runError struct {
	result string
	err    error
}

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// run runs argv in dir until it exits or timeout passes; then it and every
// process it started (its process group) are killed. Its output goes to out.
func run(ctx context.Context, dir string, argv []string, timeout time.Duration, out *tail) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that keeps the output pipe open must not hold us.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &runError{ResultTimeout, fmt.Errorf("%s: timed out after %s, killed", argv[0], timeout)}
	}
	if ctx.Err() != nil {
		return &runError{ResultError, fmt.Errorf("%s: stopped: %w", argv[0], ctx.Err())}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return &runError{ResultKilled, fmt.Errorf("%s: killed by signal %s", argv[0], ws.Signal())}
		}
		return &runError{ResultFailed, fmt.Errorf("%s: exit status %d", argv[0], ee.ExitCode())}
	}
	return &runError{ResultError, fmt.Errorf("%s: %w", argv[0], err)}
}
