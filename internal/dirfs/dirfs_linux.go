package dirfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BufSize is the getdents buffer every walk uses: large batches mean few
// syscalls on directories with thousands of shards.
const BufSize = 64 << 10

// ReadDirents calls fn for every entry of the open directory fd except "."
// and "..", reading them with getdents64 in batches as large as buf. nameZ is
// the name with its terminating NUL (ready for the *At calls of this
// package); it aliases buf and is only valid during the call. typ is the
// d_type (DT_UNKNOWN on filesystems that do not fill it in). fn returns false
// to stop early.
func ReadDirents(fd int, buf []byte, fn func(nameZ []byte, typ byte) bool) error {
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			return nil
		}
		for off := 0; off < n; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
			rec := buf[off:]
			reclen := int(binary.NativeEndian.Uint16(rec[16:18]))
			typ := rec[18]
			name := rec[19:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i+1]
					break
				}
			}
			off += reclen
			if isDots(name[:len(name)-1]) {
				continue
			}
			if !fn(name, typ) {
				return nil
			}
		}
	}
}

func isDots(name []byte) bool {
	return (len(name) == 1 && name[0] == '.') || (len(name) == 2 && name[0] == '.' && name[1] == '.')
}

// Name views nameZ without its NUL as a string, without copying: the caller
// must not keep it past the life of the buffer.
func Name(nameZ []byte) string {
	if len(nameZ) <= 1 {
		return ""
	}
	return unsafe.String(&nameZ[0], len(nameZ)-1)
}

// OpenDirAt opens the directory nameZ relative to dirfd for reading, without
// following a symlink, with O_NOATIME where the caller owns the directory.
func OpenDirAt(dirfd int, nameZ []byte) (int, error) {
	name := Name(nameZ)
	for {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOATIME, 0)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EPERM {
			// O_NOATIME is refused on files the caller does not own.
			fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		return fd, err
	}
}

// UnlinkAt removes nameZ relative to dirfd (flags: 0 or AT_REMOVEDIR).
func UnlinkAt(dirfd int, nameZ []byte, flags int) error {
	return retry(func() unix.Errno {
		_, _, e := unix.Syscall(unix.SYS_UNLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(&nameZ[0])), uintptr(flags))
		return e
	})
}

// retry makes a system call until it is not interrupted (EINTR).
func retry(call func() unix.Errno) error {
	for {
		switch e := call(); e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		default:
			return e
		}
	}
}

// ErrTooLarge refuses a file ReadSmall would have to read past its limit.
var ErrTooLarge = errors.New("too large")

// ReadSmall reads the small regular file name below dirfd: without
// following a symlink in its last component, without blocking on a FIFO,
// refusing anything that is not a regular file (saying what it is) and a
// file longer than limit (ErrTooLarge). It returns the file's attributes
// with its content. The layouts' state files, deletion intent records and
// lock records are read with it.
func ReadSmall(dirfd int, name string, limit int64) ([]byte, unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, st, &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, st, &os.PathError{Op: "fstat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, st, fmt.Errorf("%s is %s, not a regular file", name, FileType(st.Mode))
	}
	if st.Size > limit {
		return nil, st, fmt.Errorf("%s: %d bytes: %w (at most %d)", name, st.Size, ErrTooLarge, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, st, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, st, fmt.Errorf("%s: %w (at most %d bytes)", name, ErrTooLarge, limit)
	}
	return data, st, nil
}

// FileType names the type of a file that is not a regular one, for messages.
func FileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symlink"
	case unix.S_IFIFO:
		return "a named pipe"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device"
	}
	return "a regular file"
}
