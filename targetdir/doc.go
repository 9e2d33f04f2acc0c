// Package targetdir is the target-directory safety layer: everything that
// decides where a scan may look and where a prune may delete, and every name
// the exporter writes into a target directory.
//
//   - Dir is a target directory opened once: a prune scans, locks and
//     deletes through one Dir, so a re-pointed symlink never moves the
//     deletion elsewhere. OpenDir refuses the root directory and anything
//     that is not a directory; Peers refuses, at every scan, a directory
//     that is another target's or inside or around it, through symlinks and
//     bind mounts (Location: where a directory lies in its filesystem, from
//     mountinfo).
//   - StatFS measures a filesystem and names its mount; StatGuard runs one
//     statfs per target at a time under a timeout, so a hung network mount
//     is reported (ErrHung) and never asked again and again.
//   - Caching judges what a filesystem's client caches from other clients'
//     changes (by its mountinfo type), StatxFresh reads attributes as the
//     server has them, and FSCaching.Settle waits out a FUSE daemon's cache.
//   - names.go lists every entry the exporter makes in a target directory;
//     trash.go and intent.go write and read the trash names and the marks of
//     a deletion in progress (anchors and intent records), writer and reader
//     side by side.
//   - Acquire locks a target directory against other pruners (flock on the
//     directory and LockFile, or a lock file with owner, host, pid and
//     expiry where flock is missing or node-local); Provision makes ahead of
//     need what locking and marking need on a full disk.
//
// docs/architecture.md numbers the safety invariants these keep and names
// their tests. The package holds no policy: it never decides what to
// delete. It imports nothing of this repository but internal/dirfs; it
// must not import checkpoint, layout, pruner or anything above them.
package targetdir
