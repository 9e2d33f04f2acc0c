//go:build linux && !(amd64 || arm64 || riscv64)

package checkpoint

import "golang.org/x/sys/unix"

// lstatAt stats name (NUL-terminated) relative to dirfd without following
// symlinks.
func lstatAt(dirfd int, nameZ []byte, st *unix.Stat_t) error {
	return unix.Fstatat(dirfd, string(nameZ[:len(nameZ)-1]), st, unix.AT_SYMLINK_NOFOLLOW)
}
