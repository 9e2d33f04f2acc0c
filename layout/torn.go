package layout

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// A save cut short by ENOSPC, a kill or a preemption leaves files shorter
// than their own structures say (wholefile.go). A checkpoint with a file
// that is conclusively cut short is torn, once nothing has written to that
// file for min_age (before that it may still be being written, and is only
// incomplete). A single file in a recognised format with no end marker to
// check (torch's legacy format when its pickles cannot be followed) that is
// far shorter than its siblings is suspect.

// maxJudgedFiles bounds how many files of one directory checkpoint are
// checked (a rank's shard each, for thousands of ranks).
const maxJudgedFiles = 4096

// suspectShare is how much shorter than the median of its siblings a file
// whose end cannot be checked must be to be suspect.
const suspectShare = 0.5

// judgeFiles checks the files of every checkpoint that the names and
// markers left complete: a checkpoint's own file, every file of a group (a
// TensorFlow index), the top-level files of a directory (lists).
func judgeFiles(d Dir, l *Listing, r *Reading, lists [][]Entry, now time.Time, minAge time.Duration) {
	type candidate struct {
		i      int
		size   int64
		format string
	}
	var unverified []candidate
	var sizes []int64 // of the checked single files that are whole
	for i := range r.Found {
		f := &r.Found[i]
		if !f.whole() {
			continue
		}
		var files []string
		if f.dir {
			for _, e := range lists[i] {
				if e.Kind == KindFile && Checked(e.Name) && len(files) < maxJudgedFiles {
					files = append(files, f.Name+"/"+e.Name)
				}
			}
			slices.Sort(files)
		} else {
			for _, name := range f.Entries {
				if e, ok := l.Get(name); ok && e.Kind == KindFile && Checked(name) {
					files = append(files, name)
				}
			}
		}
		single := !f.dir && len(f.Entries) == 1
		for _, rel := range files {
			v, info, ok := d.Check(rel)
			if !ok {
				continue
			}
			if v.State == Torn {
				why := v.Reason
				switch {
				case f.dir:
					why = strings.TrimPrefix(rel, f.Name+"/") + ": " + v.Reason
				case !single:
					why = rel + ": " + v.Reason
				}
				if now.Sub(info.ModTime) < minAge {
					f.Incomplete, f.Why = true, "being written, or cut short: "+why
				} else {
					f.Torn = why
				}
				break
			}
			if single {
				if v.State == NoEndMarker {
					unverified = append(unverified, candidate{i, info.Size, v.Format})
				} else {
					sizes = append(sizes, info.Size)
				}
			}
		}
	}
	for _, c := range unverified {
		others := slices.Clone(sizes)
		for _, o := range unverified {
			if o.i != c.i && r.Found[o.i].whole() {
				others = append(others, o.size)
			}
		}
		if len(others) < 3 {
			continue
		}
		slices.Sort(others)
		median := others[len(others)/2]
		if float64(c.size) < suspectShare*float64(median) {
			r.Found[c.i].Suspect = fmt.Sprintf("%s has no end marker to check, and this one is far shorter than its siblings (%d bytes against a median of %d): maybe cut short",
				c.format, c.size, median)
		}
	}
}
