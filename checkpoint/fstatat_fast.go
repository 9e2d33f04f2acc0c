//go:build linux && (amd64 || arm64 || riscv64)

package checkpoint

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// lstatAt stats name (NUL-terminated in the getdents buffer, so no copy is
// made) relative to dirfd without following symlinks.
func lstatAt(dirfd int, nameZ []byte, st *unix.Stat_t) error {
	for {
		_, _, e := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(dirfd), uintptr(unsafe.Pointer(&nameZ[0])),
			uintptr(unsafe.Pointer(st)), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}
