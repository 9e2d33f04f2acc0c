package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dial opens a raw loopback connection to the exporter at base.
func dial(t *testing.T, base string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reports whether the server closes c within d, reading (and
// discarding) whatever it answers first.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// slowBody starts a chunked webhook POST with the given token and sends one
// chunk; the rest of the body never comes.
func slowBody(t *testing.T, c net.Conn, token string) {
	t.Helper()
	_, err := fmt.Fprintf(c, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"ver\r\n", token)
	if err != nil {
		t.Fatal(err)
	}
}

func limitsSetup(t *testing.T) (cfg, token string) {
	t.Helper()
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "models"), 0o755)
	token = filepath.Join(root, "token")
	os.WriteFile(token, []byte("t0ken"), 0o600)
	cfg = filepath.Join(root, "c.yml")
	os.WriteFile(cfg, []byte("targets:\n  - name: a\n    path: models\n"), 0o644)
	return cfg, token
}

// Slow and idle clients never hold a connection for long: an unauthenticated
// slow body gets 401 and a closed connection at once, an authenticated one is
// cut off at the read timeout, idle keep-alives and stalled headers at theirs.
func TestSlowAndIdleConnectionsAreClosed(t *testing.T) {
	cfg, token := limitsSetup(t)
	// Default timeouts: the unauthenticated slow body must be closed
	// because it was refused, not because a timeout ran out.
	base, _ := serve(t, "--config.file="+cfg, "--webhook.token-file="+token)
	c := dial(t, base)
	slowBody(t, c, "wrong")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to an unauthenticated slow body: %v", err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated slow body: %d, want 401", resp.StatusCode)
	}
	if !closedWithin(c, 5*time.Second) {
		t.Error("connection of an unauthenticated slow body still open 5s after its 401")
	}

	base, logs := serve(t, "--config.file="+cfg, "--webhook.token-file="+token, "--web.read-timeout=1s", "--web.idle-timeout=1s")
	authed := dial(t, base)
	slowBody(t, authed, "t0ken")
	if !closedWithin(authed, 10*time.Second) {
		t.Error("authenticated slow body still open 10s after a 1s read timeout")
	}
	idle := dial(t, base)
	fmt.Fprintf(idle, "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(idle), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v", err)
	}
	if !closedWithin(idle, 10*time.Second) {
		t.Error("idle keep-alive connection still open 10s after a 1s idle timeout")
	}
	stalled := dial(t, base)
	fmt.Fprintf(stalled, "GET /metrics HTTP/1.1\r\nHost: x\r\n")
	if !closedWithin(stalled, 10*time.Second) {
		t.Error("connection with stalled headers still open 10s after a 1s read timeout")
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs)
	}
}

// Past --web.max-requests, requests are answered 503 at once, and served
// again as soon as the slots are free.
func TestMaxRequests(t *testing.T) {
	cfg, token := limitsSetup(t)
	base, logs := serve(t, "--config.file="+cfg, "--webhook.token-file="+token, "--web.max-requests=2")
	// answered reports whether the server answered or closed c.
	answered := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
	held := make([]net.Conn, 2)
	client := &http.Client{Timeout: 10 * time.Second}
	got503 := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !got503; time.Sleep(20 * time.Millisecond) {
		// Two webhook requests stay in flight, their bodies never
		// finished; one that lost a race with the probe and was refused
		// is replaced.
		for i, c := range held {
			if c == nil || answered(c) {
				if c != nil {
					c.Close()
				}
				held[i] = dial(t, base)
				slowBody(t, held[i], "t0ken")
			}
		}
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got503 = resp.StatusCode == http.StatusServiceUnavailable && !answered(held[0]) && !answered(held[1])
	}
	if !got503 {
		t.Fatalf("a third request while two are in flight was never answered 503; logs:\n%s", logs)
	}
	for _, c := range held {
		c.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d after the held requests ended", resp.StatusCode)
		}
	}
}

// With a small open-file limit, a crowd of connections that never send a
// request must not take the descriptors the scans need.
func TestConnectionFloodKeepsDescriptorsForScans(t *testing.T) {
	root := t.TempDir()
	models := filepath.Join(root, "models")
	for i := 1; i <= 5; i++ {
		os.MkdirAll(filepath.Join(models, fmt.Sprintf("checkpoint-%d", i), "sub", "deeper"), 0o755)
	}
	cfg := filepath.Join(root, "c.yml")
	os.WriteFile(cfg, []byte("scan_interval: 1s\ntargets:\n  - name: a\n    path: models\n"), 0o644)
	addr := freePort(t)
	cmd := exec.Command("sh", "-c", `ulimit -n 64 && exec "$0" "$@"`, binary, "--config.file="+cfg, "--web.listen-address="+addr, "--no-collector.idle-priority")
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + addr
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/metrics"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exporter did not come up; logs:\n%s", logs)
		}
	}
	scrapeUntil(t, base+"/metrics", `checkpoint_dir_checkpoints{target="a"} 5`)
	// 200 connections that send nothing, held for a few scans; new
	// checkpoints appear meanwhile.
	var conns []net.Conn
	for range 200 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	for i := 6; i <= 8; i++ {
		os.MkdirAll(filepath.Join(models, fmt.Sprintf("checkpoint-%d", i), "sub"), 0o755)
	}
	time.Sleep(4 * time.Second)
	for _, c := range conns {
		c.Close()
	}
	body := scrapeUntil(t, base+"/metrics", `checkpoint_dir_checkpoints{target="a"} 8`)
	if !strings.Contains(body, `checkpoint_scan_errors_total{target="a"} 0`) || strings.Contains(logs.String(), "too many open files") {
		t.Errorf("scans failed during the connection flood:\n%s", logs)
	}
}
