package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// kerasContent writes Keras checkpoints with distinct contents, saved a
// minute apart two hours ago, and returns their contents by name.
func kerasContent(t *testing.T, dir string, steps ...int) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	base := time.Now().Add(-2 * time.Hour)
	for i, s := range steps {
		name := fmt.Sprintf("checkpoint_step_%d.keras", s)
		data := bytes.Repeat([]byte(name), 400+i)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		mt := base.Add(time.Duration(i) * time.Minute)
		os.Chtimes(p, mt, mt)
		out[name] = data
	}
	return out
}

func writeOffloadConfig(t *testing.T, dir, offload string, extra string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yml")
	body := fmt.Sprintf("scan_interval: 1s\ntargets:\n  - name: t\n    path: %s\n    keep_last: 2\n    min_age: 1m\n%s    offload: %s\n", dir, extra, offload)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// scanOffload runs scan --output=json and returns each checkpoint's status
// and offload state.
func scanOffload(t *testing.T, cfg string) (status, state map[string]string) {
	t.Helper()
	out, stderr, code := runCLI(t, "scan", "--config.file="+cfg, "--output=json")
	if code != 0 {
		t.Fatalf("scan exit %d: %s", code, stderr)
	}
	var reports []scanReport
	if err := json.Unmarshal([]byte(out), &reports); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	status, state = map[string]string{}, map[string]string{}
	for _, c := range reports[0].Checkpoints {
		status[c.Name] = c.Status
		if c.Offload == nil {
			t.Fatalf("scan --output=json has no offload state for %s", c.Name)
		}
		state[c.Name] = c.Offload.State
	}
	return status, state
}

// Issue #16 with Debian's rclone: serve copies every settled checkpoint to a
// local directory remote ahead of any prune; after a restart, prune deletes
// only what the state file confirms after re-checking each checkpoint, so a
// checkpoint rewritten in place since its copy is kept; every deleted
// checkpoint's copy matches byte for byte.
func TestOffloadThenPruneAcrossRestart(t *testing.T) {
	testenv.Need(t, "rclone")
	dir, remote := filepath.Join(t.TempDir(), "models"), t.TempDir()
	os.MkdirAll(dir, 0o755)
	contents := kerasContent(t, dir, 100, 200, 300, 400, 500, 600)
	cfg := writeOffloadConfig(t, dir, fmt.Sprintf(`{command: [rclone, copyto, --config, /dev/null, "{path}", "%s/{target}/{name}"], timeout: 1m, concurrency: 2}`, remote), "")

	srv := startServe(t, "--config.file="+cfg)
	scrapeUntil(t, srv.base+"/metrics", `checkpoint_offload_runs_total{result="ok",target="t"} 6`)
	scrapeUntil(t, srv.base+"/metrics", `checkpoint_offload_pending{target="t"} 0`)
	srv.cmd.Process.Kill() // a restart: this process ends, prune is a new one
	srv.cmd.Wait()
	logs := srv.logs
	if n := strings.Count(logs.String(), `msg="offloaded checkpoint"`); n != 6 {
		t.Errorf("%d offloads logged, want 6:\n%s", n, logs.String())
	}

	// Rewritten in place while the exporter was down, mtime set back.
	p := filepath.Join(dir, "checkpoint_step_200.keras")
	st, _ := os.Stat(p)
	contents["checkpoint_step_200.keras"] = bytes.Repeat([]byte("rewritten"), 100)
	if err := os.WriteFile(p, contents["checkpoint_step_200.keras"], 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, st.ModTime(), st.ModTime())

	status, state := scanOffload(t, cfg)
	if state["checkpoint_step_200.keras"] != "changed since offload" || state["checkpoint_step_100.keras"] != "offloaded" {
		t.Errorf("offload states %v", state)
	}
	if status["checkpoint_step_200.keras"] != "keep: not offloaded" || status["checkpoint_step_300.keras"] != "prunable" {
		t.Errorf("statuses %v", status)
	}

	out, stderr, code := runCLI(t, "prune", "--config.file="+cfg, "--keep=2", "--execute")
	if code != 0 {
		t.Fatalf("prune exit %d:\n%s\n%s", code, out, stderr)
	}
	want := []string{"checkpoint_step_200.keras", "checkpoint_step_500.keras", "checkpoint_step_600.keras"}
	if got := checkpointsIn(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("left %v, want %v (200 changed since its offload: kept)\n%s", got, want, out)
	}
	deleted := deletedNames(stderr)
	if len(deleted) != 3 {
		t.Errorf("deleted %v, want three", deleted)
	}
	for _, name := range deleted {
		got, err := os.ReadFile(filepath.Join(remote, "t", name))
		if err != nil || !bytes.Equal(got, contents[name]) {
			t.Errorf("deleted %s, but its copy in the remote is missing or differs (%v)", name, err)
		}
	}
}

// Marker mode through the binary: a checkpoint without its marker is never
// pruned, one with it is.
func TestOffloadMarkerPrune(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "models")
	os.MkdirAll(dir, 0o755)
	kerasContent(t, dir, 100, 200, 300, 400)
	for _, name := range []string{"checkpoint_step_200.keras.synced", "checkpoint_step_300.keras.synced"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o644)
	}
	cfg := writeOffloadConfig(t, dir, "{require_marker: .synced}", "")
	if _, state := scanOffload(t, cfg); state["checkpoint_step_100.keras"] != "not offloaded" || state["checkpoint_step_200.keras"] != "offloaded" {
		t.Errorf("offload states %v", state)
	}
	out, stderr, code := runCLI(t, "prune", "--config.file="+cfg, "--keep=1", "--execute")
	if code != 0 {
		t.Fatalf("prune exit %d:\n%s\n%s", code, out, stderr)
	}
	// The markers stay: a new checkpoint under an old name is newer than
	// its old marker, which therefore does not confirm it.
	want := []string{"checkpoint_step_100.keras", "checkpoint_step_200.keras.synced", "checkpoint_step_300.keras.synced", "checkpoint_step_400.keras"}
	if got := checkpointsIn(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
}

