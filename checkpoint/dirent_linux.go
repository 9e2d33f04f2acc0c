package checkpoint

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// direntBufSize is the getdents buffer: large batches mean few syscalls on
// directories with thousands of shards.
const direntBufSize = 64 << 10

// ReadDirents calls fn for every entry of the open directory fd except "."
// and "..", reading them with getdents64 in batches as large as buf. nameZ is
// the name with its terminating NUL (ready for raw *at syscalls); it aliases
// buf and is only valid during the call. typ is the d_type (DT_UNKNOWN on
// filesystems that do not fill it in). fn returns false to stop early.
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

// unsafeString views b as a string without copying; the caller must not keep it.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
