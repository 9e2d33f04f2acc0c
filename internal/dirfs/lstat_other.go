//go:build linux && !(amd64 || arm64 || riscv64)

package dirfs

import "golang.org/x/sys/unix"

// LstatAt stats nameZ relative to dirfd without following symlinks.
func LstatAt(dirfd int, nameZ []byte, st *unix.Stat_t) error {
	return unix.Fstatat(dirfd, Name(nameZ), st, unix.AT_SYMLINK_NOFOLLOW)
}
