package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/checkpoint-exporter/checkpoint_exporter/config"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/hangfs"
	"github.com/checkpoint-exporter/checkpoint_exporter/test/e2e/stack"
)

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /-/ready answers 503 while a target has not been scanned once and 200
// after; /-/healthy answers 200 all along. The slow target is a FUSE
// filesystem whose statfs blocks until the test releases it.
func TestReadyAfterFirstScan(t *testing.T) {
	needFUSE(t)
	root := t.TempDir()
	back := filepath.Join(root, "back")
	hfCheckpoints(t, back, 100, 200)
	h := hangfs.Mount(t, back, filepath.Join(root, "mnt"), hangfs.Options{})
	fast := filepath.Join(root, "fast")
	hfCheckpoints(t, fast, 100)
	cfg := filepath.Join(root, "config.yml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf("targets:\n  - {name: slow, path: %s}\n  - {name: fast, path: %s}\n", h.Dir, fast)), 0o644))

	h.HangOn(hangfs.OpStatfs, 1)
	defer h.Release()
	p := startServe(t, "--config.file="+cfg, "--collector.statfs-timeout=10m", "--collector.hang-timeout=10m")
	h.WaitBlocked(t, 30*time.Second) // the slow target's first scan is in statfs
	waitMetric(t, p.base, "the fast target scanned", func(e string) bool {
		return stack.MetricSum(e, "checkpoint_dir_checkpoints", map[string]string{"target": "fast"}) == 1
	})
	if code, body := getStatus(t, p.base+"/-/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "slow") || strings.Contains(body, "fast") {
		t.Errorf("/-/ready while slow's first scan runs: %d %q, want 503 naming slow only", code, body)
	}
	if code, _ := getStatus(t, p.base+"/-/healthy"); code != http.StatusOK {
		t.Errorf("/-/healthy: %d", code)
	}
	h.Release()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := getStatus(t, p.base+"/-/ready")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/-/ready still %d %q after the slow scan was released", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := metricValue(t, p.base, "checkpoint_dir_checkpoints", map[string]string{"target": "slow"}); got != 2 {
		t.Errorf("slow target reports %v checkpoints once ready, want 2", got)
	}
}

// The web config loses basic auth while an execute target exists and no
// token file is set: exporter-toolkit stops asking for credentials at once,
// so the webhook refuses to delete (503), says so in the log and in
// checkpoint_webhook_execute_unauthenticated (as soon as the file changes,
// without a request), and a reload is refused too.
func TestWebConfigLosesAuthWebhookRefuses(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("am-secret"), bcrypt.MinCost)
	must(t, err)
	webCfg := filepath.Join(dir, "web.yml")
	must(t, os.WriteFile(webCfg, []byte(fmt.Sprintf("basic_auth_users:\n  alertmanager: %s\n", hash)), 0o600))
	ckpt := filepath.Join(dir, "models")
	hfCheckpoints(t, ckpt, 100, 200, 300, 400)
	cfg := filepath.Join(dir, "c.yml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf("targets:\n  - name: a\n    path: %s\n    keep_last: 3\n"+
		"    prune: {execute: true, high_watermark: 900TiB, low_watermark: 1000TiB, headroom: 0s}\n", ckpt)), 0o644))
	p := startServe(t, "--config.file="+cfg, "--web.config.file="+webCfg)
	alert := func(user, pass string) int {
		t.Helper()
		body := `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"target":"a"}}]}`
		req, _ := http.NewRequest(http.MethodPost, p.base+"/webhook", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	scrape := func() float64 {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, p.base+"/metrics", nil)
		req.SetBasicAuth("alertmanager", "am-secret")
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return stack.MetricSum(string(b), "checkpoint_webhook_execute_unauthenticated", nil)
	}
	if scrape() != 0 {
		t.Fatal("unauthenticated reported while basic auth is configured")
	}
	if code := alert("alertmanager", "am-secret"); code != http.StatusOK || len(checkpointsIn(t, ckpt)) != 3 {
		t.Fatalf("authenticated prune: %d, left %v", code, checkpointsIn(t, ckpt))
	}

	must(t, os.WriteFile(webCfg, []byte("# basic auth removed\n"), 0o600))
	// The exporter watches the web config: the metric and the log follow the
	// edit before any webhook request.
	waitLog(t, p.logs, "the webhook refuses to prune")
	if got := scrape(); got != 1 {
		t.Errorf("checkpoint_webhook_execute_unauthenticated = %v before any request, want 1", got)
	}
	hfCheckpoints(t, ckpt, 500)
	if code := alert("", ""); code != http.StatusServiceUnavailable {
		t.Errorf("unauthenticated webhook with execute: %d, want 503", code)
	}
	if got := checkpointsIn(t, ckpt); len(got) != 4 {
		t.Errorf("the refused webhook deleted: %v left", got)
	}
	if got := scrape(); got != 1 {
		t.Errorf("checkpoint_webhook_execute_unauthenticated = %v, want 1", got)
	}
	if code := postReload(t, p.base); code != http.StatusInternalServerError {
		t.Errorf("reload without authentication: %d, want 500", code)
	}
}

