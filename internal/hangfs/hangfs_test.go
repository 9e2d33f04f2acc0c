package hangfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

func mount(t *testing.T, opts Options) (string, *FS) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to mount FUSE")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Missing(t, "needs /dev/fuse")
	}
	backing := t.TempDir()
	return backing, Mount(t, backing, filepath.Join(t.TempDir(), "mnt"), opts)
}

func TestHangOnUnlinkBlocksUntilRelease(t *testing.T) {
	backing, h := mount(t, Options{})
	for _, n := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(backing, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h.HangOn(OpUnlink, 1)
	done := make(chan error, 1)
	go func() { done <- os.Remove(filepath.Join(h.Dir, "a")) }()
	h.WaitBlocked(t, 10*time.Second)
	select {
	case err := <-done:
		t.Fatalf("unlink returned during the hang: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	h.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(backing, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a still in the backing directory: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(h.Dir, "b")); err != nil {
		t.Fatal(err)
	}
}

func TestNoFlockRefusesFlock(t *testing.T) {
	_, h := mount(t, Options{NoFlock: true})
	// The kernel keeps directory flocks node-local on FUSE (its directory
	// operations have no flock), so only a regular file reaches the
	// filesystem, as a lock file does.
	fd, err := unix.Open(filepath.Join(h.Dir, "lock"), unix.O_RDWR|unix.O_CREAT, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.ENOSYS) {
		t.Fatalf("flock: %v, want ENOSYS", err)
	}
}
