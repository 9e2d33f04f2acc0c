package targetdir

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// FSStats describes the filesystem a target lives on.
type FSStats struct {
	Mountpoint string `json:"mountpoint"`
	Device     string `json:"device"`
	FSType     string `json:"fstype"`
	// SizeBytes is f_blocks*f_frsize, AvailBytes f_bavail*f_frsize (what an
	// unprivileged writer can still use), FreeBytes f_bfree*f_frsize.
	SizeBytes  uint64 `json:"size_bytes"`
	AvailBytes uint64 `json:"avail_bytes"`
	FreeBytes  uint64 `json:"free_bytes"`
	Files      uint64 `json:"files"`
	FilesFree  uint64 `json:"files_free"`
	ReadOnly   bool   `json:"readonly"`
	// Options are the filesystem's own mount options (mountinfo's super
	// options: "rw,vers=4.2,actimeo=30,..."), for what they say about
	// caching (see CachingOf). Empty when the mount is unknown.
	Options string `json:"-"`
	// Dev is the st_dev of the target directory; targets with equal Dev share
	// a filesystem.
	Dev uint64 `json:"-"`
	// Ino is the st_ino of the target directory: with Dev, which directory
	// was measured.
	Ino uint64 `json:"-"`
	// InFS is the measured path as the filesystem itself names it: the
	// mount's root (mountinfo's fourth field, not "/" for a bind mount of a
	// subdirectory) joined with the path below the mount point. Empty when
	// the mount is unknown.
	InFS string `json:"-"`
	// mounts is the mount table StatFS read; the scan places its directory
	// and the other targets' with it instead of reading it again, and drops
	// it before keeping the stats.
	mounts mountTable
}

// HostMountpoint is the mount point of the filesystem as another mount
// namespace sees it (the node, for a container), given the measured path's
// name there (hostPath): hostPath without InFS's components at its end. A
// container that bind-mounts /data/checkpoints of a disk mounted at /data
// sees mount point /checkpoints with root /checkpoints; node_exporter on the
// node reports /data. ok is false when hostPath does not end with InFS (the
// node mounts a subdirectory of the filesystem, or hostPath is wrong).
func (f FSStats) HostMountpoint(hostPath string) (mountpoint string, ok bool) {
	if f.InFS == "" || !filepath.IsAbs(hostPath) {
		return "", false
	}
	host := filepath.Clean(hostPath)
	if f.InFS == "/" {
		return host, true
	}
	// InFS starts with "/", so a suffix match ends at a component boundary.
	rest, found := strings.CutSuffix(host, f.InFS)
	if !found {
		return "", false
	}
	if rest == "" {
		return "/", true
	}
	return rest, true
}

// InodesAccounted reports whether the filesystem's inode figures mean
// anything. Filesystems that have no inode table report made-up ones:
// rclone mount reports 1e9 inodes with none free, s3fs and gcsfuse leave
// both 0 or equal (every inode free), tmpfs without nr_inodes reports 0.
// Exported as they are, a made-up "none free" fires an inode alert on a
// filesystem that cannot run out of inodes. A real filesystem out of inodes
// (a small tmpfs, an ext4 full of small files) has a total below a billion
// and some in use, and stays accounted.
func (f FSStats) InodesAccounted() bool {
	switch {
	case f.Files == 0, f.FilesFree >= f.Files:
		return false
	case f.FilesFree == 0 && f.Files >= madeUpInodes:
		return false
	}
	return true
}

// madeUpInodes is the total from which "no inode free" is taken for a
// made-up figure (rclone's is exactly 1e9). A filesystem with that many real
// inodes, every one in use, would hold a billion files: a full disk long
// before, which the space alerts report.
const madeUpInodes = 1_000_000_000

// UsedRatio is the share of the filesystem an unprivileged writer cannot use
// any more: 1 - avail/size. Watermarks and alert rules use the same formula.
func (f FSStats) UsedRatio() float64 {
	if f.SizeBytes == 0 {
		return 0
	}
	return 1 - float64(f.AvailBytes)/float64(f.SizeBytes)
}

