package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

var binary string

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

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.Missing(t, "%s is not installed (.ci/run installs it)", name)
	}
	return p
}

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
	promtool := needTool(t, "promtool")
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

func TestScanTableAndJSON(t *testing.T) {
	dir := seedTree(t)
	out, stderr, code := runCLI(t, "scan", "--checkpoint.dir="+dir)
	if code != 0 {
		t.Fatalf("scan: %d %s", code, stderr)
	}
	for _, want := range []string{"checkpoint_step_25000.keras", "keep: latest 3", "prunable", "important_backup_15000.keras", `series "checkpoint_step_{step}.keras"`} {
		if !strings.Contains(out, want) {
			t.Errorf("scan output lacks %q", want)
		}
	}
	out, _, code = runCLI(t, "scan", "--checkpoint.dir="+dir, "--output=json")
	var reports []scanReport
	if err := json.Unmarshal([]byte(out), &reports); err != nil || code != 0 {
		t.Fatalf("json: %v %d", err, code)
	}
	r := reports[0]
	if len(r.Checkpoints) != 250 || r.Checkpoints[249].Status != "keep: latest 3" || r.Checkpoints[0].Status != "prunable" || len(r.Ignored) != 1 {
		t.Errorf("json report: %d checkpoints, last %+v, first %+v, ignored %v", len(r.Checkpoints), r.Checkpoints[249], r.Checkpoints[0], r.Ignored)
	}
}

// remaining lists dir without the pruner's own lock file.
func remaining(t *testing.T, dir string) []string {
	es, _ := os.ReadDir(dir)
	var out []string
	for _, e := range es {
		if e.Name() != pruner.LockFile {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// The cleanup_old_checkpoints.py replacement, on the operator guide's case.
func TestPruneSeedCase(t *testing.T) {
	dir := seedTree(t)
	out, stderr, code := runCLI(t, "prune", "--checkpoint.dir="+dir, "--keep=3")
	if code != 0 {
		t.Fatalf("preview: %d %s", code, stderr)
	}
	if n := strings.Count(out, "\ndelete "); n != 247 {
		t.Errorf("preview lists %d deletions, want 247", n)
	}
	if !strings.Contains(out, "would delete 247 checkpoints") || len(remaining(t, dir)) != 251 {
		t.Errorf("preview deleted something or did not say so:\n%s", out)
	}
	out, stderr, code = runCLI(t, "prune", "--checkpoint.dir="+dir, "--keep=3", "--execute")
	if code != 0 {
		t.Fatalf("execute: %d %s", code, stderr)
	}
	want := []string{"checkpoint_step_24800.keras", "checkpoint_step_24900.keras", "checkpoint_step_25000.keras", "important_backup_15000.keras"}
	if got := remaining(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
	if !strings.Contains(out, "deleted 247 checkpoints") {
		t.Errorf("output: %s", out)
	}
}

func TestPruneTwoProcessesAtOnce(t *testing.T) {
	dir := seedTree(t)
	var wg sync.WaitGroup
	outs := make([]string, 2)
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], _, codes[i] = runCLI(t, "prune", "--checkpoint.dir="+dir, "--keep=3", "--execute")
		}()
	}
	wg.Wait()
	total := 0
	for i := range 2 {
		if codes[i] != 0 {
			t.Errorf("process %d exited %d:\n%s", i, codes[i], outs[i])
		}
		var n int
		for _, line := range strings.Split(outs[i], "\n") {
			if _, err := fmt.Sscanf(line, "deleted %d checkpoints", &n); err == nil {
				total += n
			}
		}
	}
	if total != 247 {
		t.Errorf("the two processes deleted %d checkpoints together, want 247 (each once)", total)
	}
	if got := remaining(t, dir); len(got) != 4 || got[2] != "checkpoint_step_25000.keras" {
		t.Errorf("left %v", got)
	}
}

func TestPruneInsufficientExitCode(t *testing.T) {
	dir := seedTree(t)
	_, _, code := runCLI(t, "prune", "--checkpoint.dir="+dir, "--free-target=99.9%")
	if code != exitInsufficient {
		t.Errorf("unreachable free target: exit %d, want %d", code, exitInsufficient)
	}
	if _, _, code := runCLI(t, "prune", "--checkpoint.dir="+dir, "--free-target=lots"); code != exitUsage {
		t.Errorf("bad --free-target: exit %d, want %d", code, exitUsage)
	}
}

func TestPlanFromFlags(t *testing.T) {
	tests := []struct {
		args  []string
		files string
		bytes string
	}{
		{[]string{"--save-every=100", "--steps=25000", "--size=84MB"}, "250 files", "21.0 GB"},
		{[]string{"--save-every=500", "--keep=3"}, "3 files", "252.0 MB"},
		{[]string{"--save-every=1000", "--keep=2"}, "2 files", "168.0 MB"},
		// max_bytes caps the count: 1 GB holds 11 checkpoints of 84 MB.
		{[]string{"--save-every=100", "--max-bytes=1GB"}, "11 files", "924.0 MB"},
		{[]string{"--save-every=100", "--keep=5", "--max-bytes=1GB"}, "5 files", "420.0 MB"},
		{[]string{"--save-every=100", "--max-bytes=10MB"}, "1 files", "84.0 MB"},
	}
	for _, tt := range tests {
		out, _, code := runCLI(t, append([]string{"plan"}, tt.args...)...)
		if code != 0 || !strings.Contains(out, tt.files+", "+tt.bytes) {
			t.Errorf("plan %v: code %d\n%s\nwant %s, %s", tt.args, code, out, tt.files, tt.bytes)
		}
	}
}

func TestPlanLive(t *testing.T) {
	dir := seedTree(t)
	out, _, code := runCLI(t, "plan", "--checkpoint.dir="+dir)
	if code != 0 || !strings.Contains(out, "more saves fit") || !strings.Contains(out, "one save every 1m40s") {
		t.Errorf("live plan: %d\n%s", code, out)
	}
}

func TestSimulateWritesCheckpoints(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "simulate", "--dir="+dir, "--layout=hf", "--size=64KiB", "--interval=10ms", "--saves=3").Output()
	if err != nil {
		t.Fatal(err)
	}
	var sum simulateSummary
	if err := json.Unmarshal(out, &sum); err != nil || sum.Saves != 3 || sum.Failed != 0 {
		t.Fatalf("summary %s: %v", out, err)
	}
	if got := remaining(t, dir); !reflect.DeepEqual(got, []string{"checkpoint-100", "checkpoint-200", "checkpoint-300"}) {
		t.Errorf("wrote %v", got)
	}
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
	for _, tt := range []struct {
		user, pass string
		want       int
	}{{"", "", 401}, {"alertmanager", "wrong", 401}, {"alertmanager", "am-secret", 200}} {
		req, _ := http.NewRequest(http.MethodPost, base+"/webhook", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tt.user != "" {
			req.SetBasicAuth(tt.user, tt.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("user %q: status %d, want %d", tt.user, resp.StatusCode, tt.want)
		}
	}
}
