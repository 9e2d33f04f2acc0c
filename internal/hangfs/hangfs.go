// Package hangfs is a FUSE filesystem for tests: a loopback view of a
// backing directory whose operations can be made to hang on demand, the way
// a hard-mounted NFS or Lustre client hangs when its server goes away, and
// which can refuse flock with ENOSYS, as Lustre mounted with noflock does.
//
// A hang is a switch for the whole filesystem: once tripped (at once, or by
// the n-th operation of a kind), that operation and every later one block in
// the kernel until Release. Statfs hangs too, as on a dead server.
package hangfs

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// Operation kinds that HangOn takes.
const (
	OpLookup  = "lookup"
	OpGetattr = "getattr"
	OpOpendir = "opendir"
	OpUnlink  = "unlink"
	OpRmdir   = "rmdir"
	OpRename  = "rename"
	OpStatfs  = "statfs"
)

// Options shape a mount.
type Options struct {
	// NoFlock makes flock (and POSIX locks) fail with ENOSYS.
	NoFlock bool
}

// FS is one mounted hangfs.
type FS struct {
	Dir string // the mount point

	server *fuse.Server

	mu       sync.Mutex // guards the fields below
	hung     bool
	release  chan struct{}
	triggers map[string]int
	blocked  int
	counts   map[string]int
}

// Mount mounts a hangfs showing backing on mountpoint (created if needed)
// and unmounts it when the test ends, releasing any hang first. It needs
// root and /dev/fuse; the mount is made directly, without fusermount.
func Mount(t testing.TB, backing, mountpoint string, opts Options) *FS {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to mount FUSE")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Missing(t, "needs /dev/fuse")
	}
	if err := os.MkdirAll(mountpoint, 0o755); err != nil {
		t.Fatal(err)
	}
	h := &FS{Dir: mountpoint, triggers: map[string]int{}, counts: map[string]int{}}
	root := &fs.LoopbackRoot{Path: backing}
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		t.Fatal(err)
	}
	root.Dev = uint64(st.Dev)
	root.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: r}, h: h, noFlock: opts.NoFlock}
	}
	rootNode := root.NewNode(root, nil, "", &st)
	root.RootNode = rootNode
	zero := time.Duration(0)
	server, err := fs.Mount(mountpoint, rootNode, &fs.Options{
		// No kernel caching: every stat and lookup reaches the filesystem,
		// so a hang is met where the test expects it.
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			DirectMountStrict: true,
			FsName:            "hangfs",
			Name:              "hangfs",
			EnableLocks:       opts.NoFlock,
			AllowOther:        true,
		},
	})
	if err != nil {
		t.Fatalf("mount hangfs on %s: %v", mountpoint, err)
	}
	h.server = server
	t.Cleanup(func() {
		h.Release()
		if err := server.Unmount(); err != nil {
			// Still busy (a process of the test stuck in it): detach, so
			// the mount goes away with its last user.
			t.Logf("unmount %s: %v; detaching", mountpoint, err)
			syscall.Unmount(mountpoint, syscall.MNT_DETACH)
			return
		}
		server.Wait()
	})
	return h
}

// Hang makes every operation from now on block until Release.
func (h *FS) Hang() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hangLocked()
}

func (h *FS) hangLocked() {
	if !h.hung {
		h.hung = true
		h.release = make(chan struct{})
	}
}

// HangOn hangs the filesystem when the n-th operation of kind op (counted
// from now, n ≥ 1) arrives: that operation and every later one block.
func (h *FS) HangOn(op string, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.triggers[op] = n
}

// Release answers every blocked operation and ends the hang.
func (h *FS) Release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hung {
		close(h.release)
		h.hung = false
	}
	clear(h.triggers)
}

// Blocked returns how many operations are waiting in the hang now.
func (h *FS) Blocked() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.blocked
}

// Count returns how many operations of kind op have arrived.
func (h *FS) Count(op string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[op]
}

// WaitBlocked waits until at least one operation is blocked in the hang.
func (h *FS) WaitBlocked(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for h.Blocked() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("hangfs %s: no operation blocked within %s", h.Dir, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gate is called at the start of every operation.
func (h *FS) gate(op string) {
	h.mu.Lock()
	h.counts[op]++
	if n, ok := h.triggers[op]; ok && !h.hung {
		if n <= 1 {
			delete(h.triggers, op)
			h.hangLocked()
		} else {
			h.triggers[op] = n - 1
		}
	}
	if !h.hung {
		h.mu.Unlock()
		return
	}
	ch := h.release
	h.blocked++
	h.mu.Unlock()
	<-ch
	h.mu.Lock()
	h.blocked--
	h.mu.Unlock()
}

func (h *FS) String() string { return fmt.Sprintf("hangfs(%s)", h.Dir) }

// node is a loopback node whose operations pass the gate first.
type node struct {
	fs.LoopbackNode
	h       *FS
	noFlock bool
}

var (
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
	_ fs.NodeSetlker        = (*node)(nil)
	_ fs.NodeSetlkwer       = (*node)(nil)
	_ fs.NodeGetlker        = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.InodeEmbedder      = (*node)(nil)
)

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.h.gate(OpLookup)
	return n.LoopbackNode.Lookup(ctx, name, out)
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.h.gate(OpGetattr)
	return n.LoopbackNode.Getattr(ctx, f, out)
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	n.h.gate(OpOpendir)
	return n.LoopbackNode.OpendirHandle(ctx, flags)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	n.h.gate(OpUnlink)
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	n.h.gate(OpRmdir)
	return n.LoopbackNode.Rmdir(ctx, name)
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	n.h.gate(OpRename)
	if p, ok := newParent.(*node); ok {
		newParent = &p.LoopbackNode
	}
	return n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	n.h.gate(OpStatfs)
	return n.LoopbackNode.Statfs(ctx, out)
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	n.h.gate("open")
	return n.LoopbackNode.Open(ctx, flags)
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	n.h.gate("create")
	return n.LoopbackNode.Create(ctx, name, flags, mode, out)
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.h.gate("mkdir")
	return n.LoopbackNode.Mkdir(ctx, name, mode, out)
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	n.h.gate("setattr")
	return n.LoopbackNode.Setattr(ctx, f, in, out)
}

// Locks: with NoFlock the mount asks the kernel to forward locks (instead of
// keeping them node-local) and refuses them, as Lustre's noflock does.
func (n *node) Setlk(ctx context.Context, f fs.FileHandle, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	n.h.gate("lock")
	return syscall.ENOSYS
}

func (n *node) Setlkw(ctx context.Context, f fs.FileHandle, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	n.h.gate("lock")
	return syscall.ENOSYS
}

func (n *node) Getlk(ctx context.Context, f fs.FileHandle, owner uint64, lk *fuse.FileLock, flags uint32, out *fuse.FileLock) syscall.Errno {
	n.h.gate("lock")
	return syscall.ENOSYS
}
