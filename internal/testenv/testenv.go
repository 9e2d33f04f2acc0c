// Package testenv holds what the tests share about their environment: the
// commands, files and Python modules they need from Debian packages (Need:
// missing, the test fails naming the package of deps/debian.txt); root and
// devices, which a developer's machine may lack (Missing: the test skips
// there, as the README says, but fails under CI, where everything must be
// there); and small tmpfs mounts, which really return ENOSPC.
package testenv

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// Missing reports a missing requirement that is not a package (root,
// /dev/fuse): t fails under CI (CI=true, set by .ci/run) and skips elsewhere.
// A missing command is Need's.
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
