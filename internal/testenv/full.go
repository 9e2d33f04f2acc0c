package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// MountTmpfsWith is MountTmpfs with mount options of the caller's
// ("size=8m,nr_inodes=64").
func MountTmpfsWith(t testing.TB, dir, options string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root to mount a tmpfs")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, options); err != nil {
		t.Fatalf("mount tmpfs -o %s on %s: %v", options, dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

// FillBlocks writes file until its filesystem has no free block left (the
// write fails with ENOSPC even a byte at a time) and checks statfs agrees.
func FillBlocks(t testing.TB, file string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4096, 1} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, unix.ENOSPC) {
					t.Fatalf("fill %s: %v", file, err)
				}
				break
			}
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(file), &st); err != nil {
		t.Fatal(err)
	}
	if st.Bavail != 0 {
		t.Fatalf("filled %s, but statfs still says %d blocks free", file, st.Bavail)
	}
}

// FillInodes creates empty files in dir until its filesystem has no free
// inode left, and checks statfs agrees.
func FillInodes(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("fill inodes of %s: %v", dir, err)
			}
			break
		}
		f.Close()
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Ffree != 0 {
		t.Fatalf("filled %s, but statfs still says %d inodes free", dir, st.Ffree)
	}
}
