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
