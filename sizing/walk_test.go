package sizing

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Entries that vanish while a checkpoint is walked are skipped silently.
func TestVanishDuringWalk(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "checkpoint-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "checkpoint-1", "a"), make([]byte, 10), 0o644); err != nil {
		t.Fatal(err)
	}
	u := Usage{}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	w := &Walker{s: NewSizer(uint64(st.Dev)), ctx: context.Background()}
	w.walkDir(fd, []byte("gone\x00"), &u)
	if err := os.RemoveAll(filepath.Join(dir, "checkpoint-1")); err != nil {
		t.Fatal(err)
	}
	w.walkDir(fd, []byte("checkpoint-1\x00"), &u)
	if u.Errors != 0 {
		t.Errorf("vanished entries counted as %d errors", u.Errors)
	}
}
