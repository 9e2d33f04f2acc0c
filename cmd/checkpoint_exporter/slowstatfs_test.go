package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/hangfs"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// A prune that arrives while the background scan waits in a slow statfs
// (a network filesystem taking its time) waits for that call and measures
// itself; it is not told that the filesystem hangs. The slow statfs is a
// FUSE filesystem held by the test for as long as it likes, well inside the
// statfs and hang timeouts.
func TestPruneWaitsForSlowBackgroundStatfs(t *testing.T) {
	needFUSE(t)
	root := t.TempDir()
	back := filepath.Join(root, "back")
	testenv.MountTmpfs(t, back, "64m")
	kerasTree(t, back, 20, 2<<20) // 40 MiB of 64: a prune to 39 MiB free deletes some
	h := hangfs.Mount(t, back, filepath.Join(root, "mnt"), hangfs.Options{})
	cfg := filepath.Join(root, "config.yml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`scan_interval: 200ms
targets:
  - name: slow
    path: %s
    keep_last: 3
    prune: {execute: true, high_watermark: 30MiB, low_watermark: 39MiB, headroom: 0s, attribute_cache: 0s}
`, h.Dir)), 0o644))
	p := startServe(t, "--config.file="+cfg, "--webhook.allow-unauthenticated",
		"--collector.statfs-timeout=5m", "--collector.hang-timeout=5m")
	scrapeUntil(t, p.base+"/metrics", `checkpoint_dir_up{target="slow"} 1`)

	h.HangOn(hangfs.OpStatfs, 1) // the next background scan's statfs
	defer h.Release()
	h.WaitBlocked(t, 30*time.Second)
	type answer struct {
		code int
		res  map[string]string
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		code, res, err := sendAlert(p.base, &http.Client{Timeout: 2 * time.Minute}, "slow")
		done <- answer{code, res, err}
	}()
	// Hold the statfs a while after the prune arrived (it logs the request
	// before it measures), long enough for it to have given up at once.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.logs.String(), `msg="webhook request"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the webhook request was not logged; logs:\n%s", p.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case a := <-done:
		t.Fatalf("the prune answered while statfs was held: %d %v %v\nlogs:\n%s", a.code, a.res, a.err, p.logs.String())
	case <-time.After(300 * time.Millisecond):
	}
	h.Release()
	a := <-done
	if a.err != nil || a.code != http.StatusOK || a.res["slow"] == "error" {
		t.Fatalf("webhook after the slow statfs answered: %d %v %v\nlogs:\n%s", a.code, a.res, a.err, p.logs.String())
	}
	if left := len(checkpointsIn(t, back)); left >= 20 || left < 3 {
		t.Errorf("%d checkpoints left of 20: the prune did not run or broke keep_last", left)
	}
	if v := metricValue(t, p.base, "checkpoint_prune_runs_total", map[string]string{"target": "slow", "result": "error"}); v != 0 {
		t.Errorf("checkpoint_prune_runs_total{result=\"error\"} = %v", v)
	}
}
