// Package sizing measures the disk usage of checkpoints the way du -x does:
// st_blocks*512, every hard link once per target, symlinks never followed,
// other filesystems never entered. It walks in the calling process, or — for
// background scans beside training jobs — in a walker process: a child of
// the exporter (the same binary, ServeWalker) whose every thread is at idle
// CPU and I/O priority, so that a starved walk never holds back the
// exporter's garbage collections.
//
// Every system call goes through the Go runtime's blocking-aware entry
// (internal/dirfs), and a walk moves its caller's Progress clock on as it
// goes, so a walk stuck on a hung mount shows as stalled, and a walker
// process that stops while its filesystem answers is killed.
//
// It knows nothing of layouts, snapshots or Prometheus; it must not import
// checkpoint.
package sizing
