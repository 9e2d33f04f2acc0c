package offload

import (
	"errors"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// errChanged: a checkpoint's top-level entries are not what the scan saw.
var errChanged = errors.New("checkpoint changed since the scan")

// print is what a walk of a whole checkpoint finds: equal prints before and
// after a copy mean nothing was written to it meanwhile.
type print struct {
	bytes, files int64
	// fileMtime is the newest mtime of a non-directory (the marker itself
	// not counted); ctime the newest ctime of anything.
	fileMtime, ctime int64
}

// fingerprint walks every entry of checkpoint c in dir, never following a
// symlink nor crossing into another filesystem. It returns errChanged if a
// top-level entry no longer has the inode, mtime and ctime the scan saw.
// skip, if set, is a name inside a directory entry that is not counted (the
// marker).
func fingerprint(dir string, c checkpoint.Checkpoint, skip string) (print, error) {
	var p print
	seen := map[[2]uint64]bool{}
	for _, e := range c.Entries {
		root := filepath.Join(dir, e.Name)
		var st unix.Stat_t
		if err := unix.Lstat(root, &st); err != nil {
			return p, errors.Join(errChanged, err)
		}
		if st.Ino != e.Ino || uint64(st.Dev) != e.Dev || st.Mtim.Nano() != e.Mtime || st.Ctim.Nano() != e.Ctime {
			return p, errChanged
		}
		dev := uint64(st.Dev)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if skip != "" && filepath.Dir(path) == root && d.Name() == skip {
				return nil
			}
			var st unix.Stat_t
			if err := unix.Lstat(path, &st); err != nil {
				return err
			}
			if uint64(st.Dev) != dev {
				return filepath.SkipDir
			}
			p.ctime = max(p.ctime, st.Ctim.Nano())
			if !d.IsDir() {
				p.fileMtime = max(p.fileMtime, st.Mtim.Nano())
			}
			id := [2]uint64{uint64(st.Dev), st.Ino}
			if !seen[id] {
				seen[id] = true
				p.bytes += st.Blocks * 512
				p.files++
			}
			return nil
		})
		if err != nil {
			return p, err
		}
	}
	return p, nil
}