// A failing offload command: serve counts and logs every failure, and a
// prune the disk asks for (the autonomous guard at a 1% high watermark)
// deletes nothing and ends insufficient, which the existing alert reports.
func TestOffloadFailingCommandDeletesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "models")
	os.MkdirAll(dir, 0o755)
	kerasContent(t, dir, 100, 200, 300, 400)
	cfg := writeOffloadConfig(t, dir, `{command: [sh, -c, "echo bucket unreachable >&2; exit 1", sh, "{path}"], timeout: 10s}`,
		"    prune: {execute: true, high_watermark: 1%, low_watermark: 0.5%}\n")
	base, logs := serve(t, "--config.file="+cfg, "--pruner.autonomous", "--webhook.allow-unauthenticated")
	scrapeUntil(t, base+"/metrics", `checkpoint_offload_runs_total{result="failed",target="t"} 4`)
	scrapeUntil(t, base+"/metrics", `checkpoint_prune_runs_total{result="insufficient",target="t",trigger="autonomous"}`)
	body := get(t, base+"/metrics")
	if !strings.Contains(body, `checkpoint_offload_pending{target="t"} 4`) {
		t.Errorf("pending is not 4:\n%s", body)
	}
	if got := checkpointsIn(t, dir); len(got) != 4 {
		t.Errorf("left %v, want all four", got)
	}
	if l := logs.String(); !strings.Contains(l, "bucket unreachable") || !strings.Contains(l, "result=failed") {
		t.Errorf("log does not say why:\n%s", l)
	}
}

// Reload: offload can be switched from a command to a marker and removed
// without a restart; a removed offload leaves no series.
func TestOffloadReload(t *testing.T) {
	dir, remote := filepath.Join(t.TempDir(), "models"), t.TempDir()
	os.MkdirAll(dir, 0o755)
	kerasContent(t, dir, 100, 200, 300, 400)
	cfg := writeOffloadConfig(t, dir, fmt.Sprintf(`{command: [cp, "{path}", "%s/{name}"]}`, remote), "")
	p := startServe(t, "--config.file="+cfg)
	waitMetric(t, p.base, "four offloads", func(e string) bool {
		return strings.Contains(e, `checkpoint_offload_runs_total{result="ok",target="t"} 4`)
	})

	// To a marker: nothing is marked, so all four are pending again.
	os.WriteFile(cfg, []byte(strings.Replace(readFile(t, cfg), fmt.Sprintf(`{command: [cp, "{path}", "%s/{name}"]}`, remote), "{require_marker: .synced}", 1)), 0o644)
	must(t, p.cmd.Process.Signal(syscall.SIGHUP))
	waitMetric(t, p.base, "marker mode after the reload", func(e string) bool {
		return strings.Contains(e, `checkpoint_offload_pending{target="t"} 4`)
	})
	if _, state := scanOffload(t, cfg); state["checkpoint_step_100.keras"] != "not offloaded" {
		t.Errorf("marker mode: states %v", state)
	}

	// No offload: its series go.
	os.WriteFile(cfg, []byte(strings.Replace(readFile(t, cfg), "    offload: {require_marker: .synced}\n", "", 1)), 0o644)
	must(t, p.cmd.Process.Signal(syscall.SIGHUP))
	waitMetric(t, p.base, "the offload series to go", func(e string) bool {
		return !strings.Contains(e, "checkpoint_offload_") && strings.Contains(e, `checkpoint_exporter_config_last_reload_successful 1`)
	})
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
