package targetdir

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// Whatever sits at the lock path, a prune gives up with a clear error when
// its lock wait is over (or its context ends), instead of spinning: a
// symlink, a directory, a FIFO, a file that cannot be read.
func TestLockPathOccupiedNeverSpins(t *testing.T) {
	occupants := []struct {
		name string
		make func(t *testing.T, p string)
	}{
		{"symlink", func(t *testing.T, p string) { must(t, os.Symlink("/etc/passwd", p)) }},
		{"dangling symlink", func(t *testing.T, p string) { must(t, os.Symlink("nowhere", p)) }},
		{"directory", func(t *testing.T, p string) { must(t, os.Mkdir(p, 0o755)) }},
		{"fifo", func(t *testing.T, p string) { must(t, unix.Mkfifo(p, 0o644)) }},
	}
	for _, mode := range []LockMode{LockFlock, LockLockfile} {
		file := LockFile
		if mode == LockLockfile {
			file = LeaseFile
		}
		for _, o := range occupants {
			t.Run(string(mode)+"/"+o.name, func(t *testing.T) {
				dir := t.TempDir()
				o.make(t, filepath.Join(dir, file))
				done := make(chan error, 1)
				go func() {
					l, err := Acquire(context.Background(), openDir(t, dir), lockOpts(mode, 200*time.Millisecond))
					if err == nil {
						l.Release()
					}
					done <- err
				}()
				select {
				case err := <-done:
					if err == nil || !strings.Contains(err.Error(), file) {
						t.Fatalf("lock with a %s at %s: %v; want an error naming it", o.name, file, err)
					}
					t.Logf("error: %v", err)
				case <-time.After(30 * time.Second):
					t.Fatalf("lock with a %s at %s did not give up", o.name, file)
				}
				if _, err := os.Lstat(filepath.Join(dir, file)); err != nil {
					t.Errorf("the %s at the lock path was removed: %v", o.name, err)
				}
			})
		}
	}
}

// A cancelled context ends the wait at once, with a lock wait of an hour.
func TestLockWaitEndsWithContext(t *testing.T) {
	dir := t.TempDir()
	must(t, os.Symlink("nowhere", filepath.Join(dir, LeaseFile)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Acquire(ctx, openDir(t, dir), lockOpts(LockLockfile, time.Hour))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("lock after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("lock wait did not end with its context")
	}
}

// An expired lock file that cannot be taken over (another user's, in a
// sticky directory) is waited for until the lock wait is over, then
// reported; the prune never spins on it.
func TestExpiredLockThatCannotBeTakenOver(t *testing.T) {
	if dir := os.Getenv("CKPT_STICKY_CHILD"); dir != "" {
		_, err := Acquire(context.Background(), openDir(t, dir), lockOpts(LockLockfile, 200*time.Millisecond))
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "cannot be taken over") {
			t.Fatalf("lock: %v; want ErrLocked saying the stale lock cannot be taken over", err)
		}
		return
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to run a child as nobody")
	}
	base := t.TempDir()
	dir := filepath.Join(base, "sticky")
	must(t, os.Mkdir(dir, 0o755))
	must(t, os.Chmod(dir, os.ModeSticky|0o777))
	// Up to, not including, the temporary directory itself (it must stay
	// world-writable and sticky): let nobody reach the tree and the binary.
	for p := base; p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	bin := filepath.Join(base, "pruner.test")
	exe, err := os.ReadFile(os.Args[0])
	must(t, err)
	must(t, os.WriteFile(bin, exe, 0o755))
	stale := leaseRecord{Owner: "x", Host: "elsewhere", PID: 1, Expires: time.Now().Add(-time.Hour)}
	must(t, os.WriteFile(filepath.Join(dir, LeaseFile), []byte(stale.String()), 0o644))
	cmd := exec.Command(bin, "-test.run=^TestExpiredLockThatCannotBeTakenOver$", "-test.v")
	cmd.Env = append(os.Environ(), "CKPT_STICKY_CHILD="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, LeaseFile)); string(data) != stale.String() {
		t.Errorf("the lock file that could not be taken over changed: %q", data)
	}
}