// StatFS returns the filesystem stats of path, with its mount from
// /proc/self/mountinfo.
func StatFS(path string) (FSStats, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return FSStats{}, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return FSStats{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	frsize := uint64(sfs.Frsize)
	if frsize == 0 {
		frsize = uint64(sfs.Bsize)
	}
	fs := FSStats{
		SizeBytes:  sfs.Blocks * frsize,
		AvailBytes: sfs.Bavail * frsize,
		FreeBytes:  sfs.Bfree * frsize,
		Files:      sfs.Files,
		FilesFree:  sfs.Ffree,
		ReadOnly:   sfs.Flags&unix.ST_RDONLY != 0,
		Dev:        uint64(st.Dev),
		Ino:        uint64(st.Ino),
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		real = path
	}
	if abs, err := filepath.Abs(real); err == nil {
		real = abs
	}
	mounts, err := readMounts(mountinfoFile)
	if err != nil {
		return fs, nil // the stats hold without the mount's names
	}
	fs.mounts = mounts
	if m, ok := mounts.of(fs.Dev, real); ok {
		fs.Mountpoint, fs.Device, fs.FSType, fs.Options = m.mountpoint, m.source, m.fstype, m.options
		fs.InFS = m.inFS(real)
	} else if m, ok := mounts.first(fs.Dev); ok {
		// No mount of the device lies over the path as this process names
		// it: the labels still name the filesystem, but where the path is
		// in it is unknown.
		fs.Mountpoint, fs.Device, fs.FSType, fs.Options = m.mountpoint, m.source, m.fstype, m.options
	}
	return fs, nil
}

// mountinfoFile lists the mounts of this process's mount namespace.
const mountinfoFile = "/proc/self/mountinfo"

type mount struct {
	mountpoint, root, source, fstype string
	// options are the super options, the filesystem's own (the last field).
	options string
}

// over reports whether path (absolute, clean) is the mount point or below it.
func (m mount) over(path string) bool {
	return m.mountpoint == "/" || path == m.mountpoint || strings.HasPrefix(path, m.mountpoint+"/")
}

// inFS names path (over the mount) as the filesystem does: the mount's
// root joined with the path below the mount point.
func (m mount) inFS(path string) string {
	below := strings.TrimPrefix(strings.TrimPrefix(path, m.mountpoint), "/")
	return filepath.Join(m.root, below)
}

// mountEntry is one line of mountinfo: a mount, its ID (statx's
// stx_mnt_id) and its filesystem's device.
type mountEntry struct {
	id  uint64
	dev uint64
	mount
}

// mountTable is mountinfo read once, in its order: a mount made on top of
// another at the same mount point is listed after it.
type mountTable []mountEntry

func readMounts(mountinfo string) (mountTable, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMounts(f)
}

func parseMounts(r io.Reader) (mountTable, error) {
	var mt mountTable
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// ID parentID major:minor root mountpoint options [optional...] - fstype source superoptions
		var f [5]string
		rest := sc.Text()
		for i := range f {
			f[i], rest = nextField(rest)
		}
		var sep string
		for rest != "" && sep != "-" {
			sep, rest = nextField(rest)
		}
		fstype, rest := nextField(rest)
		source, rest := nextField(rest)
		options, _ := nextField(rest)
		dev, ok := parseDev(f[2])
		id, err := strconv.ParseUint(f[0], 10, 64)
		if sep != "-" || source == "" || !ok || err != nil {
			continue
		}
		mt = append(mt, mountEntry{id: id, dev: dev, mount: mount{mountpoint: unescapeMount(f[4]), root: unescapeMount(f[3]),
			fstype: fstype, source: unescapeMount(source), options: options}})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return mt, nil
}

// nextField splits a mountinfo line at its first run of spaces (the kernel
// escapes the spaces inside a field).
func nextField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " ")
	field, rest, _ = strings.Cut(s, " ")
	return field, rest
}

