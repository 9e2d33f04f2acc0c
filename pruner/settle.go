package pruner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// ErrStaleFilesystem refuses a deletion on a filesystem whose client may
// show this node attributes older than the checks before a deletion can
// allow for: a FUSE filesystem of unknown caching, or one whose cache lives
// longer than min_age.
var ErrStaleFilesystem = errors.New("deleting is refused on this filesystem as configured")

// fsCaching is what a prune knows of its target's filesystem: its mount and
// what its client caches.
type fsCaching struct {
	checkpoint.Caching
	mountpoint string
}

// caching judges the filesystem the target directory lies on, with the
// target's prune.attribute_cache.
func caching(dir *checkpoint.Dir, p Policy) (fsCaching, error) {
	m, err := dir.Mount()
	if err != nil {
		return fsCaching{}, err
	}
	return fsCaching{checkpoint.CachingOf(m.FSType, m.Options, p.AttributeCache), m.Mountpoint}, nil
}

// refuseStale says why nothing may be deleted in target t, on a filesystem
// cached as c, or nil.
//
// A save another node is writing shows this node an mtime up to
// c.Lifetime old; only a min_age longer than that keeps it from looking
// settled. The final walk (see settle) catches a write made before the
// scan, but a save seen with a stale mtime would otherwise be planned for
// deletion at every prune, and saved only by that walk's timing.
func refuseStale(t Target, c fsCaching) error {
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

// settle waits until the final walk before the first deletion can see
// every change another client made before the scan the plan came from
// (scanned, when it began): a FUSE daemon's cache answers for up to
// c.Staleness() after it read a file, so once that long has passed since
// the scan began, what the walk reads was read from the server after the
// scan began. Each
// checkpoint's walk then fails on any such change (CauseChanged). The wait
// is bounded by the lifetime and ends with ctx.
func (x *Executor) settle(ctx context.Context, logger log.Logger, c fsCaching, scanned time.Time) error {
	if c.Lifetime <= 0 {
		return nil
	}
	now := time.Now()
	if scanned.IsZero() || scanned.After(now) {
		scanned = now
	}
	wait := scanned.Add(c.Staleness()).Sub(now)
	if wait <= 0 {
		return nil
	}
	level.Info(logger).Log("msg", "waiting out the filesystem's attribute cache before the final check", "fstype", c.FSType,
		"cache", c.Lifetime, "source", c.Source, "wait", wait.Round(time.Millisecond))
	if err := sleepCtx(ctx, wait); err != nil {
		return fmt.Errorf("waiting out the attribute cache of %s: %w", c.FSType, err)
	}
	return nil
}
