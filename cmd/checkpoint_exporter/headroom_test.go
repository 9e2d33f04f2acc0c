package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// postWebhook posts body to the webhook with a bearer token and returns the
// status code.
func postWebhook(t *testing.T, base, token, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/webhook", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// postAlert posts a firing alert for target and returns the status code.
func postAlert(t *testing.T, base, token, target string) int {
	t.Helper()
	return postWebhook(t, base, token, fmt.Sprintf(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"CheckpointDiskFilling","target":%q}}]}`, target))
}

// writeKeras writes n Keras checkpoints of 1 MiB, checkpoint_step_100 to
// checkpoint_step_{n*100}.keras, the first modified at first and each next
// one gap later.
func writeKeras(t *testing.T, dir string, n int, first time.Time, gap time.Duration) {
	t.Helper()
	for i := 1; i <= n; i++ {
		f := filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", i*100))
		if err := os.WriteFile(f, make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := first.Add(time.Duration(i) * gap)
		if err := os.Chtimes(f, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
}

// Checkpoints copied or extracted together have mtimes milliseconds apart.
// Their "save interval" is not a write rate: one alert at 31% usage, far
// below the low watermark, must not delete them to make room for a rate the
// disk never saw (before the fix it deleted 17 of 20).
func TestCopiedCheckpointsDoNotInflateHeadroom(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "models")
	testenv.MountTmpfs(t, dir, "64m")
	writeKeras(t, dir, 20, time.Now().Add(-time.Hour), time.Millisecond)
	token := filepath.Join(root, "token")
	os.WriteFile(token, []byte("s3cret\n"), 0o600)
	cfg := filepath.Join(root, "c.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("targets:\n  - name: copied\n    path: %s\n    prune: {execute: true, headroom: 10m}\n", dir)), 0o644)
	url, logs := serve(t, "--config.file="+cfg, "--webhook.token-file="+token)
	scrapeUntil(t, url+"/metrics", `checkpoint_dir_checkpoints{target="copied"} 20`)
	if code := postAlert(t, url, "s3cret", "copied"); code != http.StatusOK {
		t.Fatalf("webhook answered %d; logs:\n%s", code, logs)
	}
	left, err := filepath.Glob(filepath.Join(dir, "checkpoint_step_*.keras"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 20 {
		t.Errorf("%d of 20 checkpoints left after one alert at 31%% usage; logs:\n%s", len(left), logs)
	}
}
