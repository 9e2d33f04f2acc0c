package collector

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// Inode series are exported only for a filesystem that accounts inodes: a
// real one out of inodes (a small tmpfs) keeps its 0 free, rclone's billion
// with none free and s3fs's zeros are left out, so CheckpointInodesLow
// cannot fire for them.
func TestInodeSeriesOnlyWhereAccounted(t *testing.T) {
	for _, tt := range []struct {
		name             string
		fstype           string
		files, filesFree uint64
		exported         bool
	}{
		{"ext4", "ext4", 16 << 20, 15 << 20, true},
		{"tmpfs out of inodes", "tmpfs", 64, 0, true},
		{"rclone mount", "fuse.rclone", 1_000_000_000, 0, false},
		{"s3fs", "fuse.s3fs", 0, 0, false},
		{"all free", "fuse.gcsfuse", 1 << 50, 1 << 50, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			snap := &checkpoint.Snapshot{Target: checkpoint.Target{Name: "t"},
				FS: &targetdir.FSStats{Mountpoint: "/m", Device: "d", FSType: tt.fstype, SizeBytes: 1 << 30, AvailBytes: 1 << 29, Files: tt.files, FilesFree: tt.filesFree}}
			c := New(fixed{snap})
			want := 0
			if tt.exported {
				want = 1
			}
			for _, name := range []string{"checkpoint_filesystem_files", "checkpoint_filesystem_files_free"} {
				if got := testutil.CollectAndCount(c, name); got != want {
					t.Errorf("%s: %d series, want %d", name, got, want)
				}
			}
			if got := testutil.CollectAndCount(c, "checkpoint_filesystem_avail_bytes"); got != 1 {
				t.Errorf("checkpoint_filesystem_avail_bytes: %d series, want 1", got)
			}
		})
	}
}
