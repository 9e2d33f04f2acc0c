// Package dirfs holds the directory system calls that the scanner
// (checkpoint) and the deletion walk (pruner) share: reading a directory in
// getdents64 batches, and stat, open and unlink relative to a directory
// descriptor with names that are already NUL-terminated in the getdents
// buffer, so a walk allocates nothing per file.
//
// Every call here goes through the Go runtime's blocking-aware syscall entry
// (unix.Syscall, never unix.RawSyscall): on a hard-mounted NFS, Lustre or
// FUSE filesystem any of them can block for minutes, and a raw syscall that
// blocks keeps its thread's P, so the next garbage collection waits for it
// and every goroutine of the process stops with it.
//
// It imports nothing of this repository.
package dirfs
