package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// postLabels posts one firing alert with these labels and returns the status
// code and the decoded answer.
func postLabels(t *testing.T, base, token string, labels map[string]string) (int, map[string]any) {
	t.Helper()
	alert, _ := json.Marshal(map[string]any{"status": "firing", "labels": labels})
	body := `{"version":"4","status":"firing","receiver":"checkpoint-pruner","alerts":[` + string(alert) + `]}`
	req, _ := http.NewRequest(http.MethodPost, base+"/webhook", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, answer
}

// Inside Kubernetes: the exporter sees a hostPath volume (a bind mount of
// <node>/checkpoints) at another path, and node_exporter's
// NodeFilesystemAlmostOutOfSpace names the node's mount point and, relabelled
// by the operator, the node. With host_path and --webhook.match-label the
// alert for this node prunes; the same alert for another node does not.
func TestNodeExporterAlertThroughHostPath(t *testing.T) {
	root := t.TempDir()
	node := filepath.Join(root, "node")   // the node's disk, as node_exporter reports it
	volume := filepath.Join(root, "ckpt") // the container's view of <node>/checkpoints
	testenv.MountTmpfs(t, node, "16m")
	host := filepath.Join(node, "checkpoints")
	if err := os.Mkdir(host, 0o755); err != nil {
		t.Fatal(err)
	}
	writeKeras(t, host, 12, time.Now().Add(-time.Hour), time.Minute)
	if err := os.Mkdir(volume, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(host, volume, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(volume, unix.MNT_DETACH) })

	token := filepath.Join(root, "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(root, "c.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`targets:
  - name: llama
    path: %s
    host_path: %s
    keep_last: 3
    prune: {execute: true, high_watermark: 50%%, low_watermark: 40%%, headroom: 0s}
`, volume, host)), 0o644); err != nil {
		t.Fatal(err)
	}
	url, logs := serve(t, "--config.file="+cfg, "--webhook.token-file="+token, "--webhook.match-label=node=gpu01")
	metrics := scrapeUntil(t, url+"/metrics", `checkpoint_dir_checkpoints{target="llama"} 12`)
	if want := fmt.Sprintf(`checkpoint_filesystem_size_bytes{device="tmpfs",fstype="tmpfs",mountpoint=%q,target="llama"}`, node); !strings.Contains(metrics, want) {
		t.Fatalf("/metrics does not report the node's mount point %s (want %s):\n%s", node, want, metrics)
	}

	alert := map[string]string{
		"alertname": "NodeFilesystemAlmostOutOfSpace", "severity": "warning",
		"instance": "10.0.0.8:9100", "job": "node-exporter", "device": "tmpfs", "fstype": "tmpfs",
		"mountpoint": node, "node": "gpu02",
	}
	code, answer := postLabels(t, url, "s3cret", alert)
	if n := len(remaining(t, host)); code != http.StatusOK || n != 12 {
		t.Fatalf("alert for node gpu02: code %d, %d checkpoints left (want 200, all 12): %v\n%s", code, n, answer, logs)
	}
	if got := fmt.Sprint(answer["alerts"]); !strings.Contains(got, `label node="gpu02" is not this exporter's`) {
		t.Errorf("alert for node gpu02 not reported as another node's: %v", answer)
	}

	alert["node"] = "gpu01"
	code, answer = postLabels(t, url, "s3cret", alert)
	left := remaining(t, host)
	if code != http.StatusOK || len(left) >= 12 || len(left) < 3 {
		t.Fatalf("alert for node gpu01: code %d, left %v (want 200, some pruned, keep_last 3 kept): %v\n%s", code, left, answer, logs)
	}
	for _, keep := range []string{"checkpoint_step_1000.keras", "checkpoint_step_1100.keras", "checkpoint_step_1200.keras"} {
		if !strings.Contains(strings.Join(left, " "), keep) {
			t.Errorf("newest checkpoint %s was deleted; left %v", keep, left)
		}
	}
}