// parseDev reads mountinfo's "major:minor".
func parseDev(s string) (uint64, bool) {
	major, minor, ok := strings.Cut(s, ":")
	if !ok {
		return 0, false
	}
	ma, err1 := strconv.ParseUint(major, 10, 32)
	mi, err2 := strconv.ParseUint(minor, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return unix.Mkdev(uint32(ma), uint32(mi)), true
}

// of picks the mount of device dev that path (absolute, symlinks resolved)
// lies in: bind mounts repeat a device, so it is the one whose mount point
// is the longest prefix of path, and of two at one mount point the later,
// mounted on top. ok is false if no mount of dev lies over path.
func (mt mountTable) of(dev uint64, path string) (m mount, ok bool) {
	for _, e := range mt {
		if e.dev == dev && e.over(path) && (!ok || len(e.mountpoint) >= len(m.mountpoint)) {
			m, ok = e.mount, true
		}
	}
	return m, ok
}

// byID is the mount whose ID is id.
func (mt mountTable) byID(id uint64) (mount, bool) {
	for _, e := range mt {
		if e.id == id {
			return e.mount, true
		}
	}
	return mount{}, false
}

// first is the first mount of device dev, wherever it is.
func (mt mountTable) first(dev uint64) (mount, bool) {
	for _, e := range mt {
		if e.dev == dev {
			return e.mount, true
		}
	}
	return mount{}, false
}

// at is the mount path (absolute, symlinks resolved) lies in, whatever its
// device: the longest mount point over it, the later of two at one point.
// It reads nothing but the table, so it can place another target's path
// without touching that target's filesystem; a mount hidden under another
// one made later on a parent directory is not told apart.
func (mt mountTable) at(path string) (e mountEntry, ok bool) {
	for _, c := range mt {
		if c.over(path) && (!ok || len(c.mountpoint) >= len(e.mountpoint)) {
			e, ok = c, true
		}
	}
	return e, ok
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ErrHung marks a target whose filesystem stopped answering: a statfs that
// did not return in time, or a scan that made no progress for its hang
// timeout. Prunes of such a target fail at once instead of queueing behind
// the stuck call.
var ErrHung = errors.New("filesystem not answering (hung mount?)")

// ErrStatFSHung marks a statfs that did not return within its timeout, or
// that was not tried because an earlier one of the same target has not
// returned: a hung network mount is not asked again and again. It is an
// ErrHung.
var ErrStatFSHung = errors.New("statfs not answering (hung mount?)")

// Hung is the error of a system call (or a whole scan) that has not
// returned: What says which, For for how long. It is an ErrHung, and an
// ErrStatFSHung for a statfs.
type Hung struct {
	What string
	For  time.Duration
	// statfs marks a statfs's, an ErrStatFSHung.
	statfs bool
}

func (h *Hung) Error() string {
	return fmt.Sprintf("%s: no answer for %s (hung mount?)", h.What, h.For.Round(100*time.Millisecond))
}

// Is makes a Hung an ErrHung, and a statfs's an ErrStatFSHung.
func (h *Hung) Is(target error) bool {
	return target == ErrHung || (h.statfs && target == ErrStatFSHung)
}

// StatGuard runs one statfs of a target at a time, under a timeout, and
// remembers a call that hangs. A caller that finds a call in flight waits
// for it and then asks again itself: the answer it gets was measured after
// it asked (the pruner re-measures after each deletion and must not act on
// free space read before it). A call is taken for hung only once it has
// been in flight longer than the timeout: a caller waits for the call ahead
// of it as long as that call's own time allows, then gets a full timeout for
// its own, so a slow but answering filesystem is never reported hung.
type StatGuard struct {
	mu    sync.Mutex    // guards busy and since
	busy  chan struct{} // closed when the call in flight returns; nil if none
	since time.Time     // when the call in flight started
}

func (g *StatGuard) Stat(ctx context.Context, timeout time.Duration, fn func(string) (FSStats, error), path string) (FSStats, error) {
	g.mu.Lock()
	for g.busy != nil {
		// Wait for the call in flight until it answers or its own time is up.
		busy, left := g.busy, timeout-time.Since(g.since)
		g.mu.Unlock()
		if left <= 0 {
			return FSStats{}, &Hung{What: "statfs " + path, For: time.Since(g.since), statfs: true}
		}
		t := time.NewTimer(left)
		select {
		case <-busy:
			t.Stop()
		case <-t.C:
			return FSStats{}, &Hung{What: "statfs " + path, For: time.Since(g.since), statfs: true}
		case <-ctx.Done():
			t.Stop()
			return FSStats{}, fmt.Errorf("statfs %s: %w", path, ctx.Err())
		}
		g.mu.Lock()
	}
	busy := make(chan struct{})
	g.busy, g.since = busy, time.Now()
	g.mu.Unlock()

	type result struct {
		fs  FSStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		fs, err := fn(path)
		g.mu.Lock()
		g.busy = nil
		close(busy)
		g.mu.Unlock()
		done <- result{fs, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.fs, r.err
	case <-t.C:
		return FSStats{}, &Hung{What: "statfs " + path, For: timeout, statfs: true}
	case <-ctx.Done():
		return FSStats{}, fmt.Errorf("statfs %s: %w", path, ctx.Err())
	}
}
