//go:build linux && (amd64 || arm64 || riscv64)

package dirfs

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// LstatAt stats nameZ relative to dirfd without following symlinks. The
// name is passed as it lies in the getdents buffer, so no copy is made.
func LstatAt(dirfd int, nameZ []byte, st *unix.Stat_t) error {
	return retry(func() unix.Errno {
		_, _, e := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(dirfd), uintptr(unsafe.Pointer(&nameZ[0])),
			uintptr(unsafe.Pointer(st)), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
		return e
	})
}
