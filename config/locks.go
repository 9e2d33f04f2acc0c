package config

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// CheckLocks refuses prune.lock: lockfile on a filesystem whose client lists
// directories from a cache (rclone mount, s3fs, gcsfuse, an unknown FUSE
// filesystem): a lock file another host created there stays unseen for the
// cache's lifetime, and creating ours can write over it. A path that does
// not exist yet is left to the prune, which refuses the same.
func (c *Config) CheckLocks(file string) error {
	for i := range c.Targets {
		t := &c.Targets[i]
		if t.Prune.Lock != "lockfile" {
			continue
		}
		m, err := targetdir.MountAt(t.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return t.errorAt(file, i, keyError{"prune.lock", fmt.Sprintf("cannot tell what filesystem %s is on, to know whether a lock file works there: %v", t.Path, err)})
		}
		var configured *time.Duration
		if d := t.Prune.AttributeCache; d != nil {
			v := time.Duration(*d)
			configured = &v
		}
		if cache := targetdir.CachingOf(m.FSType, m.Options, configured); cache.ListingCached {
			return t.errorAt(file, i, keyError{"prune.lock", cache.LockfileRefusal(t.Path, m.Mountpoint)})
		}
	}
	return nil
}
