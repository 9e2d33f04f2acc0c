package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/hangfs"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// lock: lockfile is refused at load where the target's filesystem lists
// directories from a cache, naming the filesystem and the alternative; a
// FUSE filesystem said to cache nothing, a local one and a path not made
// yet are accepted.
func TestLockfileOnCachedListingsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to mount FUSE")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Missing(t, "needs /dev/fuse")
	}
	root := t.TempDir()
	h := hangfs.Mount(t, t.TempDir(), filepath.Join(root, "mnt"), hangfs.Options{})
	for _, tt := range []struct {
		name, path, prune string
		refused           bool
	}{
		{"unknown FUSE", h.Dir, "{lock: lockfile}", true},
		{"unknown FUSE with a cache", h.Dir, "{lock: lockfile, attribute_cache: 30s}", true},
		{"FUSE said to cache nothing", h.Dir, "{lock: lockfile, attribute_cache: 0s}", false},
		{"flock on unknown FUSE", h.Dir, "{lock: flock}", false},
		{"local", t.TempDir(), "{lock: lockfile}", false},
		{"not made yet", filepath.Join(h.Dir, "later"), "{lock: lockfile}", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := writeConfig(t, "targets:\n  - name: a\n    path: "+tt.path+"\n    min_age: 5m\n    prune: "+tt.prune+"\n")
			_, err := Load(p)
			if !tt.refused {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != "targets[0] (a).prune.lock" {
				t.Fatalf("got %v, want an error at targets[0] (a).prune.lock", err)
			}
			for _, s := range []string{"fuse.hangfs", tt.path, "lock: flock", "one place only"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not say %q", err, s)
				}
			}
		})
	}
}
