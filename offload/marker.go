package offload

import (
	"context"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// markerResult is the outcome of checking a checkpoint's marker, kept while
// neither the checkpoint (as scanned) nor the marker changes.
type markerResult struct {
	identity Record
	marker   markerStat
	ok       bool
	detail   string
}

// markerStat identifies a marker file as found; the zero value: none.
type markerStat struct {
	path         string
	ino          uint64
	mtime, ctime int64
}

// markerPaths are where c's marker may be: inside each directory entry, or
// beside the checkpoint as <name><marker> (and <entry><marker>).
func (o *Offloader) markerPaths(c checkpoint.Checkpoint) []string {
	dir, m := o.target.Path, o.cfg.Marker
	var out []string
	for _, e := range c.Entries {
		if e.Dir && !e.Symlink {
			out = append(out, filepath.Join(dir, e.Name, m))
		}
	}
	out = append(out, filepath.Join(dir, c.Name+m))
	for _, e := range c.Entries {
		if e.Name != c.Name {
			out = append(out, filepath.Join(dir, e.Name+m))
		}
	}
	return out
}

// findMarker returns the first marker of c that is a regular file.
func (o *Offloader) findMarker(c checkpoint.Checkpoint) markerStat {
	for _, p := range o.markerPaths(c) {
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			return markerStat{path: p, ino: st.Ino, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
		}
	}
	return markerStat{}
}

// checkMarkers checks the marker of every complete checkpoint of snap:
// present, and no older than the newest file of the checkpoint (a
// checkpoint rewritten after its sync needs a new marker). A result is
// reused while the checkpoint and its marker are unchanged, so only new
// checkpoints and new markers are walked.
func (o *Offloader) checkMarkers(ctx context.Context, snap *checkpoint.Snapshot) map[string]bool {
	out := map[string]bool{}
	for _, c := range snap.Checkpoints {
		if c.Incomplete || ctx.Err() != nil {
			continue
		}
		k := key(c)
		id := recordOf(c, c.ModTime, 0, nil)
		m := o.findMarker(c)
		o.mu.Lock()
		cached, ok := o.markers[k]
		o.mu.Unlock()
		if ok && cached.marker == m && cached.identity.matches(c) {
			out[k] = cached.ok
			continue
		}
		res := markerResult{identity: id, marker: m}
		switch p, err := fingerprint(o.target.Path, c, o.cfg.Marker); {
		case m.path == "":
			res.detail = "no marker " + o.cfg.Marker
		case err != nil:
			res.detail = "cannot read: " + err.Error()
		case m.mtime < p.fileMtime:
			res.detail = "marker older than the checkpoint"
		default:
			res.ok = true
		}
		o.mu.Lock()
		o.markers[k] = res
		o.mu.Unlock()
		out[k] = res.ok
	}
	o.mu.Lock()
	for k := range o.markers {
		if _, ok := out[k]; !ok {
			delete(o.markers, k)
		}
	}
	o.mu.Unlock()
	return out
}
