package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// max_bytes through the real binary: the live plan shows it, and the server's
// autonomous guard prunes the oldest checkpoints until the target is under
// it, without an alert.
func TestMaxBytesPrunesThroughTheBinary(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "models")
	os.Mkdir(dir, 0o755)
	hfTree(t, dir, 10, 4) // 10 checkpoints of 4 files of 1 KiB: 16 KiB + the directories
	cfg := filepath.Join(t.TempDir(), "c.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`scan_interval: 100ms
targets:
  - name: m
    path: %s
    keep_last: 2
    max_bytes: 100KiB
    # Watermarks as free space that any test machine has: only max_bytes prunes.
    prune: {execute: true, high_watermark: 1MiB, low_watermark: 2MiB}
`, dir)), 0o644)
	out, _, code := runCLI(t, "plan", "--config.file="+cfg)
	if code != 0 || !strings.Contains(out, "max_bytes 100.0KiB") {
		t.Fatalf("plan: code %d\n%s", code, out)
	}
	before, _, _ := runCLI(t, "scan", "--config.file="+cfg, "--output=json")
	var snaps []struct{ Checkpoints []struct{ Bytes int64 } }
	if err := json.Unmarshal([]byte(before), &snaps); err != nil || len(snaps) != 1 || len(snaps[0].Checkpoints) != 10 {
		t.Fatalf("scan: %v\n%s", err, before)
	}
	snap := snaps[0]
	per := snap.Checkpoints[0].Bytes
	limit := int64(100 << 10)
	want := int(limit / per) // the newest that fit under max_bytes
	if want < 2 || want >= 10 {
		t.Fatalf("checkpoints of %d bytes: the test needs max_bytes to hold between 2 and 9 of them", per)
	}
	if !strings.Contains(out, "over max_bytes by") {
		t.Errorf("plan does not say the target is over max_bytes:\n%s", out)
	}

	base, logs := serve(t, "--config.file="+cfg, "--webhook.allow-unauthenticated", "--pruner.autonomous")
	body := scrapeUntil(t, base+"/metrics", fmt.Sprintf(`checkpoint_dir_checkpoints{target="m"} %d`, want))
	if !strings.Contains(body, `checkpoint_dir_max_bytes{target="m"} 102400`) {
		t.Errorf("no checkpoint_dir_max_bytes:\n%s", body)
	}
	got := checkpointsIn(t, dir)
	slices.Sort(got)
	if len(got) != want || !slices.Contains(got, "checkpoint-1000") || !slices.Contains(got, "checkpoint-900") {
		t.Errorf("left %v, want the newest %d", got, want)
	}
	if !strings.Contains(logs.String(), "over max_bytes") {
		t.Errorf("no log line says why:\n%s", logs.String())
	}
}
