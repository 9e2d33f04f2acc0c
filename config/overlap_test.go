package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// Two targets on one directory, or one inside another, are refused whatever
// path leads there: the outer target would count the inner one as a
// checkpoint and delete it whole, and two policies on one directory cannot
// both hold.
func TestOverlappingTargetsRefused(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	models := filepath.Join(root, "models")
	must(os.MkdirAll(filepath.Join(models, "run1"), 0o755))
	must(os.Mkdir(filepath.Join(root, "other"), 0o755))
	must(os.Symlink(models, filepath.Join(root, "link")))
	must(os.Symlink(filepath.Join(models, "run1"), filepath.Join(root, "linkrun")))
	tests := []struct {
		name         string
		a, b         string
		key, reason  string
		mentionsBoth bool
	}{
		{"same path", "models", "models", "targets[1] (b).path", "same directory as target a", true},
		{"same path spelled differently", "models", "./other/../models/", "targets[1] (b).path", "same directory as target a", true},
		{"symlink to the same directory", "link", "models", "targets[1] (b).path", "same directory as target a", true},
		{"inner after outer", "models", "models/run1", "targets[1] (b).path", "inside target a", true},
		{"outer after inner", "models/run1", "models", "targets[0] (a).path", "inside target b", true},
		{"inner through a symlink", "models", "linkrun", "targets[1] (b).path", "inside target a", true},
		{"outer through a symlink", "link", "models/run1", "targets[1] (b).path", "inside target a", true},
		{"inner not created yet", "models", "link/run2/ckpt", "targets[1] (b).path", "inside target a", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(root, "c.yml")
			must(os.WriteFile(cfg, []byte(fmt.Sprintf("targets:\n  - name: a\n    path: %s\n  - name: b\n    path: %s\n", tt.a, tt.b)), 0o644))
			_, err := Load(cfg)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("paths %q and %q: error %v, want a *config.Error", tt.a, tt.b, err)
			}
			if ce.Key != tt.key || !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("got key=%q reason=%q; want key=%q reason containing %q", ce.Key, ce.Reason, tt.key, tt.reason)
			}
		})
	}
	t.Run("siblings are fine", func(t *testing.T) {
		cfg := filepath.Join(root, "ok.yml")
		must(os.WriteFile(cfg, []byte("targets:\n  - name: a\n    path: models/run1\n  - name: b\n    path: other\n  - name: c\n    path: models-2\n"), 0o644))
		if _, err := Load(cfg); err != nil {
			t.Error(err)
		}
	})
	t.Run("quick start dirs", func(t *testing.T) {
		_, err := FromDirs([]string{models, filepath.Join(models, "run1")})
		var ce *Error
		if !errors.As(err, &ce) || !strings.HasSuffix(ce.Key, ".path") || !strings.Contains(ce.Reason, "inside target models") {
			t.Errorf("FromDirs of nested dirs: %v", err)
		}
	})
}

// A bind mount makes one directory reachable by two unrelated paths: the
// directories are compared by identity, not by name.
func TestOverlapThroughBindMount(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to bind-mount")
	}
	root := t.TempDir()
	models := filepath.Join(root, "models")
	bind := filepath.Join(root, "bind")
	for _, d := range []string{filepath.Join(models, "run1"), bind} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount(models, bind, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(bind, unix.MNT_DETACH) })
	for _, tt := range []struct{ a, b, reason string }{
		{models, bind, "same directory as target a"},
		{models, filepath.Join(bind, "run1"), "inside target a"},
		{bind, filepath.Join(models, "run1"), "inside target a"},
	} {
		cfg := filepath.Join(root, "c.yml")
		os.WriteFile(cfg, []byte(fmt.Sprintf("targets:\n  - name: a\n    path: %s\n  - name: b\n    path: %s\n", tt.a, tt.b)), 0o644)
		_, err := Load(cfg)
		var ce *Error
		if !errors.As(err, &ce) || !strings.HasSuffix(ce.Key, ".path") || !strings.Contains(ce.Reason, tt.reason) {
			t.Errorf("%s and %s: %v, want a path error %q", tt.a, tt.b, err, tt.reason)
		}
	}
}

// bindMount mounts src on dst (creating dst) until the test ends.
func bindMount(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount %s on %s: %v", src, dst, err)
	}
	t.Cleanup(func() {
		if unix.Unmount(dst, 0) != nil {
			unix.Unmount(dst, unix.MNT_DETACH) // busy: detach now, freed when unused
		}
	})
}

