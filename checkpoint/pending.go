package checkpoint

import (
	"errors"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/layout"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

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
func PendingDeletions(dir *targetdir.Dir, t Target) ([]Pending, error) {
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
		if _, ok := targetdir.IsAnchor(e.Name); ok {
			anchors = append(anchors, e)
			continue
		}
		if !targetdir.IsIntentRecord(e.Name) {
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

func (d *listing) readRecord(name string) ([]targetdir.IntentEntry, error) {
	data, err := targetdir.ReadIntentAt(d.fd, name)
	if err != nil {
		return nil, err
	}
	return targetdir.ParseIntent(data)
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
		orig, _ := targetdir.IsAnchor(a.Name)
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
