package offload

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// StateFile is the name of the offload state file in a target directory.
// It is hidden and has no digits, so no layout or pattern takes it (or its
// temporary sibling) for a checkpoint.
const StateFile = ".checkpoint_exporter-offload.json"

// stateVersion is the format of the state file.
const stateVersion = 1

// Ident is one top-level entry of a checkpoint as it was when offloaded.
type Ident struct {
	Name  string `json:"name"`
	Ino   uint64 `json:"ino"`
	Dev   uint64 `json:"dev"`
	Mtime int64  `json:"mtime_ns"`
	Ctime int64  `json:"ctime_ns"`
}

// Record says that one checkpoint was offloaded: what it was (its identity
// when copied), when, and with which command.
type Record struct {
	Name    string  `json:"name"`
	Step    int64   `json:"step"`
	Entries []Ident `json:"entries"`
	Bytes   int64   `json:"bytes"`
	// ModTime and ChangeTime are the checkpoint's newest mtime and ctime
	// (of anything inside, as of the scan's last walk), in nanoseconds.
	ModTime    int64     `json:"mtime_ns"`
	ChangeTime int64     `json:"ctime_ns"`
	Offloaded  time.Time `json:"offloaded"`
	Duration   float64   `json:"duration_seconds"`
	// Command is the configured argv, before its placeholders are filled.
	Command []string `json:"command"`
}

// state is the state file's content.
type state struct {
	Version int    `json:"version"`
	Target  string `json:"target"`
	// Checkpoints are keyed by the checkpoint's entry names (see key).
	Checkpoints map[string]Record `json:"checkpoints"`
}

// key identifies a checkpoint by its top-level entries (two checkpoints may
// share a display name; no two share an entry).
func key(c checkpoint.Checkpoint) string {
	names := make([]string, len(c.Entries))
	for i, e := range c.Entries {
		names[i] = e.Name
	}
	return strings.Join(names, "/")
}

// recordOf is the record of offloading c now with command.
func recordOf(c checkpoint.Checkpoint, at time.Time, d time.Duration, command []string) Record {
	r := Record{Name: c.Name, Step: c.Step, Bytes: c.Bytes, ModTime: c.ModTime.UnixNano(), ChangeTime: c.ChangeTime.UnixNano(),
		Offloaded: at.UTC(), Duration: d.Seconds(), Command: command}
	for _, e := range c.Entries {
		r.Entries = append(r.Entries, Ident{Name: e.Name, Ino: e.Ino, Dev: e.Dev, Mtime: e.Mtime, Ctime: e.Ctime})
	}
	return r
}

// matches reports whether c, as scanned now, is the checkpoint r recorded:
// same entries with the same inodes, devices, mtimes and ctimes, the same
// size, newest mtime and newest ctime. Anything else (a checkpoint rewritten in place, a
// new one under an old name) needs a new offload.
func (r Record) matches(c checkpoint.Checkpoint) bool {
	if len(r.Entries) != len(c.Entries) || r.Bytes != c.Bytes || r.ModTime != c.ModTime.UnixNano() || r.ChangeTime != c.ChangeTime.UnixNano() {
		return false
	}
	for i, e := range c.Entries {
		id := r.Entries[i]
		if id.Name != e.Name || id.Ino != e.Ino || id.Dev != e.Dev || id.Mtime != e.Mtime || id.Ctime != e.Ctime {
			return false
		}
	}
	return true
}

// stamp tells whether the state file changed since it was last read.
type stamp struct {
	ino, size int64
	mtime     int64
}

func stampOf(path string) (stamp, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return stamp{}, false
	}
	return stamp{ino: int64(st.Ino), size: st.Size, mtime: st.Mtim.Nano()}, true
}

// readState reads a state file; a missing file is an empty state.
func readState(path string) (map[string]Record, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Record{}, nil
	}
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("offload state %s: %w", path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("offload state %s: version %d, want %d", path, s.Version, stateVersion)
	}
	if s.Checkpoints == nil {
		s.Checkpoints = map[string]Record{}
	}
	return s.Checkpoints, nil
}

// writeState replaces the state file atomically: a temporary file in the
// same directory, synced, renamed over the old one, and the directory synced.
func writeState(dir, target string, recs map[string]Record) error {
	data, err := json.MarshalIndent(state{Version: stateVersion, Target: target, Checkpoints: recs}, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, StateFile+".new-"+letters(8))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write offload state: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, StateFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write offload state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// letters returns n random lower-case letters: a temporary name without
// digits, which no step pattern can read a step from.
func letters(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = 'a' + b[i]%26
	}
	return string(b)
}

// merge returns the records of a and b, the later offload winning for a
// checkpoint recorded in both.
func merge(a, b map[string]Record) map[string]Record {
	out := make(map[string]Record, len(a)+len(b))
	for k, r := range a {
		out[k] = r
	}
	for k, r := range b {
		if old, ok := out[k]; !ok || r.Offloaded.After(old.Offloaded) {
			out[k] = r
		}
	}
	return out
}

// sameCommand reports whether a record was made with the configured command.
func (r Record) sameCommand(command []string) bool { return slices.Equal(r.Command, command) }
