package targetdir

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
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
func EncodeIntent(entries []IntentEntry) []byte {
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
	data, _, err := dirfs.ReadSmall(dirfd, name, maxIntent)
	return data, err
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

// markDeletion marks the deletion of checkpoint c, made of several
// top-level entries, as begun, before any entry but first is touched (see
// AnchorPrefix): first is renamed to its anchor name, which needs
// no free block and no free inode, so a full disk can be pruned; a name too
// long for an anchor gets an intent record instead. The mark is made durable
// (the directory synced) before it returns, so it reaches the disk before any
// later rename. anchored says whether first was renamed into the mark.
func MarkDeletion(dirfd int, name string, entries []IntentEntry, first string) (mark string, anchored bool, err error) {
	mark = AnchorPrefix + first
	err = RenameNoReplace(dirfd, first, mark)
	switch {
	case errors.Is(err, unix.ENAMETOOLONG):
		mark, err = writeIntent(dirfd, name, entries)
		if err != nil {
			if mark != "" {
				unix.Unlinkat(dirfd, mark, 0)
			}
			return "", false, err
		}
		return mark, false, nil
	case errors.Is(err, unix.EEXIST):
		return "", false, fmt.Errorf("an earlier deletion of %s is not finished (%s): %w", first, mark, err)
	case err != nil:
		return "", false, err
	}
	if err := unix.Fsync(dirfd); err != nil {
		return mark, true, fmt.Errorf("sync target directory: %w", err)
	}
	return mark, true, nil
}

// Unmark ends a deletion once every entry the mark covers has a trash name:
// the renames are made durable first, then an anchor is renamed to trash
// itself (removed with the rest) and an intent record is removed.
func Unmark(dirfd int, mark string) (trash string, err error) {
	if err := unix.Fsync(dirfd); err != nil {
		return "", fmt.Errorf("sync target directory: %w", err)
	}
	if orig, ok := IsAnchor(mark); ok {
		return RenameUnique(dirfd, mark, TrashName(orig))
	}
	if err := unix.Unlinkat(dirfd, mark, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return "", &os.PathError{Op: "unlink", Path: mark, Err: err}
	}
	return "", nil
}

// RenameNoReplace renames from to to in dirfd, never replacing an entry.
// Where the filesystem has no RENAME_NOREPLACE (some NFS and FUSE
// filesystems), it checks first: under the target lock, nobody else makes
// the names this is used for.
func RenameNoReplace(dirfd int, from, to string) error {
	err := unix.Renameat2(dirfd, from, dirfd, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, to, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: unix.EEXIST}
		}
		err = unix.Renameat(dirfd, from, dirfd, to)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// writeIntent records, durably, that checkpoint name (entries) is being deleted: the
// record is written under a temporary name, synced, renamed into place and
// the directory synced, so that it exists, whole, before the first rename to
// trash can reach the disk. It needs free space; MarkDeletion uses it only
// for names too long for an anchor. It returns the record's name.
func writeIntent(dirfd int, name string, entries []IntentEntry) (string, error) {
	base := DeletingPrefix + name
	if len(base) > 200 {
		base = base[:200]
	}
	tmp := base + "." + strconv.Itoa(os.Getpid()) + DeletingTmpSuffix
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return "", &os.PathError{Op: "create", Path: tmp, Err: err}
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, err = f.Write(EncodeIntent(entries))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return "", fmt.Errorf("write intent record %s: %w", tmp, err)
	}
	record, err := RenameUnique(dirfd, tmp, base)
	if err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return "", err
	}
	if err := unix.Fsync(dirfd); err != nil {
		return record, fmt.Errorf("sync target directory: %w", err)
	}
	return record, nil
}
