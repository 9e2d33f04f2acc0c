//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/test/e2e/stack"
)

// A prune that fails answers 500 and the real Alertmanager retries the
// notification until the exporter can prune: here the target directory is
// missing when the alert arrives (its scan fails) and appears later. The
// repeat interval is an hour, so every later request is a retry of the one
// notification, not a repeat.
func TestPruneErrorIsRetriedByAlertmanager(t *testing.T) {
	requirements(t)
	bin := buildExporter(t)
	work := t.TempDir()
	ckpt := filepath.Join(work, "ckpt") // not there yet
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	timers := stack.DefaultTimers
	timers.GroupInterval, timers.RepeatInterval = 30*time.Second, time.Hour
	target := fmt.Sprintf("path: %s\nlayout: hf\nkeep_last: 2\nmin_age: 0s\n"+
		"prune: {execute: true, high_watermark: 900TiB, low_watermark: 1000TiB, headroom: 0s}\n", ckpt)
	st, err := stack.Start(ctx, stack.Options{WorkDir: work, Exporter: bin, RepoRoot: repoRoot, TargetConfig: target, Timers: timers})
	defer func() {
		st.Stop()
		if t.Failed() {
			for _, n := range []string{"exporter", "alertmanager"} {
				b, _ := os.ReadFile(filepath.Join(work, n+".log"))
				t.Logf("--- %s.log (tail) ---\n%s", n, tail(string(b), 30))
			}
		}
	}()
	if err != nil {
		t.Fatal(err)
	}

	// The alert the shipped rules would fire, straight into Alertmanager.
	alert := []map[string]any{{
		"labels": map[string]string{"alertname": "CheckpointDiskPruneNeeded", "prune": "true", "severity": "warning",
			"target": "train", "instance": "e2e"},
		"startsAt": time.Now().UTC().Format(time.RFC3339), "endsAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	}}
	body, _ := json.Marshal(alert)
	resp, err := http.Post(st.AlertmanagerURL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("posting the alert to Alertmanager: %d", resp.StatusCode)
	}

	requests := func(code string) float64 {
		exp, err := st.Scrape()
		if err != nil {
			t.Fatal(err)
		}
		return stack.MetricSum(exp, "checkpoint_webhook_requests_total", map[string]string{"code": code})
	}
	waitFor(t, 60*time.Second, "Alertmanager to send the notification again after a 500", func() bool { return requests("500") >= 2 })
	if got := requests("200"); got != 0 {
		t.Fatalf("%v requests answered 200 while the target directory is missing", got)
	}

	// The directory appears: the next retry prunes it to keep_last.
	base := time.Now().Add(-time.Hour)
	for _, s := range []int{100, 200, 300, 400} {
		d := filepath.Join(ckpt, fmt.Sprintf("checkpoint-%d", s))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "model.bin"), make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := base.Add(time.Duration(s) * time.Second)
		os.Chtimes(filepath.Join(d, "model.bin"), mt, mt)
		os.Chtimes(d, mt, mt)
	}
	waitFor(t, 60*time.Second, "a retry to prune once the directory is there", func() bool { return requests("200") >= 1 })
	left, err := filepath.Glob(filepath.Join(ckpt, "checkpoint-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 {
		t.Errorf("after the retried prune: %v, want the newest 2", left)
	}
	t.Logf("webhook answered 500 %v times, then 200: Alertmanager retried until the prune could run", requests("500"))
}
