package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// statusSetup writes two targets, train (execute, ten 8 KiB Keras
// checkpoints written a minute apart an hour ago) and eval (dry run), and a
// configuration whose watermarks any disk is past (used share above 2%), so
// an alert makes train's prune delete everything keep_last leaves. It
// returns the configuration file and the webhook token file.
func statusSetup(t *testing.T) (cfg, tokenFile, train string) {
	t.Helper()
	dir := t.TempDir()
	train, eval := filepath.Join(dir, "train"), filepath.Join(dir, "eval")
	for _, d := range []string{train, eval} {
		must(t, os.Mkdir(d, 0o755))
	}
	first := time.Now().Add(-time.Hour)
	for i := 1; i <= 10; i++ {
		for _, d := range []string{train, eval} {
			f := filepath.Join(d, fmt.Sprintf("checkpoint_step_%d.keras", i*100))
			must(t, os.WriteFile(f, make([]byte, 8192), 0o644))
			mt := first.Add(time.Duration(i) * time.Minute)
			must(t, os.Chtimes(f, mt, mt))
		}
	}
	cfg = filepath.Join(dir, "exporter.yml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`scan_interval: 200ms
targets:
  - name: train
    path: %s
    keep_last: 3
    min_age: 1s
    prune: {execute: true, high_watermark: 2%%, low_watermark: 1%%, headroom: 0s}
  - name: eval
    path: %s
    min_age: 1s
    prune: {high_watermark: 2%%, low_watermark: 1%%}
`, train, eval)), 0o644))
	tokenFile = filepath.Join(dir, "token")
	must(t, os.WriteFile(tokenFile, []byte("page-token\n"), 0o600))
	return cfg, tokenFile, train
}

// pruneAlert is an Alertmanager notification whose one alert asks to prune
// target.
func pruneAlert(target string) string {
	return fmt.Sprintf(`{"version":"4","status":"firing","receiver":"checkpoint-pruner","alerts":[{"status":"firing",
"labels":{"alertname":"CheckpointDiskPruneNeeded","target":%q,"severity":"warning","prune":"true"},"fingerprint":"5eed0f1a2b3c4d5e"}]}`, target)
}

// chromium runs Debian's chromium headless on url with args (--dump-dom,
// --screenshot=…) and returns its output and the URLs the page requested
// (from a net log: requests made for the page carry its site in their
// network isolation key; the browser's own background requests do not).
// Host names resolve to nothing but 127.0.0.1.
func chromium(t *testing.T, url string, args ...string) (string, []string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(t, "chromium is not installed (Debian package chromium; .ci/run installs it)")
	}
	dir := t.TempDir()
	netlog := filepath.Join(dir, "net.json")
	cmd := exec.Command(bin, append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--log-net-log=" + netlog, "--virtual-time-budget=5000", "--window-size=1280,1600"}, append(args, url)...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Dir = dir
	done := make(chan error, 1)
	must(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("chromium did not finish in 2 minutes:\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return stdout.String(), pageRequests(t, netlog, url)
}

// pageRequests reads a Chromium net log and returns the URLs of the
// requests made for pages of page's site.
func pageRequests(t *testing.T, netlog, page string) []string {
	t.Helper()
	data, err := os.ReadFile(netlog)
	must(t, err)
	var log struct {
		Constants struct {
			LogEventTypes map[string]int `json:"logEventTypes"`
		} `json:"constants"`
		Events []struct {
			Type   int `json:"type"`
			Params struct {
				URL string `json:"url"`
				NIK string `json:"network_isolation_key"`
			} `json:"params"`
		} `json:"events"`
	}
	// A log cut short (the browser ended before closing it) still has its
	// events; close the array and the object.
	if err := json.Unmarshal(data, &log); err != nil {
		trimmed := strings.TrimRight(strings.TrimSpace(string(data)), ",")
		if err := json.Unmarshal([]byte(trimmed+"]}"), &log); err != nil {
			t.Fatalf("net log: %v", err)
		}
	}
	start := log.Constants.LogEventTypes["URL_REQUEST_START_JOB"]
	site := regexp.MustCompile(`^(https?://[^:/]+)`).FindString(page)
	var out []string
	for _, e := range log.Events {
		if e.Type == start && e.Params.URL != "" && strings.HasPrefix(e.Params.NIK, site) {
			out = append(out, e.Params.URL)
		}
	}
	return out
}

// The real binary's page, loaded in a real browser: every target, a
// checkpoint with its status and reason, the next prune's preview, and, after
// an Alertmanager notification pruned, the run with the alert's name and what
// it deleted. The page asks nothing of any host but the exporter.
func TestStatusPageInChromium(t *testing.T) {
	cfg, tokenFile, train := statusSetup(t)
	hist := filepath.Join(t.TempDir(), "history.jsonl")
	base, logs := serve(t, "--config.file="+cfg, "--webhook.token-file="+tokenFile, "--prune.history-file="+hist)
	scrapeUntil(t, base+"/", `<td class="name">checkpoint_step_1000.keras</td>`)

	dom, requests := chromium(t, base+"/", "--dump-dom")
	for _, want := range []string{
		`data-refresh="on"`, // the script ran
		`id="t-train"`, `id="t-eval"`, train,
		`<td class="name">checkpoint_step_1000.keras</td>`, `<td class="status">keep</td><td>latest 3</td>`,
		`<td class="status">prunable</td><td>older than the newest 3</td>`,
		`A prune now would delete 7 checkpoints`, `<tr class="planned"><td class="name">checkpoint_step_100.keras</td>`,
		`This target is in dry run`,
		`No prune of this target yet.`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page's DOM lacks %s", want)
		}
	}
	checkOnlyExporter(t, base, requests)

	if code := postWebhook(t, base, "page-token", pruneAlert("train")); code != http.StatusOK {
		t.Fatalf("webhook answered %d; log:\n%s", code, logs)
	}
	dom, requests = chromium(t, base+"/", "--dump-dom")
	run := regexp.MustCompile(`(?s)<tr class="run" data-result="insufficient">.*?</tr>`).FindString(dom)
	for _, want := range []string{`webhook`, `<strong class="alertname">CheckpointDiskPruneNeeded</strong>`, `<code>5eed0f1a2b3c4d5e</code>`,
		`severity="warning"`, `<span class="verb">deleted</span> <span class="name">checkpoint_step_100.keras</span> · step 100 · 8.0 KiB`,
		`checkpoint_step_700.keras`} {
		if !strings.Contains(run, strings.ReplaceAll(want, `"`, "&quot;")) && !strings.Contains(run, want) {
			t.Errorf("the run on the page lacks %s:\n%s", want, run)
		}
	}
	checkOnlyExporter(t, base, requests)

	shot := filepath.Join(t.TempDir(), "page.png")
	_, requests = chromium(t, base+"/", "--screenshot="+shot, "--hide-scrollbars")
	checkOnlyExporter(t, base, requests)
	checkNotBlank(t, shot)
}

// checkOnlyExporter fails unless every request made for the page went to
// the exporter at base (and there was at least the page itself).
func checkOnlyExporter(t *testing.T, base string, requests []string) {
	t.Helper()
	if len(requests) == 0 {
		t.Error("the net log shows no request for the page at all")
	}
	for _, u := range requests {
		if !strings.HasPrefix(u, base+"/") {
			t.Errorf("the page requested %s, outside the exporter", u)
		}
	}
}

// checkNotBlank fails unless the PNG at path has a good deal of both ink
// and paper.
func checkNotBlank(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	colors := map[uint32]int{}
	dark := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[(r>>8)<<16|(g>>8)<<8|bl>>8]++
			if r+g+bl < 3*0x8000 {
				dark++
			}
		}
	}
	if b.Dx() < 800 || len(colors) < 50 || dark < 1000 {
		t.Errorf("screenshot looks blank: %v, %d colours, %d dark pixels", b, len(colors), dark)
	}
}

