// Package netfs mounts real network filesystems for tests, each over a local
// backing directory that plays the other node: sshfs through an sshd of the
// test's own on 127.0.0.1 (a throwaway host key and user key), and rclone
// mount of a local path. A file written into the backing directory is
// another client's write, seen by the mount only as its caches allow. The
// FUSE daemons are the test's children, so a test can kill one (kill -9
// mid-operation) and mount again.
//
// Missing root or /dev/fuse is reported with testenv.Missing (skipped on a
// developer's machine, failed under CI); a missing command fails the test
// naming its Debian package (testenv.Need).
package netfs

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// Mount is one mounted FUSE network filesystem.
type Mount struct {
	// Dir is the mount point; Backing the directory it shows.
	Dir, Backing string
	// FSType is the type mountinfo gives it (fuse.sshfs, fuse.rclone).
	FSType string

	start func() (*exec.Cmd, error)

	mu  sync.Mutex // guards cmd
	cmd *exec.Cmd
}

// logBuffer collects a process's output; safe to read while it runs.
type logBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// need checks what every mount needs: root and /dev/fuse (testenv.Missing),
// and the items of deps/debian.txt (testenv.Need fails naming the package).
func need(t testing.TB, items ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to mount FUSE filesystems")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Missing(t, "needs /dev/fuse")
	}
	for _, item := range items {
		testenv.Need(t, item)
	}
}

// SSHFS mounts backing on mountpoint (created if needed) with sshfs, with
// options added to the ones that reach the test's sshd
// ("cache=yes,attr_timeout=60"; "" for sshfs's defaults). It starts the
// sshd; both go away when the test ends.
func SSHFS(t testing.TB, backing, mountpoint, options string) *Mount {
	t.Helper()
	need(t, "sshfs", "fusermount3", "ssh", "ssh-keygen", "/usr/sbin/sshd")
	sshd := "/usr/sbin/sshd"
	// Not t.TempDir: its name comes from the test's, and a comma in the
	// key's path would split sshfs's -o list.
	dir, err := os.MkdirTemp("", "netfs-ssh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, key := range []string{"host", "user"} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, key)).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	// sshd refuses to start without its privilege separation directory,
	// which the package's service unit usually makes.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cfg := filepath.Join(dir, "sshd_config")
	write(t, cfg, fmt.Sprintf(`ListenAddress 127.0.0.1
Port %s
HostKey %s
AuthorizedKeysFile %s
PermitRootLogin yes
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile none
Subsystem sftp internal-sftp
`, port, filepath.Join(dir, "host"), filepath.Join(dir, "user.pub")))
	srv := exec.Command(sshd, "-D", "-e", "-f", cfg)
	srvLog := &logBuffer{}
	srv.Stdout, srv.Stderr = srvLog, srvLog
	if err := srv.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	waitListening(t, "127.0.0.1:"+port, srvLog)

	opts := fmt.Sprintf("IdentityFile=%s,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,BatchMode=yes,port=%s",
		filepath.Join(dir, "user"), port)
	if options != "" {
		opts += "," + options
	}
	m := &Mount{Dir: mountpoint, Backing: backing, FSType: "fuse.sshfs"}
	m.start = func() (*exec.Cmd, error) {
		// -f: the daemon stays the test's child, to be killed by PID.
		return exec.Command("sshfs", "-f", "-o", opts, "root@127.0.0.1:"+backing, mountpoint), nil
	}
	m.mount(t)
	return m
}

// Rclone mounts backing on mountpoint (created if needed) with rclone mount
// of the local path, no configuration file, a cache directory of the
// test's own, and args ("--vfs-cache-mode", "writes", "--dir-cache-time",
// "10s").
func Rclone(t testing.TB, backing, mountpoint string, args ...string) *Mount {
	t.Helper()
	need(t, "rclone", "fusermount3")
	cache := t.TempDir()
	m := &Mount{Dir: mountpoint, Backing: backing, FSType: "fuse.rclone"}
	m.start = func() (*exec.Cmd, error) {
		a := append([]string{"mount", backing, mountpoint, "--config", "/dev/null", "--cache-dir", cache}, args...)
		return exec.Command("rclone", a...), nil
	}
	m.mount(t)
	return m
}

// mount starts the daemon and waits until the mount is in place.
func (m *Mount) mount(t testing.TB) {
	t.Helper()
	if err := os.MkdirAll(m.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd, err := m.start()
	if err != nil {
		t.Fatal(err)
	}
	log := &logBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	m.mu.Lock()
	m.cmd = cmd
	m.mu.Unlock()
	t.Cleanup(func() {
		m.unmount()
		cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(30 * time.Second)
	for !mounted(m.Dir, m.FSType) {
		select {
		case <-done:
			t.Fatalf("%s exited before mounting %s: %s", m.FSType, m.Dir, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not mount %s: %s", m.FSType, m.Dir, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill kills the FUSE daemon with SIGKILL: the mount stays, every call on
// it fails (ENOTCONN) until Remount.
func (m *Mount) Kill(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	cmd := m.cmd
	m.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", m.FSType, err)
	}
}

// Remount unmounts what is at Dir (a dead daemon's mount too) and mounts
// again, as an operator does after the daemon died.
func (m *Mount) Remount(t testing.TB) {
	t.Helper()
	m.unmount()
	m.mount(t)
}

// PID is the FUSE daemon's process ID.
func (m *Mount) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd.Process.Pid
}

func (m *Mount) unmount() {
	if !mounted(m.Dir, m.FSType) {
		return
	}
	if exec.Command("fusermount3", "-u", m.Dir).Run() != nil {
		// Busy (a process of the test still in it): detach.
		exec.Command("fusermount3", "-uz", m.Dir).Run()
	}
}

// mounted reports whether a filesystem of type fstype is mounted on dir.
func mounted(dir, fstype string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, fl := range fields {
			if fl == "-" && i+1 < len(fields) && len(fields) > 4 && fields[4] == dir && fields[i+1] == fstype {
				return true
			}
		}
	}
	return false
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func waitListening(t testing.TB, addr string, log *logBuffer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd does not listen on %s: %v\n%s", addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
