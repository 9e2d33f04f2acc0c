// Command checkpoint_exporter exports the state of machine-learning checkpoint
// directories to Prometheus and prunes old checkpoints, safely, when an
// Alertmanager webhook (or the autonomous guard) says the disk is filling.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/prometheus/common/version"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/config"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/logging"
	"github.com/checkpoint-exporter/checkpoint_exporter/offload"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
	"github.com/checkpoint-exporter/checkpoint_exporter/sizing"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

const program = "checkpoint_exporter"

// Exit codes.
const (
	exitOK           = 0
	exitError        = 1
	exitUsage        = 2
	exitInsufficient = 3
)

// common holds the flags every command shares.
type common struct {
	configFile     string
	dirs           []string
	logLevel       string
	logFormat      string
	statfsTimeout  time.Duration
	hangTimeout    time.Duration
	fullRescan     time.Duration
	lockWait       time.Duration
	stdout, stderr io.Writer
}

// walkerArg, as the only argument, makes this process a walker: the child
// in which serve's background scans size checkpoints at idle priority
// (sizing.ServeWalker). It is no command for people, so not in --help.
const walkerArg = "internal-walker"

func main() {
	if len(os.Args) == 2 && os.Args[1] == walkerArg {
		if err := sizing.ServeWalker(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(exitError)
		}
		os.Exit(exitOK)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	stampVersion()
	// Tables are written cell by cell: buffer them into a few writes.
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	stdout = out
	app := kingpin.New(program, "Prometheus exporter for machine-learning checkpoint directories, with alert-driven pruning.")
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	app.Version(version.Print(program))
	// --version and --help exit from inside Parse: flush first.
	app.Terminate(func(code int) { out.Flush(); os.Exit(code) })
	app.HelpFlag.Short('h')
	c := &common{stdout: stdout, stderr: stderr}
	app.Flag("config.file", "YAML configuration file (targets and their policies).").PlaceHolder("FILE").StringVar(&c.configFile)
	app.Flag("checkpoint.dir", "Checkpoint directory to watch, layout auto, default policy, dry run (repeatable; ignored with --config.file). Default: ./models.").PlaceHolder("DIR").StringsVar(&c.dirs)
	app.Flag("log.level", "Only log messages with the given severity or above: debug, info, warn, error.").Default("info").EnumVar(&c.logLevel, "debug", "info", "warn", "error")
	app.Flag("log.format", "Output format of log messages: logfmt, json.").Default("logfmt").EnumVar(&c.logFormat, "logfmt", "json")
	app.Flag("collector.statfs-timeout", "How long statfs of a target may take before the target is reported down (hung network mounts).").Default("5s").DurationVar(&c.statfsTimeout)
	app.Flag("collector.hang-timeout", "How long a scan may make no progress (a system call that does not return: hung network mount) before its target is reported down and its prunes fail at once.").Default("30s").DurationVar(&c.hangTimeout)
	app.Flag("collector.full-rescan-interval", "How often settled checkpoints are walked again to catch changes in place; in between only their top-level entry is checked.").Default("1h").DurationVar(&c.fullRescan)
	app.Flag("pruner.lock-wait", "How long a prune waits for another prune's lock on the same target directory.").Default("30s").DurationVar(&c.lockWait)

	s := addServe(app, c)
	sc := addScan(app, c)
	pr := addPrune(app, c)
	pl := addPlan(app, c)
	cc := addCheckConfig(app, c)
	hi := addHistory(app, c)

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v (try --help)\n", program, err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case s.cmd.FullCommand():
		return s.run(ctx)
	case sc.cmd.FullCommand():
		return sc.run(ctx)
	case pr.cmd.FullCommand():
		return pr.run(ctx)
	case pl.cmd.FullCommand():
		return pl.run(ctx)
	case cc.cmd.FullCommand():
		return cc.run(ctx)
	case hi.cmd.FullCommand():
		return hi.run(ctx)
	}
	return exitUsage
}

// logger builds the application's logger and exporter-toolkit's from the
// --log.* flags.
func (c *common) logger() (log.Logger, *slog.Logger) {
	return logging.New(c.stderr, c.logFormat, c.logLevel)
}

// loadConfig reads --config.file or builds the quick-start configuration.
func (c *common) loadConfig() (*config.Config, error) {
	if c.configFile != "" {
		return config.Load(c.configFile)
	}
	return config.FromDirs(c.dirs)
}

