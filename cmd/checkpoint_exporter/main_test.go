package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

var binary string

func TestVersion(t *testing.T) {
	out, _, code := runCLI(t, "--version")
	if code != 0 || !strings.Contains(out, "checkpoint_exporter, version") {
		t.Errorf("--version: code %d, %q", code, out)
	}
}

func TestServeExportsSeedCase(t *testing.T) {
	dir := seedTree(t)
	base, _ := serve(t, "--checkpoint.dir="+dir)
	body := scrapeUntil(t, base+"/metrics", `checkpoint_dir_up{target="models"} 1`)
	for _, want := range []string{
		`checkpoint_dir_checkpoints{target="models"} 250`,
		`checkpoint_dir_latest_step{target="models"} 25000`,
		`checkpoint_dir_oldest_step{target="models"} 100`,
		`checkpoint_dir_save_interval_seconds{target="models"} 100`,
		`checkpoint_exporter_build_info{`,
		`checkpoint_prune_runs_total{result="ok",target="models",trigger="webhook"} 0`,
		`checkpoint_filesystem_avail_bytes{device=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	var paths []string
	for s := 100; s <= 25000; s += 100 {
		paths = append(paths, filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s)))
	}
	if want := testenv.DuBytes(t, paths...); !strings.Contains(body, fmt.Sprintf(`checkpoint_dir_bytes{target="models"} %g`, float64(want))) {
		t.Errorf("checkpoint_dir_bytes does not match du -scB1 (%d)", want)
	}
	page := get(t, base+"/")
	if !strings.Contains(page, "models") || !strings.Contains(page, dir) || !strings.Contains(page, "/metrics") {
		t.Errorf("landing page does not list the target:\n%s", page)
	}

	// promtool lints the real exposition.
	promtool := testenv.Need(t, "promtool")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestServeMissingDirKeepsServing(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "not-yet")
	cfg := filepath.Join(root, "c.yml")
	os.WriteFile(cfg, []byte("scan_interval: 100ms\ntargets:\n  - name: later\n    path: not-yet\n"), 0o644)
	base, _ := serve(t, "--config.file="+cfg)
	scrapeUntil(t, base+"/metrics", `checkpoint_dir_up{target="later"} 0`)
	// The training job creates the directory later: the exporter picks it up.
	os.MkdirAll(filepath.Join(dir, "checkpoint-1"), 0o755)
	scrapeUntil(t, base+"/metrics", `checkpoint_dir_checkpoints{target="later"} 1`)
}

func TestBadConfigExitsBeforeListening(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yml")
	os.WriteFile(cfg, []byte("targets:\n  - name: a\n    path: /\n"), 0o644)
	addr := freePort(t)
	_, stderr, code := runCLI(t, "--config.file="+cfg, "--web.listen-address="+addr)
	if code == 0 || !strings.Contains(stderr, "targets[0] (a).path") || !strings.Contains(stderr, "root directory") {
		t.Errorf("code %d, stderr %s", code, stderr)
	}
}

func TestExecuteWithoutAuthIsRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("targets:\n  - name: a\n    path: %s\n    prune: {execute: true}\n", dir)), 0o644)
	_, stderr, code := runCLI(t, "--config.file="+cfg, "--web.listen-address="+freePort(t))
	if code == 0 || !strings.Contains(stderr, "no authentication") {
		t.Errorf("code %d, stderr %s", code, stderr)
	}
	// With a token file it starts.
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("t0ken"), 0o600)
	base, _ := serve(t, "--config.file="+cfg, "--webhook.token-file="+tok)
	scrapeUntil(t, base+"/metrics", `checkpoint_dir_up{target="a"} 1`)
}

func TestDisableExporterMetrics(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		flag string
		want bool
	}{{"", true}, {"--web.disable-exporter-metrics", false}} {
		args := []string{"--checkpoint.dir=" + dir}
		if tt.flag != "" {
			args = append(args, tt.flag)
		}
		base, _ := serve(t, args...)
		body := scrapeUntil(t, base+"/metrics", `checkpoint_dir_up{target=`)
		if got := strings.Contains(body, "go_goroutines") && strings.Contains(body, "process_cpu_seconds_total"); got != tt.want {
			t.Errorf("flags %q: go_* and process_* present = %v, want %v", tt.flag, got, tt.want)
		}
		if !strings.Contains(body, "checkpoint_exporter_build_info") {
			t.Errorf("flags %q: build_info missing", tt.flag)
		}
	}
}

// Basic auth from the exporter-toolkit web config is enough authentication
// for prune.execute, and the webhook then refuses requests without it.
func TestWebConfigBasicAuthGuardsWebhook(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("am-secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := filepath.Join(dir, "web.yml")
	os.WriteFile(webCfg, []byte(fmt.Sprintf("basic_auth_users:\n  alertmanager: %s\n", hash)), 0o600)
	ckpt := filepath.Join(dir, "models")
	os.Mkdir(ckpt, 0o755)
	cfg := filepath.Join(dir, "c.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("targets:\n  - name: a\n    path: %s\n    prune: {execute: true}\n", ckpt)), 0o644)
	base, _ := serve(t, "--config.file="+cfg, "--web.config.file="+webCfg)
	body := `{"version":"4","status":"resolved","alerts":[{"status":"resolved","labels":{"target":"a"}}]}`
	// do sends a request as user (none if "") and returns the status code.
	do := func(method, path, user, pass, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct {
		user, pass string
		want       int
	}{{"", "", 401}, {"alertmanager", "wrong", 401}, {"alertmanager", "am-secret", 200}} {
		if code := do(http.MethodPost, "/webhook", tt.user, tt.pass, body); code != tt.want {
			t.Errorf("user %q: status %d, want %d", tt.user, code, tt.want)
		}
		// The status page and its API are behind the same auth as /metrics.
		for _, path := range []string{"/", "/api/v1/status", "/metrics"} {
			if code := do(http.MethodGet, path, tt.user, tt.pass, ""); code != tt.want {
				t.Errorf("GET %s as %q: status %d, want %d", path, tt.user, code, tt.want)
			}
		}
	}
}
