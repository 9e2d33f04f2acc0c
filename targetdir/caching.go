package targetdir

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Caching is what a filesystem's client may keep from this node about what
// other clients change: how stale an attribute or a directory listing can
// be after the kernel was told to ask afresh. The pruner's last check before
// a deletion reads attributes with statx(AT_STATX_FORCE_SYNC); Caching says
// whether that answer is fresh, or how long to wait before it is.
//
// Families, judged by mountinfo's filesystem type (see CachingOf):
//
//   - local filesystems: nothing to do, no other client;
//   - network filesystems whose kernel client asks the server when forced:
//     NFS (fs/nfs/inode.c nfs_getattr: force_sync skips the attribute cache
//     and its actimeo/acregmax/acdirmax), SMB (fs/smb/client/inode.c
//     cifs_getattr: AT_STATX_FORCE_SYNC zeroes the cache time), 9p without
//     a cache mode, virtiofs (FUSE, served from the host's own filesystem);
//   - cluster filesystems that keep attributes coherent through their lock
//     managers: Lustre (LDLM locks), GPFS (tokens), CephFS (capabilities;
//     fs/ceph/inode.c ceph_getattr forwards AT_STATX_FORCE_SYNC to the
//     MDS), BeeGFS (FhgfsOps_getattr queries the metadata server when
//     forced), OCFS2 and GFS2 (cluster locks), ceph-fuse;
//   - FUSE filesystems whose daemon keeps a cache of its own: the kernel
//     forwards a forced statx to the daemon (fs/fuse/dir.c
//     fuse_update_get_attr: sync = true), but the daemon answers from its
//     cache until that expires, and mountinfo does not show how long that
//     is. Their defaults are below; prune.attribute_cache overrides them;
//   - any other FUSE filesystem: unknown until prune.attribute_cache says.
//
// Any other kernel filesystem is taken as local (a kernel client that caches
// without honouring AT_STATX_FORCE_SYNC would be a new network filesystem:
// set prune.attribute_cache for it).
type Caching struct {
	// FSType is the filesystem type judged (mountinfo's).
	FSType string
	// Family says which of the families above, in words, for messages.
	Family string
	// Lifetime is how long the client may answer from a cache even when
	// forced: an attribute or listing read now may be that old. 0: a
	// forced statx is fresh.
	Lifetime time.Duration
	// Source says where Lifetime comes from, for messages.
	Source string
	// Unknown: a FUSE filesystem whose caching is not known, and
	// prune.attribute_cache is not set: nothing may be deleted on it.
	Unknown bool
	// ListingCached: the client may not see a file another client created
	// for as long as Lifetime (a cached directory listing: rclone, s3fs,
	// gcsfuse), and may create over it. A lock file of another host is not
	// seen there, so lock files are refused.
	ListingCached bool
	// WriteBack is how long the client may hold written files before
	// sending them to the server (rclone's --vfs-write-back with
	// --vfs-cache-mode writes or full): a file renamed or removed in that
	// time can reach the server later, under its new name. 0: writes are
	// sent before close returns.
	WriteBack time.Duration
	// InventsInodes: inode numbers are made up by the client, per mount
	// and per lookup (sshfs without -o use_ino, rclone, s3fs): they
	// identify nothing across a remount, or once the kernel forgot the node.
	InventsInodes bool
}

