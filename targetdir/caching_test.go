package targetdir

import (
	"testing"
	"time"
)

func TestCachingOf(t *testing.T) {
	d := func(v time.Duration) *time.Duration { return &v }
	tests := []struct {
		name       string
		fstype     string
		options    string
		configured *time.Duration
		lifetime   time.Duration
		unknown    bool
		listing    bool
		writeBack  bool
		invented   bool
	}{
		{name: "ext4", fstype: "ext4"},
		{name: "tmpfs", fstype: "tmpfs"},
		{name: "overlay", fstype: "overlay"},
		{name: "NFS: a forced statx asks the server, actimeo or not", fstype: "nfs4", options: "rw,vers=4.2,actimeo=600"},
		{name: "SMB", fstype: "cifs"},
		{name: "Lustre", fstype: "lustre"},
		{name: "GPFS", fstype: "gpfs"},
		{name: "CephFS kernel client", fstype: "ceph"},
		{name: "ceph-fuse", fstype: "fuse.ceph-fuse"},
		{name: "BeeGFS", fstype: "beegfs"},
		{name: "9p without a cache mode", fstype: "9p", options: "rw,trans=virtio"},
		{name: "9p cache=loose", fstype: "9p", options: "rw,cache=loose", unknown: true, listing: true},
		{name: "sshfs", fstype: "fuse.sshfs", lifetime: 20 * time.Second, invented: true},
		{name: "sshfs with its cache timeout configured", fstype: "fuse.sshfs", configured: d(time.Minute), lifetime: time.Minute, invented: true},
		{name: "rclone", fstype: "fuse.rclone", lifetime: 5 * time.Minute, listing: true, writeBack: true, invented: true},
		{name: "rclone said to cache nothing still lists from its cache", fstype: "fuse.rclone", configured: d(0), listing: true, writeBack: true, invented: true},
		{name: "s3fs", fstype: "fuse.s3fs", lifetime: 15 * time.Minute, listing: true, invented: true},
		{name: "gcsfuse", fstype: "fuse.gcsfuse", lifetime: time.Minute, listing: true, invented: true},
		{name: "JuiceFS", fstype: "fuse.juicefs", lifetime: time.Second},
		{name: "GlusterFS", fstype: "fuse.glusterfs", lifetime: time.Second},
		{name: "unknown FUSE", fstype: "fuse.weirdfs", unknown: true, listing: true, invented: true},
		{name: "FUSE without a subtype", fstype: "fuse", unknown: true, listing: true, invented: true},
		{name: "unknown FUSE said to cache nothing", fstype: "fuse.weirdfs", configured: d(0), invented: true},
		{name: "unknown FUSE with a configured cache", fstype: "fuse.weirdfs", configured: d(30 * time.Second), lifetime: 30 * time.Second, listing: true, invented: true},
		{name: "local FUSE", fstype: "fuse.mergerfs"},
		{name: "unknown kernel filesystem", fstype: "nilfs9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := CachingOf(tt.fstype, tt.options, tt.configured)
			if c.FSType != tt.fstype || c.Family == "" {
				t.Errorf("type %q family %q", c.FSType, c.Family)
			}
			if c.Lifetime != tt.lifetime || c.Unknown != tt.unknown || c.ListingCached != tt.listing ||
				(c.WriteBack > 0) != tt.writeBack || c.InventsInodes != tt.invented {
				t.Errorf("CachingOf(%q, %q, %v) = %+v; want lifetime %s unknown %v listing cached %v write-back %v invented inodes %v",
					tt.fstype, tt.options, tt.configured, c, tt.lifetime, tt.unknown, tt.listing, tt.writeBack, tt.invented)
			}
			if c.Lifetime > 0 && c.Source == "" {
				t.Errorf("lifetime %s without a source", c.Lifetime)
			}
		})
	}
}

func TestInodesAccounted(t *testing.T) {
	tests := []struct {
		name             string
		files, filesFree uint64
		want             bool
	}{
		{"ext4", 16 << 20, 15 << 20, true},
		{"a small tmpfs out of inodes", 64, 0, true},
		{"an ext4 out of inodes", 16 << 20, 0, true},
		{"rclone: a billion, none free", 1_000_000_000, 0, false},
		{"s3fs: no inode figures", 0, 0, false},
		{"tmpfs without nr_inodes", 0, 0, false},
		{"gcsfuse: every inode free", 1 << 50, 1 << 50, false},
		{"more free than total", 10, 20, false},
		{"a huge filesystem with inodes in use", 4_000_000_000, 3_000_000_000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := FSStats{Files: tt.files, FilesFree: tt.filesFree}
			if got := f.InodesAccounted(); got != tt.want {
				t.Errorf("files=%d files_free=%d: accounted %v, want %v", tt.files, tt.filesFree, got, tt.want)
			}
		})
	}
}
