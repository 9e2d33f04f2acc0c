package netfs

import (
	"os"
	"path/filepath"
	"testing"
)

// Each mount shows its backing directory, and comes back after its daemon
// was killed.
func TestMounts(t *testing.T) {
	for _, tt := range []struct {
		name  string
		mount func(t *testing.T, back, mnt string) *Mount
	}{
		{"sshfs", func(t *testing.T, back, mnt string) *Mount { return SSHFS(t, back, mnt, "") }},
		{"rclone", func(t *testing.T, back, mnt string) *Mount {
			return Rclone(t, back, mnt, "--vfs-cache-mode", "off")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			back, mnt := filepath.Join(root, "back"), filepath.Join(root, "mnt")
			if err := os.MkdirAll(back, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(back, "f"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			m := tt.mount(t, back, mnt)
			if b, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || string(b) != "x" {
				t.Fatalf("read through the mount: %q, %v", b, err)
			}
			m.Kill(t)
			if _, err := os.ReadFile(filepath.Join(mnt, "f")); err == nil {
				t.Fatal("read through a mount whose daemon was killed succeeded")
			}
			m.Remount(t)
			if b, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || string(b) != "x" {
				t.Fatalf("read after the remount: %q, %v", b, err)
			}
		})
	}
}
