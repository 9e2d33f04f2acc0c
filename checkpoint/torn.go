package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
	formats "github.com/checkpoint-exporter/checkpoint_exporter/layout"
)

// A save cut short by ENOSPC, a kill or a preemption leaves files shorter
// than their own structures say. The scanner reads the few bytes at the head
// and tail of each checkpoint file whose format says where it ends (package
// layout: zip, safetensors, HDF5, TensorFlow's index, torch's legacy
// format): a checkpoint with a file that is conclusively cut short is torn,
// once nothing has written to it for min_age (before that it may still be
// being written, and is only incomplete). A file in a format with no end
// marker that is far shorter than its siblings is suspect. Files are read
// once per version of the checkpoint (its entries and the newest mtime and
// ctime of anything in it), never at a scrape.

// maxJudgedFiles bounds how many files of one directory checkpoint are read
// (a rank's shard each, for thousands of ranks).
const maxJudgedFiles = 4096

// verdict is what a checkpoint's files say of it.
type verdict struct {
	// torn is why a file of it is conclusively cut short ("" if none is).
	torn string
	// unverified: it is one file in a recognised format that has no end
	// marker to check (torch's legacy format when its storages cannot be
	// followed), so only its size can make it suspect. A format not
	// understood at all is judged as before.
	unverified bool
	// format is the format of a single-file checkpoint's file, for words.
	format string
}

type cachedVerdict struct {
	key string
	v   verdict
}

// verdictKey identifies a checkpoint's version: its entries as scanned and
// the newest change of anything in it, which every write moves on.
func verdictKey(r sizedCheckpoint) string {
	var b strings.Builder
	for _, e := range r.entries {
		b.WriteString(e.Name)
		for _, n := range []int64{int64(e.Ino), e.Size, e.Mtime, e.Ctime} {
			b.WriteByte(0)
			b.WriteString(strconv.FormatInt(n, 36))
		}
		b.WriteByte(0)
	}
	for _, n := range []int64{r.use.mtime, r.use.ctime, r.use.bytes} {
		b.WriteString(strconv.FormatInt(n, 36))
		b.WriteByte(0)
	}
	return b.String()
}

// judge reads the verdict of every sized checkpoint that its layout did not
// already find incomplete, reusing the last scan's where the checkpoint did
// not change, and marks torn and suspect ones. facts are the directory
// checkpoints' top-level listings (nil where unknown).
func (s *Scanner) judge(d *listing, sized []sizedCheckpoint, facts []dirFacts, now time.Time) {
	next := make(map[string]cachedVerdict, len(sized))
	verdicts := make([]verdict, len(sized))
	for i, r := range sized {
		if r.found.drop || r.found.incomplete || len(r.entries) == 0 {
			continue
		}
		key := verdictKey(r)
		if c, ok := s.verdicts[r.found.name]; ok && c.key == key {
			verdicts[i] = c.v
		} else {
			s.alive.beat()
			verdicts[i] = readVerdict(d, r, facts[i])
			if s.onJudge != nil {
				s.onJudge(r.found.name)
			}
		}
		next[r.found.name] = cachedVerdict{key: key, v: verdicts[i]}
	}
	s.verdicts = next

	for i := range sized {
		r := &sized[i]
		if verdicts[i].torn == "" {
			continue
		}
		if now.Sub(time.Unix(0, r.use.mtime)) < s.target.MinAge {
			r.found.incomplete = true
			r.found.why = "being written, or cut short: " + verdicts[i].torn
			continue
		}
		r.found.torn = verdicts[i].torn
	}
	suspects(sized, verdicts)
}

// suspectShare is how much shorter than the median of its siblings a file
// whose end cannot be checked must be to be suspect.
const suspectShare = 0.5

// suspects marks single-file checkpoints in a format with no end marker to
// check that are far shorter than the median of the other whole checkpoints
// of the series (three at least): a save of torch's legacy format killed
// half way looks like that. Suspect is no verdict: it only keeps the
// checkpoint (never deleted automatically, never one of the newest kept).
func suspects(sized []sizedCheckpoint, verdicts []verdict) {
	var sizes []int64
	for i, r := range sized {
		if !r.found.drop && !r.found.incomplete && r.found.torn == "" && len(r.entries) > 0 && !verdicts[i].unverified {
			sizes = append(sizes, r.use.bytes)
		}
	}
	for i := range sized {
		r := &sized[i]
		if !verdicts[i].unverified || r.found.drop || r.found.incomplete || r.found.torn != "" {
			continue
		}
		others := slices.Clone(sizes)
		for j, o := range sized {
			if j != i && verdicts[j].unverified && !o.found.drop && !o.found.incomplete && o.found.torn == "" && len(o.entries) > 0 {
				others = append(others, o.use.bytes)
			}
		}
		if len(others) < 3 {
			continue
		}
		slices.Sort(others)
		median := others[len(others)/2]
		if float64(r.use.bytes) < suspectShare*float64(median) {
			r.found.suspect = fmt.Sprintf("%s has no end marker to check, and this one is far shorter than its siblings (%d bytes against a median of %d): maybe cut short",
				verdicts[i].format, r.use.bytes, median)
		}
	}
}

// readVerdict reads the files of one checkpoint: its own file, the files of
// a group, or the top-level files of a directory (listed in f).
func readVerdict(d *listing, r sizedCheckpoint, f dirFacts) verdict {
	if len(r.entries) == 1 && r.entries[0].Dir {
		return readDirVerdict(d, r.entries[0].Name, f)
	}
	var v verdict
	for _, e := range r.entries {
		if e.Dir || e.Symlink {
			continue
		}
		fv, ok := judgeFile(d.fd, e.Name)
		if !ok {
			continue
		}
		if fv.State == formats.Torn {
			return verdict{torn: tornWords(len(r.entries) > 1, e.Name, fv)}
		}
		if len(r.entries) == 1 {
			v.unverified = fv.State == formats.NoEndMarker
			v.format = fv.Format
		}
	}
	return v
}

func readDirVerdict(d *listing, name string, f dirFacts) verdict {
	var checked []string
	for _, n := range f.names {
		if formats.Checked(n) {
			checked = append(checked, n)
		}
	}
	if len(checked) == 0 {
		return verdict{}
	}
	fd, err := dirfs.OpenDirAt(d.fd, append([]byte(name), 0))
	if err != nil {
		return verdict{}
	}
	defer unix.Close(fd)
	slices.Sort(checked)
	for _, n := range checked[:min(len(checked), maxJudgedFiles)] {
		if fv, ok := judgeFile(fd, n); ok && fv.State == formats.Torn {
			return verdict{torn: tornWords(true, n, fv)}
		}
	}
	return verdict{}
}

func tornWords(named bool, file string, v formats.Verdict) string {
	if named {
		return file + ": " + v.Reason
	}
	return v.Reason
}

// judgeFile reads the regular file name below dirfd through
// formats.CheckFile; ok is false when it could not be read (gone, not a
// regular file, unreadable: judged as before).
func judgeFile(dirfd int, name string) (formats.Verdict, bool) {
	if !formats.Checked(name) {
		return formats.Verdict{}, false
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return formats.Verdict{}, false
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return formats.Verdict{}, false
	}
	v, err := formats.CheckFile(name, st.Size, f)
	if err != nil {
		return formats.Verdict{}, false
	}
	return v, true
}