// setup is everything built from the configuration.
type setup struct {
	inv      *checkpoint.Inventory
	targets  []pruner.Target
	offloads *offload.Set
}

// policy returns the policy of the target called name.
func (w *setup) policy(name string) pruner.Policy {
	for _, t := range w.targets {
		if t.Name == name {
			return t.Policy
		}
	}
	return pruner.Policy{}
}

// scanOptions are the scanners' options: workers sizes checkpoints in
// parallel (0: one per CPU); idle sizes them in a walker process at idle
// priority in background scans.
func (c *common) scanOptions(workers int, idle bool) checkpoint.ScanOptions {
	opts := checkpoint.ScanOptions{StatFSTimeout: c.statfsTimeout, HangTimeout: c.hangTimeout, FullRescanInterval: c.fullRescan, Workers: workers}
	if idle {
		// This very binary, even if the file was replaced or removed since.
		opts.Walker = []string{"/proc/self/exe", walkerArg}
	}
	return opts
}

func (c *common) build(logger log.Logger, cfg *config.Config, only string, opts checkpoint.ScanOptions) (*setup, error) {
	targets, err := selectTargets(cfg, only)
	if err != nil {
		return nil, err
	}
	w := &setup{targets: targets, offloads: offload.NewSet(logger)}
	attachOffloads(w.offloads, cfg, w.targets)
	scanners, err := scannersFor(w.targets, opts, nil)
	if err != nil {
		return nil, err
	}
	w.inv = checkpoint.NewInventory(logger, time.Duration(cfg.ScanInterval), scanners...)
	return w, nil
}

// selectTargets returns the configured targets (only the one named only,
// if set).
func selectTargets(cfg *config.Config, only string) ([]pruner.Target, error) {
	var out []pruner.Target
	for i := range cfg.Targets {
		if t := targetOf(&cfg.Targets[i]); only == "" || t.Name == only {
			out = append(out, t)
		}
	}
	if only != "" && len(out) == 0 {
		names := make([]string, len(cfg.Targets))
		for i, t := range cfg.Targets {
			names[i] = t.Name
		}
		return nil, fmt.Errorf("no target %q (configured: %s)", only, strings.Join(names, ", "))
	}
	return out, nil
}

// scannersFor returns a scanner per target, in order: the one of old that
// scans exactly that target (a reload keeps its cache and counters), else a
// new one.
func scannersFor(targets []pruner.Target, opts checkpoint.ScanOptions, old []*checkpoint.Scanner) ([]*checkpoint.Scanner, error) {
	out := make([]*checkpoint.Scanner, 0, len(targets))
	for _, t := range targets {
		i := slices.IndexFunc(old, func(s *checkpoint.Scanner) bool { return s.Target() == t.Target })
		if i >= 0 {
			out = append(out, old[i])
			continue
		}
		sc, err := checkpoint.NewScanner(t.Target, opts)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		out = append(out, sc)
	}
	return out, nil
}

// load is the one-shot commands' start: the configuration and the setup built
// from it (only the target named only, if set). Errors are printed; ok is
// false after one.
func (c *common) load(logger log.Logger, only string) (w *setup, ok bool) {
	cfg, err := c.loadConfig()
	if err == nil {
		w, err = c.build(logger, cfg, only, c.scanOptions(0, false))
	}
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return nil, false
	}
	return w, true
}

// targetOf is the one conversion of a configured target into what the
// scanner and the pruner work with.
func targetOf(t *config.Target) pruner.Target {
	pt := pruner.Target{
		Target: checkpoint.Target{
			Name:     t.Name,
			Path:     t.Path,
			Layout:   t.Layout,
			Pattern:  t.Pattern,
			MinAge:   time.Duration(t.MinAge),
			HostPath: t.HostPath,
			MaxBytes: uint64(t.MaxBytes),
		},
		Policy: pruner.Policy{
			KeepLast:   t.KeepLast,
			KeepEvery:  t.KeepEvery,
			KeepWithin: time.Duration(t.KeepWithin),
			Protect:    t.Protect,
			High:       t.Prune.HighWatermark,
			Low:        t.Prune.LowWatermark,
			Headroom:   time.Duration(t.Prune.Headroom),
			Execute:    t.Prune.Execute,
			Lock:       targetdir.LockMode(t.Prune.Lock),
		},
	}
	if c := t.Prune.AttributeCache; c != nil {
		d := time.Duration(*c)
		pt.Policy.AttributeCache = &d
	}
	return pt
}
