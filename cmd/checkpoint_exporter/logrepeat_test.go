package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// The autonomous guard in dry run at a short scan interval repeats the same
// lines at every scan: each is written once a minute at most. A scan
// interval below the minimum is refused at start.
func TestRepeatedLogLinesAreLimited(t *testing.T) {
	root := t.TempDir()
	cfg := filepath.Join(root, "fast.yml")
	os.WriteFile(cfg, []byte("scan_interval: 1ms\ntargets:\n  - name: a\n    path: "+root+"\n"), 0o644)
	if _, stderr, code := runCLIWithin(t, 20*time.Second, "--config.file="+cfg, "--web.listen-address="+freePort(t)); code == 0 || !strings.Contains(stderr, "scan_interval: 1ms is below the minimum 100ms") {
		t.Errorf("scan_interval 1ms: code %d, stderr %s", code, stderr)
	}

	dir := filepath.Join(root, "models")
	testenv.MountTmpfs(t, dir, "16m")
	writeKeras(t, dir, 14, time.Now().Add(-time.Hour), 0)
	os.WriteFile(cfg, []byte("scan_interval: 100ms\ntargets:\n  - name: a\n    path: models\n"), 0o644)
	base, logs := serve(t, "--config.file="+cfg, "--pruner.autonomous")
	runs := regexp.MustCompile(`checkpoint_prune_runs_total\{result="dry_run",target="a",trigger="autonomous"\} (\d+)`)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		m := runs.FindStringSubmatch(get(t, base+"/metrics"))
		if m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= 10 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 10 autonomous dry runs in 30s:\n%s", logs)
		}
	}
	for _, line := range [][]string{
		{`msg="high watermark reached`},
		{`msg="dry run: would delete checkpoint"`, `name=checkpoint_step_100.keras`},
	} {
		n := 0
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, line[0]) && strings.Contains(l, line[len(line)-1]) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s written %d times over 10 or more identical runs, want once", line, n)
		}
	}
}
