// Command demo runs the whole stack on this machine for a person to watch:
// checkpoint_exporter, Prometheus with the shipped rules, Alertmanager with
// the example route, and a simulated training job (test/trainer, built here)
// saving 84 MB checkpoints (the operator guide's size). Watermarks are set relative to the free space
// found at start, so pruning starts after a few hundred MB on any disk, and
// no root is needed. Ctrl-C stops everything and removes the temporary
// directory.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/test/e2e/stack"
)

func main() {
	exporter := flag.String("exporter", "./checkpoint_exporter", "checkpoint_exporter binary")
	size := flag.String("size", "84MB", "checkpoint size")
	interval := flag.Duration("interval", 2*time.Second, "time between saves")
	budget := flag.Uint64("budget-mb", 1000, "how much of the disk the demo may fill before pruning must keep it there")
	flag.Parse()
	if err := run(*exporter, *size, *interval, *budget<<20); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(exporter, size string, interval time.Duration, budget uint64) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	exporter, err := filepath.Abs(exporter)
	if err != nil {
		return err
	}
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "checkpoint_exporter-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	models := filepath.Join(work, "models")
	if err := os.Mkdir(models, 0o755); err != nil {
		return err
	}
	trainer := filepath.Join(work, "trainer")
	build := exec.CommandContext(ctx, "go", "build", "-o", trainer, "./test/trainer")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the trainer: %w\n%s", err, out)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(models, &st); err != nil {
		return err
	}
	avail := st.Bavail * uint64(st.Frsize)
	if avail < 2*budget {
		return fmt.Errorf("only %d MB free in %s; the demo wants %d MB", avail>>20, work, 2*budget>>20)
	}
	// "Free space below X" as the high watermark: pruning starts once the job
	// has written about the budget, and brings it back to half of it.
	high := avail - budget
	low := avail - budget/2
	target := fmt.Sprintf("path: %s\nkeep_last: 3\nmin_age: 3s\nprune:\n  execute: true\n  high_watermark: %d\n  low_watermark: %d\n  headroom: 10s\n", models, high, low)
	timers := stack.DefaultTimers
	s, err := stack.Start(ctx, stack.Options{WorkDir: work, Exporter: exporter, RepoRoot: repo, TargetConfig: target, Timers: timers,
		ExtraExporterArgs: []string{"--pruner.autonomous"}})
	defer s.Stop()
	if err != nil {
		return err
	}
	fmt.Printf(`checkpoint_exporter demo in %s
  exporter      %s   (metrics: %s/metrics)
  prometheus    %s   (alerts:  %s/alerts)
  alertmanager  %s
  training job  saves %s every %s into %s
  pruning       high watermark: free space below %d MB (about %d MB written); each prune brings the
                checkpoints back to about %d MB. The prune alert also fires early because the
                disk is predicted to fill (predict_linear), so prunes start before the watermark.
Ctrl-C stops everything and deletes the directory.

`, work, s.ExporterURL, s.ExporterURL, s.PrometheusURL, s.PrometheusURL, s.AlertmanagerURL, size, interval, models,
		high>>20, budget>>20, budget>>21)

	job := exec.CommandContext(ctx, trainer, "--dir="+models, "--size="+size, "--interval="+interval.String())
	job.Stderr = prefixed("trainer  ")
	if err := job.Start(); err != nil {
		return err
	}
	go follow(ctx, filepath.Join(work, "exporter.log"), "exporter ")
	job.Wait()
	return nil
}

type prefixWriter struct{ prefix string }

func prefixed(p string) *prefixWriter { return &prefixWriter{p} }

func (w *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		fmt.Println(w.prefix + line)
	}
	return len(b), nil
}

// follow prints the exporter's log lines about pruning as they come.
func follow(ctx context.Context, path, prefix string) {
	var f *os.File
	for f == nil && ctx.Err() == nil {
		f, _ = os.Open(path)
		time.Sleep(100 * time.Millisecond)
	}
	if f == nil {
		return
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for ctx.Err() == nil {
		line, err := r.ReadString('\n')
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if strings.Contains(line, "deleted checkpoint") || strings.Contains(line, "prune finished") || strings.Contains(line, "webhook request") {
			fmt.Print(prefix + line)
		}
	}
}
