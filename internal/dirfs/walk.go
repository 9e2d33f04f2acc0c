package dirfs

import "golang.org/x/sys/unix"

// Tree walks directory trees depth first through descriptors, never by
// path and never following a symlink: every entry is reached relative to
// its directory's descriptor, with its NUL-terminated name straight from
// the getdents buffer. It keeps one buffer per depth across walks, so a
// walk allocates nothing per file. The scanner's sizing and the pruner's
// check before a deletion walk with it. (Removal does not: unlinking while
// reading a directory can make getdents skip entries, so it reads each
// directory again until it is empty.)
//
// A Tree is not safe for concurrent use.
type Tree struct{ bufs [][]byte }

// Visit is called for every entry below the walked directory: fd is the
// descriptor of the entry's directory, nameZ its name with the NUL (valid
// during the call only), typ its d_type (DT_UNKNOWN where the filesystem
// does not fill it in), depth 0 for the walked directory's own entries.
// For a directory, descend says whether to walk into it. A non-nil err
// stops the walk, which returns it.
type Visit func(fd int, nameZ []byte, typ byte, depth int) (descend bool, err error)

// DirError is what Walk hands its onErr: a directory (the walked one at
// depth 0, one below it at the depth of its entries) named nameZ in its
// parent could not be opened or read.
type DirError func(nameZ []byte, depth int, err error) error

// Walk walks the directory nameZ below dirfd. A directory that cannot be
// opened or read is handed to onErr with its error; onErr returns nil to go
// on with the rest, or an error that stops the walk.
func (t *Tree) Walk(dirfd int, nameZ []byte, visit Visit, onErr DirError) error {
	return t.walk(dirfd, nameZ, 0, visit, onErr)
}

func (t *Tree) walk(dirfd int, nameZ []byte, depth int, visit Visit, onErr DirError) error {
	fd, err := OpenDirAt(dirfd, nameZ)
	if err != nil {
		return onErr(nameZ, depth, err)
	}
	defer unix.Close(fd)
	for len(t.bufs) <= depth {
		t.bufs = append(t.bufs, make([]byte, BufSize))
	}
	var stop error
	err = ReadDirents(fd, t.bufs[depth], func(child []byte, typ byte) bool {
		descend, err := visit(fd, child, typ, depth)
		if err == nil && descend {
			err = t.walk(fd, child, depth+1, visit, onErr)
		}
		stop = err
		return err == nil
	})
	if stop != nil {
		return stop
	}
	if err != nil {
		return onErr(nameZ, depth, err)
	}
	return nil
}