// daemonCache are the FUSE filesystems whose daemon caches attributes and
// listings itself, with the default lifetime of that cache.
var daemonCache = map[string]Caching{
	// sshfs(1): "-o cache_timeout=N sets timeout for caches in seconds
	// (default: 20)", with cache=yes the default. Lookups of a name not in
	// the cache go to the server, and O_CREAT|O_EXCL is SSH_FXF_EXCL on the
	// server: a lock file another host made is seen. Inode numbers are
	// libfuse's node IDs unless -o use_ino (not shown in mountinfo).
	"fuse.sshfs": {Lifetime: 20 * time.Second, Source: "sshfs's default cache_timeout", InventsInodes: true},
	// rclone mount: "--dir-cache-time Time to cache directory entries for
	// (default 5m0s)"; "--vfs-write-back Time to writeback files after
	// last use when using cache (default 5s)" (the cache mode is not
	// shown in mountinfo: taken as possible).
	"fuse.rclone": {Lifetime: 5 * time.Minute, Source: "rclone mount's default --dir-cache-time", ListingCached: true, WriteBack: 5 * time.Second, InventsInodes: true},
	// s3fs(1): "-o stat_cache_expire (default is 900)".
	"fuse.s3fs": {Lifetime: 900 * time.Second, Source: "s3fs's default stat_cache_expire", ListingCached: true, InventsInodes: true},
	// Cloud Storage FUSE: metadata-cache ttl-secs (formerly
	// --stat-cache-ttl and --type-cache-ttl) 60 s by default.
	"fuse.gcsfuse": {Lifetime: time.Minute, Source: "gcsfuse's default metadata cache TTL", ListingCached: true, InventsInodes: true},
	// goofys: "--stat-cache-ttl How long to cache StatObject results and
	// inode attributes (default: 1m0s)".
	"fuse.goofys": {Lifetime: time.Minute, Source: "goofys's default --stat-cache-ttl", ListingCached: true, InventsInodes: true},
	// JuiceFS: close-to-open consistency from its metadata engine; the
	// kernel keeps entries for --entry-cache/--dir-entry-cache, 1 s by
	// default, and a forced statx of a stale entry reads the old inode.
	"fuse.juicefs": {Lifetime: time.Second, Source: "JuiceFS's default --entry-cache"},
	// GlusterFS's FUSE client: md-cache answers for
	// performance.md-cache-timeout, 1 s by default; inode numbers come
	// from GFIDs, stable.
	"fuse.glusterfs": {Lifetime: time.Second, Source: "GlusterFS's default performance.md-cache-timeout"},
}

// localTypes are filesystems with no other client: block-device and memory
// filesystems, and FUSE filesystems that serve a local directory (over a
// network filesystem they inherit its caching: set prune.attribute_cache).
var localTypes = setOf("ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "bcachefs", "jfs", "reiserfs", "nilfs2",
	"tmpfs", "ramfs", "overlay", "vfat", "msdos", "exfat", "ntfs", "ntfs3", "hfsplus", "udf", "iso9660", "squashfs",
	"erofs", "fuseblk", "fuse.ntfs-3g", "fuse.bindfs", "fuse.mergerfs", "fuse.fuse-overlayfs", "fuse-overlayfs",
	"fuse.squashfuse", "fuse.lxcfs")

// revalidated are network filesystems whose kernel client asks the server
// when statx is forced (see Caching).
var revalidated = setOf("nfs", "nfs4", "cifs", "smb3", "virtiofs")

// coherent are cluster filesystems that keep attributes coherent across
// clients (see Caching).
var coherent = setOf("lustre", "gpfs", "ceph", "beegfs", "ocfs2", "gfs2", "fuse.ceph-fuse", "fuse.ceph")

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// CachingOf judges the filesystem of type fstype (mountinfo's) mounted with
// super options options. configured is the target's prune.attribute_cache
// (nil: not set): where set, it is the lifetime, whatever the family.
func CachingOf(fstype, options string, configured *time.Duration) Caching {
	c := Caching{FSType: fstype}
	fuse := fstype == "fuse" || strings.HasPrefix(fstype, "fuse.")
	switch d, known := daemonCache[fstype]; {
	case known:
		d.FSType, d.Family = fstype, "FUSE filesystem whose daemon caches attributes and listings"
		c = d
	case localTypes[fstype]:
		c.Family = "local filesystem"
	case revalidated[fstype]:
		c.Family = "network filesystem whose client asks the server when forced"
	case coherent[fstype]:
		c.Family = "cluster filesystem with coherent attributes"
	case fstype == "9p":
		// v9fs answers from its inode cache with any cache mode
		// (v9fs_vfs_getattr_dotl): only without one does every stat
		// reach the server.
		c.Family = "9p"
		if mode := option(options, "cache"); mode != "" && mode != "none" {
			c.Family, c.Unknown, c.ListingCached = "9p with cache="+mode, true, true
		}
	case fuse:
		c.Family, c.Unknown, c.ListingCached, c.InventsInodes = "FUSE filesystem of unknown caching", true, true, true
	default:
		c.Family = "kernel filesystem taken as local"
	}
	if configured != nil {
		c.Lifetime, c.Source, c.Unknown = *configured, "prune.attribute_cache", false
		if *configured == 0 && (fuse || fstype == "9p") && daemonCache[fstype].Lifetime == 0 {
			// Said to cache nothing: a name another client made is seen.
			c.ListingCached = false
		}
	}
	return c
}

