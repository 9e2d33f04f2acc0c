package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// A target whose directory, mount point and checkpoint series are not valid
// UTF-8 is exported with the invalid bytes replaced; neither it nor the
// other target fails the scrape.
func TestNonUTF8NamesDoNotFailTheScrape(t *testing.T) {
	root := t.TempDir()
	bad := filepath.Join(root, "caf\xe9")
	testenv.MountTmpfs(t, bad, "16m")
	good := filepath.Join(root, "good")
	os.MkdirAll(good, 0o755)
	old := time.Now().Add(-time.Hour)
	for _, f := range []string{filepath.Join(bad, "mod\xe8le_1.keras"), filepath.Join(bad, "mod\xe8le_2.keras"), filepath.Join(good, "checkpoint_step_1.keras")} {
		if err := os.WriteFile(f, []byte("weights"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(f, old, old)
	}
	base, logs := serve(t, "--checkpoint.dir="+bad, "--checkpoint.dir="+good)
	// Every scrape must answer 200 (before the fix the first one panicked
	// and every later one hung): a client timeout turns a hang into a failure.
	client := &http.Client{Timeout: 5 * time.Second}
	var body string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			t.Fatalf("scrape: %v; logs:\n%s", err, logs)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("scrape answered %d; logs:\n%s", resp.StatusCode, logs)
		}
		if body = string(b); strings.Contains(body, `checkpoint_dir_checkpoints{target="good"} 1`) && strings.Contains(body, `target="caf_"`) {
			break
		}
	}
	for _, want := range []string{
		`checkpoint_dir_checkpoints{target="caf_"} 2`,
		"series=\"mod\uFFFDle_{step}.keras\"",
		`path="` + filepath.Join(root, "caf\uFFFD") + `"`,
		`mountpoint="` + filepath.Join(root, "caf\uFFFD") + `"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s\n%s", want, body)
		}
	}
}
