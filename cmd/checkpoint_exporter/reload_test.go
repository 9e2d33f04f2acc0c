package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/test/e2e/stack"
)

// hfCheckpoints writes HF checkpoints checkpoint-<step>/sub/model.bin of
// 64 KiB, saved an hour ago plus a second per step.
func hfCheckpoints(t *testing.T, dir string, steps ...int) {
	t.Helper()
	base := time.Now().Add(-time.Hour)
	for _, s := range steps {
		ck := filepath.Join(dir, fmt.Sprintf("checkpoint-%d", s))
		must(t, os.MkdirAll(filepath.Join(ck, "sub"), 0o755))
		must(t, os.WriteFile(filepath.Join(ck, "sub", "model.bin"), make([]byte, 64<<10), 0o644))
		mt := base.Add(time.Duration(s) * time.Second)
		for _, p := range []string{filepath.Join(ck, "sub", "model.bin"), filepath.Join(ck, "sub"), ck} {
			must(t, os.Chtimes(p, mt, mt))
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// metricValue scrapes base and sums name's series matching labels.
func metricValue(t *testing.T, base, name string, labels map[string]string) float64 {
	t.Helper()
	return stack.MetricSum(get(t, base+"/metrics"), name, labels)
}

func waitMetric(t *testing.T, base, what string, cond func(exposition string) bool) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		body := get(t, base+"/metrics")
		if cond(body) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s:\n%s", what, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLog waits until the process has logged want (its stderr reaches the
// buffer through a pipe, after the HTTP answer).
func waitLog(t *testing.T, logs *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("never logged %q:\n%s", want, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func postReload(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Post(base+"/-/reload", "", nil)
	must(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// Reload through the real binary: SIGHUP and POST /-/reload change
// keep_last and add and remove targets; a broken file is refused and the old
// configuration keeps pruning; the reload metrics move; a target whose scan
// settings did not change keeps its scan cache (its next scan is
// incremental), one whose settings changed is scanned afresh.
func TestReload(t *testing.T) {
	root := t.TempDir()
	a, b, c := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c")
	hfCheckpoints(t, a, 100, 200, 300, 400, 500)
	hfCheckpoints(t, b, 100, 200)
	hfCheckpoints(t, c, 100, 200, 300)
	tokenFile := filepath.Join(root, "token")
	must(t, os.WriteFile(tokenFile, []byte("tok"), 0o600))
	cfgFile := filepath.Join(root, "config.yml")
	// A free-space goal no disk reaches: every prune deletes all that
	// keep_last lets it.
	target := func(name, dir string, keep int, minAge string) string {
		return fmt.Sprintf("  - name: %s\n    path: %s\n    layout: hf\n    keep_last: %d\n    min_age: %s\n"+
			"    prune: {execute: true, high_watermark: 900TiB, low_watermark: 1000TiB, headroom: 0s}\n", name, dir, keep, minAge)
	}
	writeCfg := func(targets ...string) {
		t.Helper()
		must(t, os.WriteFile(cfgFile, []byte("scan_interval: 200ms\ntargets:\n"+strings.Join(targets, "")), 0o644))
	}
	writeCfg(target("a", a, 4, "1s"), target("c", c, 3, "1s"))
	p := startServe(t, "--config.file="+cfgFile, "--webhook.token-file="+tokenFile)
	base := p.base
	waitMetric(t, base, "first scans", func(e string) bool {
		return stack.MetricSum(e, "checkpoint_dir_checkpoints", map[string]string{"target": "c"}) == 3 &&
			stack.MetricSum(e, "checkpoint_dir_checkpoints", map[string]string{"target": "a"}) == 5
	})
	if got := metricValue(t, base, "checkpoint_exporter_config_last_reload_successful", nil); got != 1 {
		t.Fatalf("reload_successful = %v at start, want 1", got)
	}
	stamp := metricValue(t, base, "checkpoint_exporter_config_last_reload_success_timestamp_seconds", nil)

	// keep_last 4: the first prune deletes the oldest of 5.
	if code := postAlert(t, base, "tok", "a"); code != http.StatusOK {
		t.Fatalf("webhook: %d", code)
	}
	if got := checkpointsIn(t, a); len(got) != 4 || got[0] != "checkpoint-200" {
		t.Fatalf("after a prune with keep_last 4: %v", got)
	}

	// Grow a settled checkpoint of c below its top level: an incremental scan
	// reuses the cached size, a full scan sees the growth.
	cBytes := metricValue(t, base, "checkpoint_dir_bytes", map[string]string{"target": "c"})
	f, err := os.OpenFile(filepath.Join(c, "checkpoint-100", "sub", "model.bin"), os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, err = f.Write(make([]byte, 1<<20))
	must(t, err)
	must(t, f.Close())

	// SIGHUP: keep_last 3 for a, b added, c unchanged.
	writeCfg(target("a", a, 3, "1s"), target("b", b, 1, "1s"), target("c", c, 3, "1s"))
	must(t, p.cmd.Process.Signal(syscall.SIGHUP))
	waitMetric(t, base, "the SIGHUP reload", func(e string) bool {
		return stack.MetricSum(e, "checkpoint_exporter_config_last_reload_success_timestamp_seconds", nil) > stamp &&
			stack.MetricSum(e, "checkpoint_dir_checkpoints", map[string]string{"target": "b"}) == 2
	})
	// c's next scans after the reload still report the cached size.
	scanned := metricValue(t, base, "checkpoint_scan_timestamp_seconds", map[string]string{"target": "c"})
	waitMetric(t, base, "two more scans of c", func(e string) bool {
		return stack.MetricSum(e, "checkpoint_scan_timestamp_seconds", map[string]string{"target": "c"}) > scanned+0.3
	})
	if got := metricValue(t, base, "checkpoint_dir_bytes", map[string]string{"target": "c"}); got != cBytes {
		t.Errorf("unchanged target c: %v bytes after the reload, want the cached %v (its scan cache was thrown away)", got, cBytes)
	}
	if code := postAlert(t, base, "tok", "a"); code != http.StatusOK {
		t.Fatalf("webhook: %d", code)
	}
	if got := checkpointsIn(t, a); len(got) != 3 || got[0] != "checkpoint-300" {
		t.Fatalf("after a prune with keep_last 3: %v", got)
	}
	if code := postAlert(t, base, "tok", "b"); code != http.StatusOK || len(checkpointsIn(t, b)) != 1 {
		t.Fatalf("added target b: code %d, left %v", code, checkpointsIn(t, b))
	}
	if got := metricValue(t, base, "checkpoint_prune_deleted_checkpoints_total", map[string]string{"target": "a"}); got != 2 {
		t.Errorf("a's deleted counter = %v, want 2 (kept across the reload)", got)
	}

	// A broken file is refused with start-up's message; the old
	// configuration keeps pruning.
	stamp = metricValue(t, base, "checkpoint_exporter_config_last_reload_success_timestamp_seconds", nil)
	writeCfg(target("a", a, 0, "1s"))
	if code := postReload(t, base); code != http.StatusInternalServerError {
		t.Fatalf("POST /-/reload of a broken file: %d, want 500", code)
	}
	waitLog(t, p.logs, "keep_last: must be at least 1")
	if got := metricValue(t, base, "checkpoint_exporter_config_last_reload_successful", nil); got != 0 {
		t.Errorf("reload_successful = %v after a refused reload, want 0", got)
	}
	if got := metricValue(t, base, "checkpoint_exporter_config_last_reload_success_timestamp_seconds", nil); got != stamp {
		t.Errorf("success timestamp moved on a refused reload")
	}
	hfCheckpoints(t, a, 600)
	if code := postAlert(t, base, "tok", "a"); code != http.StatusOK {
		t.Fatalf("webhook: %d", code)
	}
	if got := checkpointsIn(t, a); !slices.Equal(got, []string{"checkpoint-400", "checkpoint-500", "checkpoint-600"}) {
		t.Fatalf("old configuration (keep_last 3) did not keep pruning: %v", got)
	}

	// POST /-/reload of a good file: keep_last 2, b removed, c's min_age
	// changed (a new scanner: a full scan finds c's growth).
	writeCfg(target("a", a, 2, "1s"), target("c", c, 3, "2s"))
	if code := postReload(t, base); code != http.StatusOK {
		t.Fatalf("POST /-/reload: %d", code)
	}
	body := waitMetric(t, base, "c rescanned afresh", func(e string) bool {
		return stack.MetricSum(e, "checkpoint_dir_bytes", map[string]string{"target": "c"}) >= cBytes+1<<20
	})
	if strings.Contains(body, `target="b"`) {
		t.Errorf("removed target b still has series:\n%s", body)
	}
	if got := stack.MetricSum(body, "checkpoint_exporter_config_last_reload_successful", nil); got != 1 {
		t.Errorf("reload_successful = %v, want 1", got)
	}
	if code := postAlert(t, base, "tok", "a"); code != http.StatusOK {
		t.Fatalf("webhook: %d", code)
	}
	if got := checkpointsIn(t, a); !slices.Equal(got, []string{"checkpoint-500", "checkpoint-600"}) {
		t.Fatalf("after POST /-/reload with keep_last 2: %v", got)
	}
}
