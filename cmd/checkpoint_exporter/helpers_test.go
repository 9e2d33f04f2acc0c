package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "checkpoint_exporter-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "checkpoint_exporter")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runCLI runs the binary and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	r := runBinary(args...)
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.stdout, r.stderr, r.code
}

// cliRun is one run of the binary; err is set only if it could not run.
type cliRun struct {
	stdout, stderr string
	code           int
	err            error
}

// runBinary runs the binary; safe in any goroutine.
func runBinary(args ...string) cliRun {
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := cliRun{err: cmd.Run()}
	if ee, ok := r.err.(*exec.ExitError); ok {
		r.code, r.err = ee.ExitCode(), nil
	}
	r.stdout, r.stderr = stdout.String(), stderr.String()
	return r
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serve starts the exporter and waits until it answers. Its log is safe to
// read while it runs.
func serve(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	p := startServe(t, args...)
	return p.base, p.logs
}

// served is a running exporter.
type served struct {
	cmd  *exec.Cmd
	base string
	logs *syncBuffer
}

// startServe is serve, keeping the process (to signal it).
func startServe(t *testing.T, args ...string) *served {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(binary, append([]string{"--web.listen-address=" + addr}, args...)...)
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/metrics"); err == nil {
			resp.Body.Close()
			return &served{cmd: cmd, base: base, logs: logs}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("exporter did not come up; logs:\n%s", logs.String())
	return nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// scrapeUntil scrapes until the body contains want (the first scan runs in
// the background).
func scrapeUntil(t *testing.T, url, want string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		if body = get(t, url); strings.Contains(body, want) {
			return body
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never contained %q:\n%s", url, want, body)
	return ""
}

// seedTree writes the operator guide's directory: 250 Keras checkpoints and
// a backup renamed out of the series, all older than min_age.
func seedTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "models")
	os.MkdirAll(dir, 0o755)
	base := time.Now().Add(-48 * time.Hour)
	for s := 100; s <= 25000; s += 100 {
		p := filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s))
		os.WriteFile(p, make([]byte, 8192), 0o644)
		mt := base.Add(time.Duration(s) * time.Second)
		os.Chtimes(p, mt, mt)
	}
	p := filepath.Join(dir, "important_backup_15000.keras")
	os.WriteFile(p, make([]byte, 8192), 0o644)
	os.Chtimes(p, base, base)
	return dir
}
