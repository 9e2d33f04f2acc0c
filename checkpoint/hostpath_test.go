package checkpoint

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

func TestHostMountpoint(t *testing.T) {
	for _, tc := range []struct {
		name     string
		inFS     string
		hostPath string
		want     string
		ok       bool
	}{
		// hostPath volume /data/checkpoints of a disk mounted at /data.
		{"bind of a subdirectory", "/checkpoints", "/data/checkpoints", "/data", true},
		{"target below the bind", "/checkpoints/llama", "/data/checkpoints/llama", "/data", true},
		{"disk root mounted as is", "/", "/scratch", "/scratch", true},
		{"filesystem on the node's root", "/data/checkpoints", "/data/checkpoints", "/", true},
		{"trailing slash", "/checkpoints", "/data/checkpoints/", "/data", true},
		{"name only ends alike", "/checkpoints", "/data/mycheckpoints", "", false},
		{"host path elsewhere", "/checkpoints", "/srv/models", "", false},
		{"relative host path", "/checkpoints", "data/checkpoints", "", false},
		{"mount unknown", "", "/data/checkpoints", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := targetdir.FSStats{InFS: tc.inFS}.HostMountpoint(tc.hostPath)
			if got != tc.want || ok != tc.ok {
				t.Errorf("InFS %q, host path %q: got %q, %v; want %q, %v", tc.inFS, tc.hostPath, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// A real bind mount of a subdirectory, as a container runtime makes for a
// hostPath volume: the scan reports the node's mount point when the target
// has a host_path, and the bind's mount point without one.
func TestHostPathBindMount(t *testing.T) {
	base := t.TempDir()
	node := filepath.Join(base, "node")      // the node's filesystem, mounted here
	container := filepath.Join(base, "ckpt") // where the container sees the volume
	testenv.MountTmpfs(t, node, "4m")
	if err := os.MkdirAll(filepath.Join(node, "checkpoints", "llama"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(container, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(filepath.Join(node, "checkpoints"), container, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(container, unix.MNT_DETACH) })

	for _, tc := range []struct {
		path, hostPath, want string
	}{
		{filepath.Join(container, "llama"), filepath.Join(node, "checkpoints", "llama"), node},
		{container, filepath.Join(node, "checkpoints"), node},
		{filepath.Join(container, "llama"), "", container},
	} {
		s, err := NewScanner(Target{Name: "llama", Path: tc.path, HostPath: tc.hostPath}, ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		snap := s.Scan(t.Context())
		if snap.Err != nil {
			t.Fatal(snap.Err)
		}
		if snap.FS.Mountpoint != tc.want {
			t.Errorf("path %s, host_path %q: mountpoint %q, want %q", tc.path, tc.hostPath, snap.FS.Mountpoint, tc.want)
		}
	}
}