// option returns the value of key in comma-separated mount options.
func option(options, key string) string {
	for _, o := range strings.Split(options, ",") {
		if k, v, ok := strings.Cut(o, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// ClockGrain is added to a cache lifetime: daemons count it in whole
// seconds (sshfs's cache.c keeps an entry while time(NULL) <= its expiry,
// so a 20 s timeout serves an entry read at 12.01 s until 32.99 s).
const ClockGrain = time.Second

// Staleness is how old an attribute or listing read now may be: the
// lifetime and the clock grain; 0 where a forced statx is fresh.
func (c Caching) Staleness() time.Duration {
	if c.Lifetime <= 0 {
		return 0
	}
	return c.Lifetime + ClockGrain
}

// LockfileRefusal says why a lock file cannot keep other hosts out of
// path, on a filesystem mounted at mountpoint whose listings are cached
// (ListingCached), and what to do instead.
func (c Caching) LockfileRefusal(path, mountpoint string) string {
	return fmt.Sprintf("lockfile cannot keep other hosts out of %s on %s mounted at %s: its client lists directories from a cache, so a lock file another host creates stays unseen here and can be written over; "+
		"prune this volume from one place only (prune.execute on one exporter, the others watching) with lock: flock, or use flock where the filesystem's flock is cluster-wide",
		path, c, mountpoint)
}

// FSCaching is what a prune knows of its target's filesystem: the mount
// the target directory lies on and what its client caches.
type FSCaching struct {
	Caching
	Mountpoint string
}

// Caching judges the filesystem the directory lies on (Dir.Mount), with the
// target's prune.attribute_cache (configured, nil if unset).
func (d *Dir) Caching(configured *time.Duration) (FSCaching, error) {
	m, err := d.Mount()
	if err != nil {
		return FSCaching{}, err
	}
	return FSCaching{CachingOf(m.FSType, m.Options, configured), m.Mountpoint}, nil
}

// Settle waits until what a forced statx reads can show every change
// another client made before a scan that began at scanned: a FUSE daemon's
// cache answers for up to Staleness() after it read a file, so once that
// long has passed since the scan began, what is read was read from the
// server after the scan began. The wait is bounded by the lifetime and
// ends with ctx.
func (c FSCaching) Settle(ctx context.Context, logger log.Logger, scanned time.Time) error {
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

// WaitWriteBack waits until files written or renamed through the mount
// before now have reached the server and its listing shows them: the
// write-back delay and the cache (see Caching.WriteBack).
func (c FSCaching) WaitWriteBack(ctx context.Context, logger log.Logger) error {
	wait := c.WriteBack + c.Staleness()
	level.Info(logger).Log("msg", "waiting for the filesystem's write-back before checking that the trash is gone", "fstype", c.FSType,
		"write_back", c.WriteBack, "cache", c.Lifetime, "wait", wait)
	return sleepCtx(ctx, wait)
}

func (c Caching) String() string {
	s := fmt.Sprintf("%s (%s)", c.FSType, c.Family)
	if c.Lifetime > 0 {
		s += fmt.Sprintf(", cache lifetime %s (%s)", c.Lifetime, c.Source)
	}
	return s
}
