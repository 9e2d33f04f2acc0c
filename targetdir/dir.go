package targetdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrRefused marks a target directory that must never be scanned or pruned
// as it is now: the root directory, something that is not a directory, or
// another target's directory (or one inside or around it, whatever mount
// leads there). The start-up checks refuse these in the configuration; a
// symlinked target re-pointed, or a bind mount made, at run time is refused
// by every scan and before every prune.
var ErrRefused = errors.New("target directory refused")

// refusal is an ErrRefused error that says what is wrong once, without
// ErrRefused's own words.
type refusal struct {
	msg   string
	cause error // nil, or what made the check fail
}

func refused(cause error, format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...), cause: cause}
}

func (r *refusal) Error() string { return r.msg }

func (r *refusal) Unwrap() []error {
	if r.cause == nil {
		return []error{ErrRefused}
	}
	return []error{ErrRefused, r.cause}
}

// DirID identifies a directory: device and inode.
type DirID struct{ Dev, Ino uint64 }

// Dir is a target directory opened once. A prune scans, locks and deletes
// through one Dir, so a path re-pointed in between (a symlinked target) can
// never make the deletion happen in another directory than the one planned.
type Dir struct {
	fd   int
	path string
	id   DirID
}

// OpenDir opens the target directory path (following a symlink, as a
// configured path may be one) and refuses the root directory and anything
// that is not a directory.
func OpenDir(path string) (*Dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOTDIR) {
		return nil, refused(nil, "%s is not a directory", path)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	d := &Dir{fd: fd, path: path, id: DirID{Dev: st.Dev, Ino: st.Ino}}
	if err := d.refuseRoot(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return d, nil
}

// Fd is the directory's descriptor, for *at system calls. It is valid until Close.
func (d *Dir) Fd() int { return d.fd }

// Path is the configured path the directory was opened by.
func (d *Dir) Path() string { return d.path }

// ID is the opened directory's identity.
func (d *Dir) ID() DirID { return d.id }

// Close releases the descriptor (and with it any flock taken on it).
func (d *Dir) Close() error {
	if d == nil || d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

func (d *Dir) refuseRoot() error {
	var root unix.Stat_t
	if err := unix.Stat("/", &root); err != nil {
		return &os.PathError{Op: "stat", Path: "/", Err: err}
	}
	if (DirID{Dev: root.Dev, Ino: root.Ino}) == d.id {
		return refused(nil, "%s is the root directory", d.path)
	}
	return nil
}

// Recheck verifies, just before a deletion, that the configured path still
// names this directory and that it is still not the root directory. A
// symlinked target re-pointed since the directory was opened fails it: the
// plan was made for a directory that is no longer the target.
func (d *Dir) Recheck() error {
	if err := d.refuseRoot(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat(d.path, &st); err != nil {
		return refused(err, "%s no longer names the directory that was scanned (%v)", d.path, err)
	}
	if (DirID{Dev: st.Dev, Ino: st.Ino}) != d.id {
		return refused(nil, "%s names another directory than the one scanned (re-pointed symlink?)", d.path)
	}
	return nil
}

// ancestry returns the directory's identity followed by its parents' up to
// the root, read through the descriptor (..), never by path.
func (d *Dir) ancestry() ([]DirID, error) {
	chain := []DirID{d.id}
	fd, err := unix.Openat(d.fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	for depth := 0; err == nil && depth < 256; depth++ {
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		if err != nil {
			break
		}
		id := DirID{Dev: st.Dev, Ino: st.Ino}
		if id == chain[len(chain)-1] {
			break // the root is its own parent
		}
		chain = append(chain, id)
		next, oerr := unix.Openat(fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		fd, err = next, oerr
	}
	if fd >= 0 {
		unix.Close(fd)
	}
	if err != nil {
		return nil, fmt.Errorf("parents of %s: %w", d.path, err)
	}
	return chain, nil
}

// place is where a target's last scan found its directory.
type place struct {
	chain []DirID // the directory, then its parents up to the root
	// loc is where the directory lies in its filesystem (Path "" if
	// unknown): a bind mount of a subdirectory of another target shows
	// only there, its chain of parents leaves at the mount point.
	loc Location
	// path is the directory's absolute path in this mount namespace ("" if
	// unknown), for another scan to place it by its own reading of the mounts.
	path string
	// inventedInodes: the directory's filesystem makes inode numbers up
	// (Caching.InventsInodes: sshfs numbers nodes in lookup order, anew
	// after a remount, which reuses the device number too), so its IDs in
	// chain identify nothing across scans; loc does.
	inventedInodes bool
}

// locate places the opened directory: its path, read from the descriptor,
// and its location, from the scan's statfs of the target (fs) when that
// measured this very directory, else (the path was re-pointed in between,
// or a StatFS that reads no mounts) from mountinfo read here. mounts is the
// mount table used, nil if none could be read.
func (d *Dir) locate(fs *FSStats) (path string, loc Location, mounts mountTable) {
	mounts = fs.mounts
	// The kernel names the descriptor's directory through the mount it was
	// opened by; a removed one gets " (deleted)" appended and has no path.
	if p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", d.fd)); err == nil && filepath.IsAbs(p) && !strings.HasSuffix(p, " (deleted)") {
		path = p
	}
	if fs.InFS != "" && fs.Dev == d.id.Dev && fs.Ino == d.id.Ino {
		return path, Location{Dev: fs.Dev, Path: fs.InFS}, mounts
	}
	if mounts == nil {
		mounts, _ = readMounts(mountinfoFile)
	}
	if path != "" {
		loc, _ = mounts.locate(d.id.Dev, path)
	}
	return path, loc, mounts
}

// Peers remembers where each target of one inventory was last scanned, so
// that a scan can refuse a target whose path now leads to another target's
// directory, or into or around it. Only memory is consulted: another
// target's hung mount never stalls this scan. A nil *Peers compares
// nothing.
type Peers struct {
	mu     sync.Mutex // guards places
	places map[string]place
}

// NewPeers returns an empty set of targets' directories.
func NewPeers() *Peers { return &Peers{places: map[string]place{}} }

// Open opens the directory of target at path and applies the refusals the
// configuration check applies at start-up (the root directory, not a
// directory, another target's directory or one inside or around it,
// through a bind mount too): a symlinked target can be re-pointed, and a
// mount made, at run time. fs is the scan's statfs of path (StatFS); Open
// drops its mount table, which a snapshot must not keep.
func (p *Peers) Open(target, path string, fs *FSStats) (*Dir, error) {
	defer func() { fs.mounts = nil }()
	dir, err := OpenDir(path)
	if err != nil {
		p.check(target, nil, nil)
		return nil, err
	}
	pl := &place{}
	pl.chain, err = dir.ancestry()
	if err != nil {
		pl.chain = []DirID{dir.id} // parents unreadable: compare the directory alone
	}
	// The system calls are made here, before p takes its lock.
	var mounts mountTable
	pl.path, pl.loc, mounts = dir.locate(fs)
	pl.inventedInodes = CachingOf(fs.FSType, fs.Options, nil).InventsInodes
	if err := p.check(target, pl, mounts); err != nil {
		dir.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return dir, nil
}

// check records pl (where target's directory was found) and returns an
// ErrRefused error if it collides with another target's; mounts is the
// mount table the scan read (nil if none), to place the other targets'
// paths as they are now. A nil pl forgets the target (its directory could
// not be opened).
func (p *Peers) check(target string, pl *place, mounts mountTable) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if pl == nil {
		delete(p.places, target)
		return nil
	}
	p.places[target] = *pl
	for other, op := range p.places {
		if other == target {
			continue
		}
		if err := collide(pl, &op, other, mounts); err != nil {
			return err
		}
	}
	return nil
}

// collide compares the directory at pl with target other's at op. IDs on
// a filesystem that makes inode numbers up are not compared (after a
// remount another target's directory can get the number this one had):
// where the directories lie in their filesystems is.
func collide(pl, op *place, other string, mounts mountTable) error {
	untrusted := map[uint64]bool{}
	for _, p := range []*place{pl, op} {
		if p.inventedInodes {
			untrusted[p.chain[0].Dev] = true
		}
	}
	same := func(a, b DirID) bool { return a == b && !untrusted[a.Dev] }
	within := func(ids []DirID, id DirID) bool {
		return slices.ContainsFunc(ids, func(x DirID) bool { return same(x, id) })
	}
	switch {
	case same(op.chain[0], pl.chain[0]):
		return refused(nil, "the directory is also target %s's", other)
	case within(pl.chain[1:], op.chain[0]):
		return refused(nil, "the directory is inside target %s's", other)
	case within(op.chain[1:], pl.chain[0]):
		return refused(nil, "the directory contains target %s's", other)
	}
	// Where the other directory was at its last scan, and where this scan's
	// reading of the mounts puts its path now: a mount that appeared on it
	// since is seen before the other target is scanned again (its prune
	// would otherwise delete the other's run as one of its checkpoints).
	type seen struct {
		loc Location
		by  string // how the other's location is known, for the message
	}
	locs := []seen{{op.loc, ""}}
	if e, ok := mounts.at(op.path); ok && op.path != "" {
		if now := (Location{Dev: e.dev, Path: e.inFS(op.path)}); now != op.loc {
			locs = append(locs, seen{now, fmt.Sprintf(" by the mount at %s", e.mountpoint)})
		}
	}
	for _, o := range locs {
		var how string
		switch in, around := pl.loc.Within(o.loc), o.loc.Within(pl.loc); {
		case in && around:
			how = "is also"
		case in:
			how = "is inside"
		case around:
			how = "contains"
		default:
			continue
		}
		return refused(nil, "the directory %s target %s's through a bind mount (on device %d:%d this one is %s, %s's is %s%s)",
			how, other, unix.Major(pl.loc.Dev), unix.Minor(pl.loc.Dev), pl.loc.Path, other, o.loc.Path, o.by)
	}
	return nil
}

// Forget drops the directories of every target not in keep (a reload
// removed or replaced it).
func (p *Peers) Forget(keep map[string]bool) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for name := range p.places {
		if !keep[name] {
			delete(p.places, name)
		}
	}
}

// Mount is the filesystem a directory lies on, as mountinfo names it.
type Mount struct {
	Mountpoint string
	Source     string
	FSType     string
	// Options are the filesystem's own mount options (super options).
	Options string
}

// Mount names the filesystem the opened directory lies on: the mount the
// descriptor was opened through (statx's mount ID, Linux 5.8), else the
// mount of its device over its path. It reads the mount table, never the
// directory's filesystem beyond one statx of the descriptor.
func (d *Dir) Mount() (Mount, error) {
	return mountOf(d.fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, d.path)
}

// MountAt names the filesystem path (symlinks followed) lies on, as
// Dir.Mount does.
func MountAt(path string) (Mount, error) {
	return mountOf(unix.AT_FDCWD, path, 0, path)
}

func mountOf(dirfd int, name string, flags int, path string) (Mount, error) {
	var stx unix.Statx_t
	if err := unix.Statx(dirfd, name, flags, unix.STATX_MNT_ID, &stx); err != nil {
		return Mount{}, &os.PathError{Op: "statx", Path: path, Err: err}
	}
	mounts, err := readMounts(mountinfoFile)
	if err != nil {
		return Mount{}, fmt.Errorf("mount of %s: %w", path, err)
	}
	m, ok := mount{}, false
	if stx.Mask&unix.STATX_MNT_ID != 0 {
		m, ok = mounts.byID(stx.Mnt_id)
	}
	dev := unix.Mkdev(stx.Dev_major, stx.Dev_minor)
	if !ok {
		// No mount IDs (Linux before 5.8): the mount of the device over
		// the path, as the kernel names it.
		real := path
		if dirfd != unix.AT_FDCWD {
			real, _ = os.Readlink(fmt.Sprintf("/proc/self/fd/%d", dirfd))
		} else if r, err := filepath.EvalSymlinks(path); err == nil {
			real, _ = filepath.Abs(r)
		}
		m, ok = mounts.of(dev, real)
	}
	if !ok {
		return Mount{}, fmt.Errorf("mount of %s: no mount of device %d:%d in %s", path, unix.Major(dev), unix.Minor(dev), mountinfoFile)
	}
	return Mount{Mountpoint: m.mountpoint, Source: m.source, FSType: m.fstype, Options: m.options}, nil
}
