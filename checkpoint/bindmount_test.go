package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// A bind mount of one of target a's checkpoints that appears on target b's
// directory after both were scanned: b's ".." is the mount point's parent,
// so the chains of parents do not meet, but the filesystem names b's
// directory as one below a's. Every scan of either refuses it, a's even
// before b is scanned again; without the mount both scan again. With a
// targetdir.StatFS that reads no mounts (a test's), the scan reads them itself.
func TestScanRefusesTargetInsideAnotherThroughBindMount(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to bind-mount")
	}
	for _, tt := range []struct {
		name   string
		statFS func(string) (targetdir.FSStats, error)
	}{
		{"the scan's statfs reads the mounts", nil},
		{"a statfs without mounts", func(string) (targetdir.FSStats, error) {
			return targetdir.FSStats{SizeBytes: 1 << 30, AvailBytes: 1 << 29}, nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			a, b := filepath.Join(root, "x", "a"), filepath.Join(root, "y", "b")
			for _, d := range []string{filepath.Join(a, "checkpoint-700"), b} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			var scanners []*Scanner
			for name, path := range map[string]string{"a": a, "b": b} {
				s, err := NewScanner(Target{Name: name, Path: path}, ScanOptions{StatFS: tt.statFS})
				if err != nil {
					t.Fatal(err)
				}
				scanners = append(scanners, s)
			}
			inv := NewInventory(log.NewNopLogger(), time.Hour, scanners...)
			scan := func(name, want string) {
				t.Helper()
				snap, dir, _ := inv.RescanHeld(t.Context(), name)
				dir.Close()
				switch err := snap.Err; {
				case want == "" && err != nil:
					t.Errorf("scan of %s: %v, want none", name, err)
				case want != "" && (!errors.Is(err, targetdir.ErrRefused) || !strings.Contains(err.Error(), want)):
					t.Errorf("scan of %s: %v, want a refusal saying %q", name, err, want)
				}
			}
			scan("a", "")
			scan("b", "")

			if err := unix.Mount(filepath.Join(a, "checkpoint-700"), b, "", unix.MS_BIND, ""); err != nil {
				t.Fatalf("bind mount: %v", err)
			}
			mounted := true
			t.Cleanup(func() {
				if mounted {
					unix.Unmount(b, unix.MNT_DETACH)
				}
			})
			scan("a", "contains target b's through a bind mount")
			scan("b", "inside target a's through a bind mount")
			scan("a", "contains target b's through a bind mount")

			if err := unix.Unmount(b, 0); err != nil {
				t.Fatal(err)
			}
			mounted = false
			scan("b", "")
			scan("a", "")
		})
	}
}