// A prune survives a SIGKILL right after it was reported: the restarted
// exporter's page and the history command show it; a last line cut short
// is skipped with a warning.
func TestHistorySurvivesKill9(t *testing.T) {
	cfg, tokenFile, _ := statusSetup(t)
	hist := filepath.Join(t.TempDir(), "history.jsonl")
	args := []string{"--config.file=" + cfg, "--webhook.token-file=" + tokenFile, "--prune.history-file=" + hist}
	p := startServe(t, args...)
	scrapeUntil(t, p.base+"/", `<td class="name">checkpoint_step_1000.keras</td>`)
	if code := postWebhook(t, p.base, "page-token", pruneAlert("train")); code != http.StatusOK {
		t.Fatalf("webhook answered %d; log:\n%s", code, p.logs)
	}
	must(t, p.cmd.Process.Signal(syscall.SIGKILL))
	p.cmd.Wait()
	// A crash in the middle of the next record leaves half a line.
	f, err := os.OpenFile(hist, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	f.WriteString(`{"time":"2026-01-01T00:00:00Z","kind":"run","run":"x-1","tar`)
	f.Close()

	p = startServe(t, args...)
	page := get(t, p.base+"/")
	for _, want := range []string{`<strong class="alertname">CheckpointDiskPruneNeeded</strong>`,
		`<span class="verb">deleted</span> <span class="name">checkpoint_step_100.keras</span>`, `Deletion history: ` + hist} {
		if !strings.Contains(page, want) {
			t.Errorf("after the restart the page lacks %s", want)
		}
	}
	if logs := p.logs.String(); !strings.Contains(logs, "skipping a line that cannot be read") || !strings.Contains(logs, "last line") {
		t.Errorf("no warning about the cut line:\n%s", logs)
	}

	out, stderr, code := runCLI(t, "history", "--prune.history-file="+hist, "--target=train", "--since=24h")
	if code != 0 {
		t.Fatalf("history: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{`TIME +TARGET +TRIGGER +RESULT`, `train +webhook \(CheckpointDiskPruneNeeded\) +insufficient +7 deleted, freed 56.0KiB`,
		`deleted +checkpoint_step_100.keras +100 +8.0KiB +oldest, to free space`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("history lacks %s:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "last line") {
		t.Errorf("history gave no warning about the cut line: %q", stderr)
	}
	js, _, code := runCLI(t, "history", "--prune.history-file="+hist, "--output=json")
	var runs []struct {
		Target  string `json:"target"`
		Trigger string `json:"trigger"`
		Result  string `json:"result"`
		Alerts  []struct {
			Name        string            `json:"name"`
			Fingerprint string            `json:"fingerprint"`
			Labels      map[string]string `json:"labels"`
		} `json:"alerts"`
		Deleted []struct {
			Name  string `json:"name"`
			Step  int64  `json:"step"`
			Bytes int64  `json:"bytes"`
		} `json:"deleted"`
	}
	if err := json.Unmarshal([]byte(js), &runs); err != nil || code != 0 {
		t.Fatalf("history --output=json: exit %d, %v\n%s", code, err, js)
	}
	if len(runs) != 1 || runs[0].Alerts[0].Fingerprint != "5eed0f1a2b3c4d5e" || runs[0].Alerts[0].Labels["severity"] != "warning" ||
		len(runs[0].Deleted) != 7 || runs[0].Deleted[0].Step != 100 {
		t.Errorf("history --output=json: %+v", runs)
	}
	if out, _, _ := runCLI(t, "history", "--prune.history-file="+hist, "--target=eval"); !strings.Contains(out, "no prunes recorded") {
		t.Errorf("history --target=eval:\n%s", out)
	}
	if _, stderr, code := runCLI(t, "history"); code != exitUsage || !strings.Contains(stderr, "--prune.history-file") {
		t.Errorf("history without a file: exit %d, %q", code, stderr)
	}
}
