//go:build e2e

// Package e2e proves the project's claim on real parts: with
// checkpoint_exporter, the shipped rules and the example Alertmanager route,
// a training job that writes far more than its disk holds never hits ENOSPC;
// without pruning, the same job does.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/dashboards"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
	"github.com/checkpoint-exporter/checkpoint_exporter/test/e2e/stack"
)

const (
	fsSize    = 128 << 20
	ckptSize  = 4 << 20
	saves     = 100 // 400 MiB written: more than three times the filesystem
	saveEvery = time.Second
	stepEvery = 100
	headroom  = 20 // seconds of writing the pruner leaves room for
)

var repoRoot, _ = filepath.Abs(filepath.Join("..", ".."))

func requirements(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the end-to-end test mounts a tmpfs and needs root")
	}
	testenv.Need(t, "prometheus")
	// Upstream's alertmanager will do; Debian's is the one make deps installs.
	if _, err := stack.FindBinary("prometheus-alertmanager", "alertmanager"); err != nil {
		testenv.Need(t, "prometheus-alertmanager")
	}
}

func buildExporter(t *testing.T) string {
	t.Helper()
	return build(t, "./cmd/checkpoint_exporter")
}

// build builds the command of package pkg (relative to the repository) and
// returns the path of its binary.
func build(t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

func TestEndToEnd(t *testing.T) {
	requirements(t)
	bin := buildExporter(t)
	trainer := build(t, "./test/trainer")
	scenarios := []struct {
		name, layout     string
		execute, offload bool
	}{
		{"keras_pruned", "keras", true, false},
		{"hf_pruned", "hf", true, false},
		// Offload on (rclone to a local directory remote) and max_bytes
		// set: every panel of the dashboard has data.
		{"keras_offloaded", "keras", true, true},
		{"control_dry_run", "keras", false, false},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { run(t, bin, trainer, sc.layout, sc.execute, sc.offload) })
	}
}

var savedRe = regexp.MustCompile(`step (\d+): saved`)

