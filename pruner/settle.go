package pruner

import (
	"errors"
	"fmt"

	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// ErrStaleFilesystem refuses a deletion on a filesystem whose client may
// show this node attributes older than the checks before a deletion can
// allow for: a FUSE filesystem of unknown caching, or one whose cache lives
// longer than min_age.
var ErrStaleFilesystem = errors.New("deleting is refused on this filesystem as configured")

// refuseStale says why nothing may be deleted in target t, on a filesystem
// cached as c, or nil.
//
// A save another node is writing shows this node an mtime up to
// c.Lifetime old; only a min_age longer than that keeps it from looking
// settled. The final walk (see targetdir.FSCaching.Settle) catches a write made before the
// scan, but a save seen with a stale mtime would otherwise be planned for
// deletion at every prune, and saved only by that walk's timing.
func refuseStale(t Target, c targetdir.FSCaching) error {
	switch {
	case c.Unknown:
		return fmt.Errorf("%s is on %s: its client may answer from a cache of its own for an unknown time, so another node's write could stay unseen until after a deletion; set prune.attribute_cache to the longest time it keeps attributes and directory listings (0s if it keeps none): %w",
			t.Path, c, ErrStaleFilesystem)
	case c.Lifetime > 0 && t.MinAge <= c.Staleness():
		return fmt.Errorf("min_age %s does not exceed the attribute cache of %s: a save another node is writing can show an mtime %s old here and be taken for a finished one; raise min_age above %s (or set prune.attribute_cache to what the mount really caches): %w",
			t.MinAge, c, c.Staleness(), c.Staleness(), ErrStaleFilesystem)
	}
	return nil
}
