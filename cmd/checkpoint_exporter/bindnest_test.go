package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
	"github.com/checkpoint-exporter/checkpoint_exporter/test/e2e/stack"
)

// bindMount mounts src on dst (creating dst) until the test ends.
func bindMount(t *testing.T, src, dst string) {
	t.Helper()
	must(t, os.MkdirAll(dst, 0o755))
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount %s on %s: %v", src, dst, err)
	}
	t.Cleanup(func() { unmount(dst) })
}

// unmount unmounts dir, detaching it if it is busy (a process of the test
// still has it open); a dir no longer mounted is fine.
func unmount(dir string) {
	if unix.Unmount(dir, 0) != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
	}
}

// postAlertBody posts a firing alert for target with the bearer token and
// returns the status code and the answer.
func postAlertBody(t *testing.T, base, token, target string) (int, string) {
	t.Helper()
	body := fmt.Sprintf(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"CheckpointDiskFilling","target":%q}}]}`, target)
	req, err := http.NewRequest(http.MethodPost, base+"/webhook", strings.NewReader(body))
	must(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// bindNested writes the reported case: target a at x/a with checkpoints
// 100 to 900, and y/b, target b's directory, to become a bind mount of a's
// checkpoint-700 (neither the newest nor the oldest: a prune deletes it).
func bindNested(t *testing.T, root string) (a, b string) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to bind-mount")
	}
	a, b = filepath.Join(root, "x", "a"), filepath.Join(root, "y", "b")
	hfCheckpoints(t, a, 100, 200, 300, 400, 500, 600, 700, 800, 900)
	must(t, os.MkdirAll(b, 0o755))
	return a, b
}

// A target inside another through a bind mount of a subdirectory is
// refused like any nested target, naming both: by check-config, at start
// and at a reload, which leaves the running configuration in place.
func TestNestedThroughBindMountRefusedByConfig(t *testing.T) {
	root := t.TempDir()
	a, b := bindNested(t, root)
	bindMount(t, filepath.Join(a, "checkpoint-700"), b)
	nested := filepath.Join(root, "nested.yml")
	must(t, os.WriteFile(nested, []byte(fmt.Sprintf("scan_interval: 100ms\ntargets:\n  - {name: a, path: %s, layout: hf}\n  - {name: b, path: %s}\n", a, b)), 0o644))
	refusal := []string{"targets[1] (b).path", "inside target a's directory", "through a bind mount"}
	refused := func(out string) bool {
		for _, r := range refusal {
			if !strings.Contains(out, r) {
				return false
			}
		}
		return true
	}
	for _, args := range [][]string{
		{"check-config", "--config.file=" + nested},
		{"--config.file=" + nested, "--web.listen-address=" + freePort(t)},
		{"prune", "--config.file=" + nested, "--target=a", "--keep=1", "--execute"},
	} {
		_, stderr, code := runCLIWithin(t, 20*time.Second, args...)
		if code != exitError || !refused(stderr) {
			t.Errorf("%v: exit code %d, want %d, and a message with %q; stderr:\n%s", args, code, exitError, refusal, stderr)
		}
	}
	if got := checkpointsIn(t, a); len(got) != 9 {
		t.Errorf("a refused configuration deleted checkpoints: %v left", got)
	}

	// Running with a alone, a reload that adds b is refused, by SIGHUP and
	// by POST /-/reload; a keeps being scanned and b gets no series.
	cfg := filepath.Join(root, "c.yml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf("scan_interval: 100ms\ntargets:\n  - {name: a, path: %s, layout: hf}\n", a)), 0o644))
	p := startServe(t, "--config.file="+cfg)
	scrapeUntil(t, p.base+"/metrics", `checkpoint_dir_checkpoints{target="a"} 9`)
	nestedCfg, err := os.ReadFile(nested)
	must(t, err)
	must(t, os.WriteFile(cfg, nestedCfg, 0o644))
	must(t, p.cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, p.logs, "configuration reload refused")
	if !refused(p.logs.String()) {
		t.Errorf("SIGHUP: the refusal does not say %q:\n%s", refusal, p.logs.String())
	}
	if code := postReload(t, p.base); code != http.StatusInternalServerError {
		t.Errorf("POST /-/reload of the nested configuration: %d, want 500", code)
	}
	if got := metricValue(t, p.base, "checkpoint_exporter_config_last_reload_successful", nil); got != 0 {
		t.Errorf("reload_successful = %v after refused reloads, want 0", got)
	}
	scanned := metricValue(t, p.base, "checkpoint_scan_timestamp_seconds", map[string]string{"target": "a"})
	body := waitMetric(t, p.base, "a scanned again", func(e string) bool {
		return stack.MetricSum(e, "checkpoint_scan_timestamp_seconds", map[string]string{"target": "a"}) > scanned
	})
	if strings.Contains(body, `target="b"`) {
		t.Errorf("the refused target b has series:\n%s", body)
	}
}

// A bind mount that appears after start-up, on target b's directory, of a
// checkpoint of target a: from then on a prune of a is refused (it would
// delete b's whole run as one of a's checkpoints), even before b's next
// scan; b's next scan reports it down with the reason; the CLI refuses the
// configuration. Once the mount is gone, both come back and a prunes.
func TestBindMountAppearingAtRunTimeIsRefused(t *testing.T) {
	root := t.TempDir()
	a, b := bindNested(t, root)
	// b's own run, hidden while the mount is there.
	hfCheckpoints(t, b, 1, 2)
	token := filepath.Join(root, "token")
	must(t, os.WriteFile(token, []byte("tok"), 0o600))
	// An hour between background scans: the scans that matter here are the
	// prunes' own.
	cfg := filepath.Join(root, "c.yml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf("scan_interval: 1h\ntargets:\n"+
		"  - {name: a, path: %s, layout: hf, keep_last: 2, min_age: 1s, prune: {execute: true, high_watermark: 900TiB, low_watermark: 1000TiB, headroom: 0s}}\n"+
		"  - {name: b, path: %s, layout: hf, keep_last: 2, min_age: 1s}\n", a, b)), 0o644))
	p := startServe(t, "--config.file="+cfg, "--webhook.token-file="+token)
	scrapeUntil(t, p.base+"/metrics", `checkpoint_dir_checkpoints{target="a"} 9`)
	scrapeUntil(t, p.base+"/metrics", `checkpoint_dir_checkpoints{target="b"} 2`)

	bindMount(t, filepath.Join(a, "checkpoint-700"), b)
	// What b shows now: a's checkpoint-700, as b's run.
	precious := filepath.Join(b, "sub", "model.bin")
	if _, err := os.Stat(precious); err != nil {
		t.Fatal(err)
	}
	// b has not been scanned since: a's prune is refused by what a's own
	// scan reads of the mounts.
	if code, resp := postAlertBody(t, p.base, "tok", "a"); !strings.Contains(resp, `"result":"error"`) || !strings.Contains(resp, "through a bind mount") {
		t.Errorf("prune of a with b's directory inside it: %d %s, want result error through a bind mount", code, resp)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Fatalf("a's prune deleted b's run: %v", err)
	}
	if got := checkpointsIn(t, a); len(got) != 9 {
		t.Errorf("a refused prune deleted checkpoints: %v left", got)
	}
	// b's next scan (here a prune's) refuses b, names a and says why.
	if _, resp := postAlertBody(t, p.base, "tok", "b"); !strings.Contains(resp, `"result":"error"`) {
		t.Errorf("prune of b inside a: %s, want result error", resp)
	}
	scrapeUntil(t, p.base+"/metrics", `checkpoint_dir_up{target="b"} 0`)
	waitLog(t, p.logs, "inside target a's through a bind mount")
	// Now from b's own record too.
	if _, resp := postAlertBody(t, p.base, "tok", "a"); !strings.Contains(resp, `"result":"error"`) {
		t.Errorf("second prune of a: %s, want result error", resp)
	}
	// The CLI sees the mount in the configuration check.
	if _, stderr, code := runCLIWithin(t, 20*time.Second, "prune", "--config.file="+cfg, "--target=a", "--keep=1", "--execute"); code != exitError || !strings.Contains(stderr, "through a bind mount") {
		t.Errorf("CLI prune of a: exit code %d, stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Fatalf("b's run was deleted: %v", err)
	}
	if got := checkpointsIn(t, a); len(got) != 9 {
		t.Errorf("refused prunes deleted checkpoints: %v left", got)
	}

	// Without the mount both are targets again: b's own run is back, and a
	// prunes its own checkpoints, not b's.
	unmount(b)
	if _, resp := postAlertBody(t, p.base, "tok", "b"); !strings.Contains(resp, `"result":"dry_run"`) {
		t.Errorf("prune of b after the unmount: %s, want a dry run", resp)
	}
	scrapeUntil(t, p.base+"/metrics", `checkpoint_dir_up{target="b"} 1`)
	if code, resp := postAlertBody(t, p.base, "tok", "a"); code != http.StatusOK || !strings.Contains(resp, `"result":"`) || strings.Contains(resp, `"result":"error"`) {
		t.Errorf("prune of a after the unmount: %d %s", code, resp)
	}
	if got := checkpointsIn(t, a); !slices.Equal(got, []string{"checkpoint-800", "checkpoint-900"}) {
		t.Errorf("a after its prune: %v, want checkpoint-800 and 900 (keep_last 2)", got)
	}
	if got := checkpointsIn(t, b); !slices.Equal(got, []string{"checkpoint-1", "checkpoint-2"}) {
		t.Errorf("b after a's prune: %v", got)
	}
}
