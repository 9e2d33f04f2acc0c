package checkpoint

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/layout"
)

// A checkpoint made of several top-level entries (TensorFlow's index and
// shards, a custom pattern's files) cannot be renamed away in one step. So
// that a deletion cut short (SIGKILL, power loss) never leaves part of it
// looking like a checkpoint, the pruner first marks the deletion as begun,
// durably, before it touches the rest; scans hide what a mark covers and the
// pruner's recovery finishes it. Two marks exist:
//
//   - An anchor (AnchorPrefix + an entry's name): the checkpoint's first
//     entry renamed. A rename needs no free block and no free inode, so this
//     works on a full disk. The entries it covers are the other entries of
//     the checkpoint the anchor's original name belongs to, by the target's
//     own layout, that have not changed since the rename (their ctime is not
//     newer than the anchor's, which the rename set): a new save under the
//     same name later is never taken for the old one.
//   - An intent record (DeletingPrefix + the checkpoint's name), the format
//     of earlier versions and of names too long for an anchor: a small file
//     that lists the entries with their inode numbers. A record still being
//     written ends in DeletingTmpSuffix and means nothing.

// AnchorPrefix starts the name a multi-entry checkpoint's first entry is
// renamed to when its deletion begins.
const AnchorPrefix = OwnPrefix + "-deleting@"

// DeletingPrefix starts the name of an intent record.
const DeletingPrefix = OwnPrefix + "-deleting-"

// DeletingTmpSuffix ends an intent record that is not complete yet.
const DeletingTmpSuffix = ".tmp"

// intentHeader starts every intent record.
const intentHeader = "checkpoint_exporter deleting v1\x00"

// IntentEntry is one top-level entry an intent record names: its name and
// the inode it had, so that a new entry saved under the same name later is
// never taken for it.
type IntentEntry struct {
	Name string
	Ino  uint64
}

// EncodeIntent is the content of an intent record for entries.
func EncodeIntent(entries []Entry) []byte {
	var b bytes.Buffer
	b.WriteString(intentHeader)
	for _, e := range entries {
		b.WriteString(strconv.FormatUint(e.Ino, 10))
		b.WriteByte(0)
		b.WriteString(e.Name)
		b.WriteByte(0)
	}
	return b.Bytes()
}

// ParseIntent reads an intent record.
func ParseIntent(data []byte) ([]IntentEntry, error) {
	rest, ok := bytes.CutPrefix(data, []byte(intentHeader))
	if !ok {
		return nil, errors.New("not an intent record")
	}
	fields := strings.Split(string(rest), "\x00")
	if len(fields)%2 != 1 || fields[len(fields)-1] != "" {
		return nil, errors.New("truncated intent record")
	}
	out := make([]IntentEntry, 0, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		ino, err := strconv.ParseUint(fields[i], 10, 64)
		if err != nil || fields[i+1] == "" || strings.Contains(fields[i+1], "/") {
			return nil, errors.New("malformed intent record")
		}
		out = append(out, IntentEntry{Name: fields[i+1], Ino: ino})
	}
	return out, nil
}

// maxIntent bounds what is read of an intent record (tens of thousands of
// entry names).
const maxIntent = 64 << 20

// ReadIntentAt reads the intent record name in the directory dirfd, without
// following a symlink and only if it is a regular file.
func ReadIntentAt(dirfd int, name string) ([]byte, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size > maxIntent {
		return nil, errors.New(name + ": not an intent record")
	}
	return io.ReadAll(io.LimitReader(f, maxIntent))
}

// IsIntentRecord reports whether name is a complete intent record's.
func IsIntentRecord(name string) bool {
	return strings.HasPrefix(name, DeletingPrefix) && !strings.HasSuffix(name, DeletingTmpSuffix)
}

// IsAnchor reports whether name is an anchor's, and the entry name it had.
func IsAnchor(name string) (original string, ok bool) {
	original, ok = strings.CutPrefix(name, AnchorPrefix)
	return original, ok && original != ""
}

// Pending is a deletion that was begun and not finished.
type Pending struct {
	// Mark is the anchor or intent record that says the deletion began.
	Mark string
	// Names are the checkpoint's entries still in the directory under their
	// own names, as they were when the deletion began.
	Names []string
}

// PendingDeletions lists the deletions begun in the open target directory
// dir and not finished, reading the anchors by target t's layout. The
// pruner's recovery finishes them; scans hide what they cover.
func PendingDeletions(dir *Dir, t Target) ([]Pending, error) {
	d, err := readListing(dir)
	if err != nil {
		return nil, err
	}
	pending, _ := d.pendingDeletions(t.Layout, t.Pattern)
	return pending, nil
}