// check-config gives start-up's verdict and message on every bad
// configuration of config/testdata/bad without the target directories
// existing; what only the disk can show (a path that is a file) passes.
func TestCheckConfig(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "testdata", "bad", "*.yml"))
	must(t, err)
	if len(files) < 10 {
		t.Fatalf("only %d bad configurations", len(files))
	}
	for _, src := range files {
		t.Run(filepath.Base(src), func(t *testing.T) {
			data, err := os.ReadFile(src)
			must(t, err)
			// Alone in a new directory: none of its target paths exist.
			f := filepath.Join(t.TempDir(), filepath.Base(src))
			must(t, os.WriteFile(f, data, 0o644))
			_, err = config.Parse(f)
			stdout, stderr, code := runCLI(t, "check-config", "--config.file="+f)
			if err == nil {
				if code != 0 || !strings.Contains(stdout, "valid") {
					t.Errorf("check-config of %s (valid without its directories): exit %d, %q %q", f, code, stdout, stderr)
				}
				return
			}
			if code != 1 || strings.TrimSpace(stderr) != err.Error() {
				t.Errorf("check-config: exit %d, %q; want 1 and %q", code, stderr, err.Error())
			}
			// Start-up refuses it with the same message.
			_, logs, code := runCLI(t, "--config.file="+f, "--log.format=json", "--web.listen-address=127.0.0.1:0")
			if code != 1 || startupError(t, logs) != err.Error() {
				t.Errorf("start-up: exit %d, logs %s; want the message %q", code, logs, err.Error())
			}
		})
	}
	// A path that is a file: only start-up, which looks, refuses it.
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "afile"), nil, 0o644))
	f := filepath.Join(dir, "c.yml")
	must(t, os.WriteFile(f, []byte("targets:\n  - {name: a, path: afile}\n"), 0o644))
	if _, _, code := runCLI(t, "check-config", "--config.file="+f); code != 0 {
		t.Errorf("check-config looked at the disk: exit %d", code)
	}
	if _, logs, code := runCLI(t, "--config.file="+f, "--log.format=json", "--web.listen-address=127.0.0.1:0"); code != 1 || !strings.Contains(startupError(t, logs), "not a directory") {
		t.Errorf("start-up accepted a path that is a file: exit %d %s", code, logs)
	}
	if _, _, code := runCLI(t, "check-config"); code != exitUsage {
		t.Errorf("check-config without --config.file: exit %d", code)
	}
}

// startupError is the err of the JSON log line that ends start-up.
func startupError(t *testing.T, logs string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]string
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "exiting" {
			return line["err"]
		}
	}
	return ""
}

// Every line of the process, ours and exporter-toolkit's, starts with ts,
// caller, level, msg in logfmt, and has exactly those keys among its first in
// JSON.
func TestOneLogFormat(t *testing.T) {
	dir := t.TempDir()
	for _, format := range []string{"logfmt", "json"} {
		t.Run(format, func(t *testing.T) {
			p := startServe(t, "--checkpoint.dir="+filepath.Join(dir, "missing"), "--log.format="+format)
			waitLog(t, p.logs, "Listening on") // exporter-toolkit's line
			waitLog(t, p.logs, "scan failed")  // ours
			lines := strings.Split(strings.TrimSpace(p.logs.String()), "\n")
			for _, line := range lines {
				keys := logKeys(t, format, line)
				if len(keys) < 4 {
					t.Errorf("line with keys %v: %s", keys, line)
					continue
				}
				want := []string{"ts", "caller", "level", "msg"}
				if format == "json" {
					// go-kit writes JSON keys sorted: the set is what counts.
					for _, k := range want {
						if !slices.Contains(keys, k) {
							t.Errorf("JSON line without %q: %s", k, line)
						}
					}
					if slices.Contains(keys, "time") {
						t.Errorf("JSON line with a second time key: %s", line)
					}
					continue
				}
				if strings.Join(keys[:4], ",") != strings.Join(want, ",") {
					t.Errorf("line starts %v, want %v: %s", keys[:4], want, line)
				}
			}
		})
	}
}

// logKeys returns a log line's keys in order (logfmt) or sorted (JSON).
func logKeys(t *testing.T, format, line string) []string {
	t.Helper()
	if format == "json" {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		return keys
	}
	var keys []string
	for rest := line; rest != ""; {
		k, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		keys = append(keys, strings.TrimSpace(k))
		// Skip the value: quoted or up to the next space.
		if strings.HasPrefix(after, `"`) {
			end := 1
			for end < len(after) && (after[end] != '"' || after[end-1] == '\\') {
				end++
			}
			after = after[min(end+1, len(after)):]
		} else if i := strings.IndexByte(after, ' '); i >= 0 {
			after = after[i:]
		} else {
			after = ""
		}
		rest = strings.TrimLeft(after, " ")
	}
	return keys
}
