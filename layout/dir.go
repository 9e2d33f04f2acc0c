package layout

import (
	"strings"
	"time"
)

// Kind is the type of a directory entry.
type Kind uint8

// Kinds of entries.
const (
	KindOther Kind = iota
	KindFile
	KindDir
	KindSymlink
)

// Entry is one name of a directory listing.
type Entry struct {
	Name string
	Kind Kind
}

// FileInfo is what recognition needs to know of one checkpoint file.
type FileInfo struct {
	Size    int64
	ModTime time.Time
}

// Dir is a target directory as recognition reads it. Paths are relative to
// it: a top-level name, or one below a checkpoint directory
// ("checkpoint-500/trainer_state.json"). Implementations read the disk (and
// may cache what they read, per version of what they read); tests hand
// fakes.
type Dir interface {
	// Entries lists the top level, in the order the directory gives it,
	// without the exporter's own entries.
	Entries() []Entry
	// ReadFile reads a small state file (a tracker, a trainer state), not
	// following a symlink, and returns its modification time.
	ReadFile(rel string) ([]byte, time.Time, error)
	// Readlink reads the top-level symlink name.
	Readlink(name string) (string, error)
	// List lists the top level of the checkpoint directory name.
	List(name string) ([]Entry, error)
	// Check judges the checkpoint file rel by its end structures
	// (CheckFile) and tells its size and modification time; ok is false
	// when it could not be read (judged as before: whole).
	Check(rel string) (v Verdict, info FileInfo, ok bool)
}

// Listing is a Dir's top level with an index, as layouts read it: read
// once per reading, shared by every layout.
type Listing struct {
	dir     Dir
	entries []Entry
	index   map[string]int
}

// NewListing indexes d's top level.
func NewListing(d Dir) *Listing {
	l := &Listing{dir: d, entries: d.Entries()}
	l.index = make(map[string]int, len(l.entries))
	for i, e := range l.entries {
		l.index[e.Name] = i
	}
	return l
}

// Entries returns the top level.
func (l *Listing) Entries() []Entry { return l.entries }

// Get returns the top-level entry name.
func (l *Listing) Get(name string) (Entry, bool) {
	i, ok := l.index[name]
	if !ok {
		return Entry{}, false
	}
	return l.entries[i], true
}

// Has reports whether the top level has name.
func (l *Listing) Has(name string) bool { _, ok := l.index[name]; return ok }

// AnySuffix reports whether some top-level name ends in suffix.
func (l *Listing) AnySuffix(suffix string) bool {
	for _, e := range l.entries {
		if strings.HasSuffix(e.Name, suffix) {
			return true
		}
	}
	return false
}

// AnyKind reports whether some top-level entry is of kind k.
func (l *Listing) AnyKind(k Kind) bool {
	for _, e := range l.entries {
		if e.Kind == k {
			return true
		}
	}
	return false
}

// ReadFile reads a small state file (see Dir).
func (l *Listing) ReadFile(rel string) ([]byte, time.Time, error) { return l.dir.ReadFile(rel) }

// Readlink reads a top-level symlink (see Dir).
func (l *Listing) Readlink(name string) (string, error) { return l.dir.Readlink(name) }