// pendingDeletions finds the deletions begun in d. An unreadable record
// covers nothing and is counted in errs.
func (d *listing) pendingDeletions(layoutName, pattern string) (out []Pending, errs uint64) {
	var anchors []layout.Entry
	for _, e := range d.own {
		if _, ok := IsAnchor(e.Name); ok {
			anchors = append(anchors, e)
			continue
		}
		if !IsIntentRecord(e.Name) {
			continue
		}
		named, err := d.readRecord(e.Name)
		if err != nil {
			if !errors.Is(err, unix.ENOENT) {
				errs++
			}
			continue
		}
		p := Pending{Mark: e.Name}
		for _, n := range named {
			var st unix.Stat_t
			if unix.Fstatat(d.fd, n.Name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Ino == n.Ino {
				p.Names = append(p.Names, n.Name)
			}
		}
		out = append(out, p)
	}
	if len(anchors) > 0 {
		out = append(out, d.anchored(anchors, layoutName, pattern)...)
	}
	return out, errs
}

func (d *listing) readRecord(name string) ([]IntentEntry, error) {
	data, err := ReadIntentAt(d.fd, name)
	if err != nil {
		return nil, err
	}
	return ParseIntent(data)
}

// withOriginals is a listing with every anchor back under its original
// name, for the layouts to group by name (layout.Dir; nothing inside a
// checkpoint is read).
type withOriginals struct {
	d       *listing
	entries []layout.Entry
}

func (w *withOriginals) Entries() []layout.Entry { return w.entries }
func (w *withOriginals) ReadFile(rel string) ([]byte, time.Time, error) {
	data, mtime, err := w.d.readSmall(rel)
	return data, time.Unix(0, mtime), err
}
func (w *withOriginals) Readlink(name string) (string, error) { return w.d.readlink(name) }
func (w *withOriginals) List(string) ([]layout.Entry, error)  { return nil, os.ErrNotExist }
func (w *withOriginals) Check(string) (layout.Verdict, layout.FileInfo, bool) {
	return layout.Verdict{}, layout.FileInfo{}, false
}

// anchored finds what each anchor covers: the listing is read again by the
// target's layout with every anchor back under its original name, and the
// other entries of the checkpoint each one lands in that are no newer than
// the anchor are covered by it.
func (d *listing) anchored(anchors []layout.Entry, layoutName, pattern string) []Pending {
	real := make(map[string]bool, len(d.entries))
	w := &withOriginals{d: d, entries: slices.Clone(d.entries)}
	for _, e := range d.entries {
		real[e.Name] = true
	}
	origin := map[string]int{} // original name → anchor
	for i, a := range anchors {
		orig, _ := IsAnchor(a.Name)
		origin[orig] = i
		if !real[orig] {
			w.entries = append(w.entries, layout.Entry{Name: orig, Kind: a.Kind})
		}
	}
	out := make([]Pending, len(anchors))
	for i, a := range anchors {
		out[i].Mark = a.Name
	}
	r, err := layout.Classify(layout.NewListing(w), layoutName, pattern)
	if err != nil {
		return out // no reading: the anchors cover nothing but themselves
	}
	for _, f := range r.Found {
		i, ok := -1, false
		for _, e := range f.Entries {
			if i, ok = origin[e]; ok {
				break
			}
		}
		if !ok {
			continue
		}
		var ast unix.Stat_t
		if unix.Fstatat(d.fd, anchors[i].Name, &ast, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue // finished meanwhile
		}
		for _, e := range f.Entries {
			if _, isOrigin := origin[e]; isOrigin && !real[e] {
				continue
			}
			var st unix.Stat_t
			if unix.Fstatat(d.fd, e, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
				continue
			}
			if st.Ctim.Nano() <= ast.Ctim.Nano() {
				out[i].Names = append(out[i].Names, e)
			}
		}
	}
	return out
}

// hideDeleting removes from the listing the entries that a deletion begun
// and not finished covers: they are no checkpoint any more. It returns how
// many records could not be read.
func (d *listing) hideDeleting(layoutName, pattern string) (errs uint64) {
	pending, errs := d.pendingDeletions(layoutName, pattern)
	hide := map[string]bool{}
	for _, p := range pending {
		for _, n := range p.Names {
			hide[n] = true
		}
	}
	if len(hide) == 0 {
		return errs
	}
	d.entries = slices.DeleteFunc(d.entries, func(e layout.Entry) bool { return hide[e.Name] })
	return errs
}