func run(t *testing.T, bin, trainer, layout string, execute, offload bool) {
	work := t.TempDir()
	ckpt := filepath.Join(work, "ckpt")
	remote := filepath.Join(work, "remote") // on the real disk, not the tmpfs
	if offload {
		testenv.Need(t, "rclone")
	}
	testenv.MountTmpfs(t, ckpt, fmt.Sprint(fsSize))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	target := fmt.Sprintf("path: %s\nkeep_last: 3\nmin_age: 2s\nprune:\n  execute: %v\n  high_watermark: 85%%\n  low_watermark: 70%%\n  headroom: %ds\n", ckpt, execute, headroom)
	if offload {
		target += fmt.Sprintf("max_bytes: 1GiB\noffload:\n  command: [rclone, copyto, --config, /dev/null, \"{path}\", \"%s/{name}\"]\n  timeout: 1m\n  concurrency: 2\n", remote)
	}
	st, err := stack.Start(ctx, stack.Options{WorkDir: work, Exporter: bin, RepoRoot: repoRoot, TargetConfig: target})
	defer func() {
		st.Stop()
		if t.Failed() {
			for _, n := range []string{"exporter", "prometheus", "alertmanager"} {
				b, _ := os.ReadFile(filepath.Join(work, n+".log"))
				t.Logf("--- %s.log (tail) ---\n%s", n, tail(string(b), 40))
			}
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	// Prometheus must scrape the exporter before the job starts.
	waitFor(t, 30*time.Second, "Prometheus scraping the exporter", func() bool {
		s, err := st.Query(`checkpoint_dir_up{target="train"} == 1`)
		return err == nil && len(s) == 1
	})

	// Free space below 15% is past the 85% high watermark; the pruner aims
	// for max(30% free, headroom × write rate) = 80 MiB here.
	w := startWatchers(ctx)
	defer w.stop()
	watch := &fsWatch{dir: ckpt, freedAtLeast: ckptSize / 2, minAvail: fsSize,
		high: crossing{below: fsSize * 15 / 100}, goal: crossing{below: headroom * ckptSize / uint64(saveEvery/time.Second)}}
	w.every(20*time.Millisecond, watch.sample)
	var firingSeen bool
	w.every(250*time.Millisecond, func() {
		s, err := st.Query(`ALERTS{alertname="CheckpointDiskPruneNeeded",alertstate="firing"}`)
		firingSeen = firingSeen || (err == nil && len(s) > 0)
	})

	// The simulated training job.
	job := exec.CommandContext(ctx, trainer, "--dir="+ckpt, "--layout="+layout,
		fmt.Sprintf("--size=%d", ckptSize), "--interval="+saveEvery.String(), fmt.Sprintf("--saves=%d", saves),
		fmt.Sprintf("--step-every=%d", stepEvery))
	stdout, _ := job.StdoutPipe()
	stderr, _ := job.StderrPipe()
	if err := job.Start(); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	saved := &savedSteps{}
	failed := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := savedRe.FindStringSubmatch(line); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				saved.set(n)
			}
			if strings.Contains(line, "FAILED") {
				select {
				case failed <- struct{}{}:
				default:
				}
			}
		}
	}()
	// The newest three saved checkpoints must exist at every moment.
	newest := &newestWatch{saved: saved, keep: 3, every: stepEvery,
		path: func(step int64) string { return checkpointPath(ckpt, layout, step) }}
	w.every(50*time.Millisecond, newest.sample)

	if !execute {
		// The control run only has to show that the job dies of ENOSPC.
		select {
		case <-failed:
			job.Process.Signal(os.Interrupt)
		case <-time.After(saves * saveEvery * 2):
		}
	}
	var summary struct {
		Saves, Failed, ENOSPC int
		Errors                []string
	}
	if err := json.NewDecoder(stdout).Decode(&summary); err != nil {
		t.Fatalf("job summary: %v", err)
	}
	job.Wait()
	elapsed := time.Since(started)

	if !execute {
		if summary.ENOSPC == 0 {
			t.Fatalf("control run: no ENOSPC without pruning (%+v): the test cannot fail", summary)
		}
		t.Logf("control run: ENOSPC after %d saves (%s): %s", summary.Saves, elapsed.Round(time.Second), summary.Errors[0])
		return
	}

	if summary.Failed != 0 || summary.Saves != saves {
		t.Errorf("job: %d of %d saves failed (%d ENOSPC): %v", summary.Failed, summary.Saves, summary.ENOSPC, summary.Errors)
	}
	// Every watcher has returned before its results are read.
	w.stop()
	if missing := newest.missing; len(missing) > 0 {
		t.Errorf("one of the newest 3 checkpoints was missing %d times: %v", len(missing), missing[:min(5, len(missing))])
	}
	exp, err := st.Scrape()
	if err != nil {
		t.Fatal(err)
	}
	webhookRuns := stack.MetricSum(exp, "checkpoint_prune_runs_total", map[string]string{"trigger": "webhook", "result": "ok"}) +
		stack.MetricSum(exp, "checkpoint_prune_runs_total", map[string]string{"trigger": "webhook", "result": "insufficient"})
	deleted := stack.MetricSum(exp, "checkpoint_prune_deleted_checkpoints_total", nil)
	freed := stack.MetricSum(exp, "checkpoint_prune_freed_bytes_total", nil)
	if webhookRuns == 0 || deleted == 0 {
		t.Errorf("no pruning through the webhook: runs %v, deleted %v", webhookRuns, deleted)
	}
	if !firingSeen {
		t.Error("Prometheus never fired CheckpointDiskPruneNeeded")
	}
	if offload {
		checkOffloaded(t, filepath.Join(work, "exporter.log"), remote, exp)
		checkDashboardQueries(t, st)
	}
	// With the job done and the disk pruned, the alert resolves.
	waitFor(t, 90*time.Second, "CheckpointDiskPruneNeeded to resolve", func() bool {
		s, err := st.Query(`ALERTS{alertname="CheckpointDiskPruneNeeded"}`)
		return err == nil && len(s) == 0
	})

	t.Logf("%s: %d saves of %d MiB (%d MiB) on a %d MiB tmpfs in %s, 0 failed; %v prunes by webhook deleted %v checkpoints, freed %.0f MiB; "+
		"lowest free space %.1f MiB; high watermark: %s; pruner goal (%d MiB free): %s",
		layout, summary.Saves, ckptSize>>20, summary.Saves*ckptSize>>20, fsSize>>20, elapsed.Round(time.Second),
		webhookRuns, deleted, freed/(1<<20), float64(watch.minAvail)/(1<<20), &watch.high, watch.goal.below>>20, &watch.goal)
}

// checkOffloaded: every checkpoint the exporter deleted has a whole copy in
// the remote.
func checkOffloaded(t *testing.T, logFile, remote string, exp string) {
	t.Helper()
	logs, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, line := range strings.Split(string(logs), "\n") {
		if !strings.Contains(line, `msg="deleted checkpoint"`) {
			continue
		}
		if _, rest, ok := strings.Cut(line, " name="); ok {
			deleted = append(deleted, strings.Fields(rest)[0])
		}
	}
	if len(deleted) == 0 {
		t.Error("offload run: nothing deleted")
	}
	for _, name := range deleted {
		if st, err := os.Stat(filepath.Join(remote, name)); err != nil || st.Size() != ckptSize {
			t.Errorf("deleted %s, but the remote has no whole copy of it (%v)", name, err)
		}
	}
	ok := stack.MetricSum(exp, "checkpoint_offload_runs_total", map[string]string{"result": "ok"})
	t.Logf("offload: %d checkpoints deleted, each copied first; %v offloads ok", len(deleted), ok)
}

func checkpointPath(dir, layout string, step int64) string {
	if layout == "hf" {
		return filepath.Join(dir, fmt.Sprintf("checkpoint-%d", step))
	}
	return filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", step))
}

// Every query of the shipped dashboard returns data from the live Prometheus.
func checkDashboardQueries(t *testing.T, st *stack.Stack) {
	t.Helper()
	model, err := os.ReadFile(filepath.Join(repoRoot, "dashboards", dashboards.File))
	if err != nil {
		t.Fatal(err)
	}
	qs, err := dashboards.Queries(model)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		expanded := dashboards.Expand(q, "1m")
		s, err := st.Query(expanded)
		if err != nil {
			t.Errorf("dashboard query %s: %v", expanded, err)
		} else if len(s) == 0 {
			t.Errorf("dashboard query returned no data: %s", expanded)
		}
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
