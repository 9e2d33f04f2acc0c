package checkpoint

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DeletingPrefix starts the name of an intent record: the pruner writes one
// (and makes it durable) in the target directory before it touches any file
// of a checkpoint made of several top-level entries (TensorFlow shards, a
// custom pattern's files), and removes it once every entry has a trash name.
// Scans hide the entries a record names, so a deletion cut short (SIGKILL,
// power loss) never leaves part of a checkpoint looking valid; the pruner's
// recovery finishes it. A record still being written ends in
// DeletingTmpSuffix and means nothing.
const DeletingPrefix = ".checkpoint_exporter-deleting-"

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

// hideDeleting removes from the listing the entries that an intent record
// names and that are still the same inode: they belong to a checkpoint whose
// deletion has begun, and are no checkpoint any more. An unreadable record
// hides nothing (and is counted as an error).
func (d *listing) hideDeleting() (errs uint64) {
	hide := map[string]bool{}
	for _, e := range d.entries {
		if !IsIntentRecord(e.name) {
			continue
		}
		data, err := ReadIntentAt(d.fd, e.name)
		var named []IntentEntry
		if err == nil {
			named, err = ParseIntent(data)
		}
		if err != nil {
			if !errors.Is(err, unix.ENOENT) {
				errs++
			}
			continue
		}
		for _, n := range named {
			var st unix.Stat_t
			if unix.Fstatat(d.fd, n.Name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Ino == n.Ino {
				hide[n.Name] = true
			}
		}
	}
	if len(hide) == 0 {
		return errs
	}
	kept := d.entries[:0]
	for _, e := range d.entries {
		if !hide[e.name] {
			kept = append(kept, e)
		}
	}
	d.entries = kept
	d.index = make(map[string]int, len(kept))
	for i, e := range kept {
		d.index[e.name] = i
	}
	return errs
}
