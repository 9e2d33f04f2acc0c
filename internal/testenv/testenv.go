// Package testenv holds what the tests share about their environment: a
// requirement that is missing skips a test on a developer's machine but fails
// it under CI (CI=true), where everything must be there; and small tmpfs
// mounts, which really return ENOSPC.
package testenv

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// Missing reports a missing requirement: t fails under CI and skips elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format+" (CI must provide it)", args...)
	}
	t.Skipf(format, args...)
}

// MountTmpfs mounts a tmpfs of size (as mount(8) takes it: "64m", bytes) on
// dir, creating dir if needed, and unmounts it when the test ends. It needs
// root.
func MountTmpfs(t testing.TB, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root to mount a tmpfs")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}
