package targetdir

import "golang.org/x/sys/unix"

// StatxMask is what StatxFresh asks for: type, mode, inode, size, times and
// mount ID.
const StatxMask = unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_INO | unix.STATX_SIZE | unix.STATX_MTIME | unix.STATX_CTIME | unix.STATX_MNT_ID

// StatxFresh reads name's attributes as the server has them now, not as this
// node's kernel cached them: AT_STATX_FORCE_SYNC makes NFS, SMB, CephFS and
// FUSE ask their server or daemon (see Caching; local
// filesystems ignore it). It is what every check before a deletion reads:
// another client's write must be seen there, whatever actimeo or
// attr_timeout says. A FUSE daemon may still answer from a cache of its
// own; FSCaching.Settle waits that out. The mask is StatxMask; symlinks are
// never followed.
func StatxFresh(dirfd int, name string, flags int, stx *unix.Statx_t) error {
	for {
		err := unix.Statx(dirfd, name, flags|unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_FORCE_SYNC, StatxMask, stx)
		if err != unix.EINTR {
			return err
		}
	}
}