// A bind mount of a subdirectory has the mount point's parent as its "..",
// so neither the path nor the chain of parents shows that it lies inside
// another target; the filesystem's own name for the directory (the mount's
// root joined with the path below the mount point) does. The outer target
// would delete the inner one's whole run as one of its checkpoints.
func TestNestedThroughBindMountRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to bind-mount")
	}
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// x/a is a run with checkpoint-700; y/b shows checkpoint-700 elsewhere;
	// z shows x, the parent of a; elsewhere shows an unrelated directory and
	// near a sibling of a whose name starts with a's.
	for _, d := range []string{"x/a/checkpoint-700", "x/ab", "unrelated"} {
		must(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	bindMount(t, filepath.Join(root, "x/a/checkpoint-700"), filepath.Join(root, "y/b"))
	bindMount(t, filepath.Join(root, "x"), filepath.Join(root, "z"))
	bindMount(t, filepath.Join(root, "unrelated"), filepath.Join(root, "elsewhere"))
	bindMount(t, filepath.Join(root, "x/ab"), filepath.Join(root, "near"))
	// One tmpfs reached by two mounts of its root, as `mount /dev/x /m1;
	// mount /dev/x /m2` makes.
	tmpfs := filepath.Join(root, "t")
	testenv.MountTmpfs(t, tmpfs, "4m")
	for _, d := range []string{"a/b", "ab"} {
		must(os.MkdirAll(filepath.Join(tmpfs, d), 0o755))
	}
	bindMount(t, tmpfs, filepath.Join(root, "m1"))
	bindMount(t, tmpfs, filepath.Join(root, "m2"))
	// Another tmpfs with the same names inside: another device.
	other := filepath.Join(root, "t2")
	testenv.MountTmpfs(t, other, "4m")
	must(os.MkdirAll(filepath.Join(other, "a/b"), 0o755))
	// mountinfo escapes the space (\040).
	bindMount(t, filepath.Join(root, "x/a/checkpoint-700"), filepath.Join(root, "with space"))

	tests := []struct {
		name string
		a, b string
		// key and reason of the refusal; "" if the two are accepted.
		key, reason string
	}{
		{"bind mount of a subdirectory, inner after outer", "x/a", "y/b", "targets[1] (b).path", "inside target a's directory"},
		{"bind mount of a subdirectory, outer after inner", "y/b", "x/a", "targets[0] (a).path", "inside target b's directory"},
		{"not created yet below a bind mount of a subdirectory", "x/a", "y/b/run2", "targets[1] (b).path", "inside target a's directory"},
		{"bind mount of a subdirectory on a path with a space", "x/a", "with space", "targets[1] (b).path", "inside target a's directory"},
		{"bind mount of the parent", "x/a", "z", "targets[0] (a).path", "inside target b's directory"},
		{"one tmpfs mounted twice", "m1/a", "m2/a/b", "targets[1] (b).path", "inside target a's directory"},
		{"one tmpfs mounted twice, same directory", "m1/a", "m2/a", "targets[1] (b).path", "same directory as target a's"},
		{"one tmpfs mounted twice, a sibling sharing a prefix", "m1/a", "m2/ab", "", ""},
		{"bind mount of a sibling sharing a prefix", "x/a", "near", "", ""},
		{"the same names on another filesystem", "m1/a", "t2/a/b", "", ""},
		{"bind mount of an unrelated directory", "x/a", "elsewhere", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(root, "c.yml")
			must(os.WriteFile(cfg, []byte(fmt.Sprintf("targets:\n  - name: a\n    path: %s\n  - name: b\n    path: %s\n", tt.a, tt.b)), 0o644))
			_, err := Load(cfg)
			if tt.key == "" {
				if err != nil {
					t.Errorf("paths %q and %q: %v, want them accepted", tt.a, tt.b, err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("paths %q and %q: error %v, want a *config.Error", tt.a, tt.b, err)
			}
			if ce.Key != tt.key || !strings.Contains(ce.Reason, tt.reason) || !strings.Contains(ce.Reason, "through a bind mount") {
				t.Errorf("paths %q and %q: got key=%q reason=%q; want key=%q, reason with %q and %q",
					tt.a, tt.b, ce.Key, ce.Reason, tt.key, tt.reason, "through a bind mount")
			}
		})
	}
}
