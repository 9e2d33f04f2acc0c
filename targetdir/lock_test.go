package targetdir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/hangfs"
)

func lockOpts(mode LockMode, wait time.Duration) LockOptions {
	return LockOptions{Mode: mode, Wait: wait, TTL: time.Minute, Logger: log.NewNopLogger(), Target: "t"}
}

func openDir(t testing.TB, path string) *Dir {
	t.Helper()
	d, err := OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestLockExcludesAndTimesOut(t *testing.T) {
	for _, mode := range []LockMode{LockFlock, LockLockfile} {
		t.Run(string(mode), func(t *testing.T) {
			dir := t.TempDir()
			first, err := Acquire(context.Background(), openDir(t, dir), lockOpts(mode, time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Acquire(context.Background(), openDir(t, dir), lockOpts(mode, 50*time.Millisecond)); !errors.Is(err, ErrLocked) {
				t.Fatalf("second lock: %v, want ErrLocked", err)
			}
			first.Release()
			second, err := Acquire(context.Background(), openDir(t, dir), lockOpts(mode, 50*time.Millisecond))
			if err != nil {
				t.Fatalf("lock after release: %v", err)
			}
			second.Release()
			if _, err := os.Lstat(filepath.Join(dir, LeaseFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("lock file left after release: %v", err)
			}
		})
	}
}

// A lock file that expired, or whose process on this host is gone, is taken
// over; a live one is not.
func TestLockfileTakeover(t *testing.T) {
	host, _ := os.Hostname()
	for _, tt := range []struct {
		name   string
		rec    leaseRecord
		takeIt bool
	}{
		{"expired", leaseRecord{Owner: "x", Host: "elsewhere", PID: 1, Expires: time.Now().Add(-time.Second)}, true},
		{"dead process here", leaseRecord{Owner: "x", Host: host, PID: 1 << 22, PIDNS: pidNamespace(), Expires: time.Now().Add(time.Hour)}, true},
		{"live elsewhere", leaseRecord{Owner: "x", Host: "elsewhere", PID: 1, Expires: time.Now().Add(time.Hour)}, false},
		{"live here", leaseRecord{Owner: "x", Host: host, PID: os.Getppid(), PIDNS: pidNamespace(), Expires: time.Now().Add(time.Hour)}, false},
		// A container of the same hostname (hostNetwork pods on one
		// node) whose PIDs this one cannot see: live until it expires.
		{"same hostname, another PID namespace", leaseRecord{Owner: "x", Host: host, PID: 1 << 22, PIDNS: "pid:[1]", Expires: time.Now().Add(time.Hour)}, false},
		{"same hostname, an earlier version's record without a namespace", leaseRecord{Owner: "x", Host: host, PID: 1 << 22, Expires: time.Now().Add(time.Hour)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			must(t, os.WriteFile(filepath.Join(dir, LeaseFile), []byte(tt.rec.String()), 0o644))
			l, err := Acquire(context.Background(), openDir(t, dir), lockOpts(LockLockfile, 100*time.Millisecond))
			if tt.takeIt != (err == nil) {
				t.Fatalf("lock: %v, want taken over: %v", err, tt.takeIt)
			}
			if err == nil {
				data, _ := os.ReadFile(filepath.Join(dir, LeaseFile))
				rec, err := parseLease(data)
				if err != nil || rec.PID != os.Getpid() || rec.Host != host || !rec.Expires.After(time.Now()) {
					t.Errorf("lock file after takeover: %q (%v)", data, err)
				}
				l.Release()
			}
			names, _ := filepath.Glob(filepath.Join(dir, LeaseFile+".*"))
			if len(names) != 0 {
				t.Errorf("takeover left %v", names)
			}
		})
	}
}

// A holder whose lock file was taken over stops before its next deletion.
func TestLockfileLossIsNoticed(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(context.Background(), openDir(t, dir), lockOpts(LockLockfile, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	other := leaseRecord{Owner: "other", Host: "elsewhere", PID: 7, Expires: time.Now().Add(time.Hour)}
	must(t, os.WriteFile(filepath.Join(dir, LeaseFile), []byte(other.String()), 0o644))
	if err := l.Check(); !errors.Is(err, ErrLockLost) {
		t.Fatalf("check after takeover: %v, want ErrLockLost", err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, LeaseFile)); string(data) != other.String() {
		t.Errorf("release of a lost lock touched the new owner's file: %q", data)
	}
}

// On a filesystem whose flock fails with ENOSYS (Lustre noflock), the flock
// mode falls back to the lock file, which still excludes a second pruner.
func TestFlockFallsBackToLockfile(t *testing.T) {
	h := hangfs.Mount(t, t.TempDir(), filepath.Join(t.TempDir(), "mnt"), hangfs.Options{NoFlock: true})
	first, err := Acquire(context.Background(), openDir(t, h.Dir), lockOpts(LockFlock, time.Second))
	if err != nil {
		t.Fatalf("flock mode on a filesystem without flock: %v", err)
	}
	if first.lease == nil {
		t.Fatal("no lock file taken")
	}
	if _, err := Acquire(context.Background(), openDir(t, h.Dir), lockOpts(LockFlock, 50*time.Millisecond)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second pruner: %v, want ErrLocked", err)
	}
	first.Release()
}

// Many pruners racing for one stale lock file: at every moment at most one
// holds it.
func TestLockfileRaceHasOneHolder(t *testing.T) {
	dir := t.TempDir()
	stale := leaseRecord{Owner: "dead", Host: "elsewhere", PID: 1, Expires: time.Now().Add(-time.Minute)}
	must(t, os.WriteFile(filepath.Join(dir, LeaseFile), []byte(stale.String()), 0o644))
	const n = 8
	var holders, maxHolders int32
	var mu = make(chan struct{}, 1)
	errs := make(chan error, n)
	for i := range n {
		d := openDir(t, dir)
		go func() {
			l, err := Acquire(context.Background(), d, lockOpts(LockLockfile, 30*time.Second))
			if err != nil {
				errs <- fmt.Errorf("pruner %d: %w", i, err)
				return
			}
			mu <- struct{}{}
			holders++
			maxHolders = max(maxHolders, holders)
			<-mu
			time.Sleep(5 * time.Millisecond)
			if err := l.Check(); err != nil {
				errs <- fmt.Errorf("pruner %d lost its lock: %w", i, err)
			}
			mu <- struct{}{}
			holders--
			<-mu
			l.Release()
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if maxHolders != 1 {
		t.Errorf("%d pruners held the lock at once", maxHolders)
	}
}
