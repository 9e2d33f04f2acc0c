package checkpoint

import (
	"errors"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
	"github.com/checkpoint-exporter/checkpoint_exporter/layout"
)

// view is the target directory as the layout package reads it during one
// scan (layout.Dir): the listing, the lstat of every top-level entry of a
// recognised checkpoint (made once, shared with the sizing), and what earlier
// scans read inside checkpoints. A checkpoint directory's listing is read
// again only when its entry changed (inode, mtime, ctime); a checkpoint
// file's verdict only when the file changed (inode, size, mtime, ctime) —
// and the files of a directory that was settled (complete and older than
// min_age) at the last scan and has not changed since are not even looked
// at. So an unchanged rescan reads no file.
type view struct {
	s *Scanner
	d *listing
	// stats are this scan's lstat of the top-level entries of the
	// recognised checkpoints, and of the directories a layout listed to
	// judge them; statErrs the errors other than ENOENT.
	stats    map[string]unix.Stat_t
	statErrs map[string]error

	lists    map[string]cachedList    // read or reused this scan
	verdicts map[string]cachedVerdict // read or reused this scan
	// names are the listing's names, made when first needed.
	names map[string]bool
}

type cachedList struct {
	entry   Entry
	entries []layout.Entry
}

// fileKey is one version of a file.
type fileKey struct {
	ino, size, mtime, ctime int64
}

type cachedVerdict struct {
	key  fileKey
	v    layout.Verdict
	info layout.FileInfo
}

func newView(s *Scanner, d *listing) *view {
	return &view{s: s, d: d, stats: map[string]unix.Stat_t{}, statErrs: map[string]error{},
		lists: map[string]cachedList{}, verdicts: map[string]cachedVerdict{}}
}

// statEntries lstats the top-level entries of the found checkpoints.
func (v *view) statEntries(fs []layout.Found) {
	nameZ := make([]byte, 0, 256)
	for _, f := range fs {
		for _, name := range f.Entries {
			nameZ = v.stat(name, nameZ)
		}
	}
}

// stat lstats the top-level entry name once per scan; nameZ is a buffer
// for its NUL-terminated name, returned for reuse.
func (v *view) stat(name string, nameZ []byte) []byte {
	if _, done := v.stats[name]; done {
		return nameZ
	}
	if _, failed := v.statErrs[name]; failed {
		return nameZ
	}
	nameZ = append(append(nameZ[:0], name...), 0)
	var st unix.Stat_t
	if err := dirfs.LstatAt(v.d.fd, nameZ, &st); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			v.statErrs[name] = err
		}
		return nameZ
	}
	v.stats[name] = st
	return nameZ
}

// listed reports whether name is in the listing layouts read (not one of
// the exporter's own entries, nor one hidden by a deletion in progress).
func (v *view) listed(name string) bool {
	if v.names == nil {
		v.names = make(map[string]bool, len(v.d.entries))
		for _, e := range v.d.entries {
			v.names[e.Name] = true
		}
	}
	return v.names[name]
}

// entry is the identity of the top-level entry name as this scan saw it.
// A layout may ask for a directory's listing before the found checkpoints
// are stat'ed (the general series rule judges a candidate by its content):
// the entry is then stat'ed here, once for the scan.
func (v *view) entry(name string) (Entry, bool) {
	st, ok := v.stats[name]
	if !ok {
		if !v.listed(name) {
			return Entry{}, false
		}
		v.stat(name, nil)
		if st, ok = v.stats[name]; !ok {
			return Entry{}, false
		}
	}
	return entryOf(name, &st), true
}

func entryOf(name string, st *unix.Stat_t) Entry {
	return Entry{
		Name:    name,
		Ino:     st.Ino,
		Dev:     st.Dev,
		Size:    st.Size,
		Mtime:   st.Mtim.Nano(),
		Ctime:   st.Ctim.Nano(),
		Dir:     st.Mode&unix.S_IFMT == unix.S_IFDIR,
		Symlink: st.Mode&unix.S_IFMT == unix.S_IFLNK,
	}
}

// Entries implements layout.Dir.
func (v *view) Entries() []layout.Entry { return v.d.entries }

// ReadFile implements layout.Dir.
func (v *view) ReadFile(rel string) ([]byte, time.Time, error) {
	data, mtime, err := v.d.readSmall(rel)
	return data, time.Unix(0, mtime), err
}

// Readlink implements layout.Dir.
func (v *view) Readlink(name string) (string, error) { return v.d.readlink(name) }

// List implements layout.Dir: the top level of the checkpoint directory
// name, read again only when its entry changed.
func (v *view) List(name string) ([]layout.Entry, error) {
	e, ok := v.entry(name)
	if !ok || !e.Dir {
		return nil, os.ErrNotExist
	}
	if c, ok := v.lists[name]; ok {
		return c.entries, nil
	}
	if c, ok := v.s.lists[name]; ok && c.entry == e {
		v.lists[name] = c
		return c.entries, nil
	}
	entries := []layout.Entry{}
	if err := readEntries(v.d.fd, name, func(c layout.Entry) { entries = append(entries, c) }); err != nil {
		return nil, err
	}
	v.lists[name] = cachedList{entry: e, entries: entries}
	return entries, nil
}

// Check implements layout.Dir: the file's verdict, read again only when the
// file changed, and not at all for the files of a directory that was
// settled at the last scan and has not changed since.
func (v *view) Check(rel string) (layout.Verdict, layout.FileInfo, bool) {
	top, _, inside := strings.Cut(rel, "/")
	e, ok := v.entry(top)
	c, have := v.s.verdicts[rel]
	if ok && have {
		prev, cached := v.s.cache[top]
		reuse := !inside && c.key == fileKey{ino: int64(e.Ino), size: e.Size, mtime: e.Mtime, ctime: e.Ctime} ||
			inside && cached && prev.settled && prev.entry == e
		if reuse {
			v.verdicts[rel] = c
			return c.v, c.info, true
		}
	}
	fd, err := v.open(rel)
	if err != nil {
		return layout.Verdict{}, layout.FileInfo{}, false
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return layout.Verdict{}, layout.FileInfo{}, false
	}
	key := fileKey{ino: int64(st.Ino), size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
	if have && c.key == key {
		v.verdicts[rel] = c
		return c.v, c.info, true
	}
	verdict, err := layout.CheckFile(rel, st.Size, f)
	if err != nil {
		return layout.Verdict{}, layout.FileInfo{}, false
	}
	if v.s.onJudge != nil {
		v.s.onJudge(top)
	}
	c = cachedVerdict{key: key, v: verdict, info: layout.FileInfo{Size: st.Size, ModTime: time.Unix(0, st.Mtim.Nano())}}
	v.verdicts[rel] = c
	return c.v, c.info, true
}

// open opens the file rel (a top-level name, or one below a top-level
// directory) for reading, following no symlink on the way.
func (v *view) open(rel string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	top, name, inside := strings.Cut(rel, "/")
	if !inside {
		return unix.Openat(v.d.fd, rel, flags, 0)
	}
	if strings.Contains(name, "/") {
		return -1, os.ErrInvalid
	}
	dfd, err := dirfs.OpenDirAt(v.d.fd, append([]byte(top), 0))
	if err != nil {
		return -1, err
	}
	defer unix.Close(dfd)
	return unix.Openat(dfd, name, flags, 0)
}
