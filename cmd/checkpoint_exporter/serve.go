package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/checkpoint-exporter/checkpoint_exporter/alertmanager"
	"github.com/checkpoint-exporter/checkpoint_exporter/collector"
	"github.com/checkpoint-exporter/checkpoint_exporter/config"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/httpserve"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
	"github.com/checkpoint-exporter/checkpoint_exporter/sizing"
	"github.com/checkpoint-exporter/checkpoint_exporter/statuspage"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// labelNameRe is what Prometheus accepts as a label name everywhere.
var labelNameRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// DefaultListenAddress is the exporter's default port.
const defaultListenAddress = ":9866"

type serveCmd struct {
	*common
	cmd                  *kingpin.CmdClause
	web                  *web.FlagConfig
	metricsPath          string
	webhookPath          string
	tokenFile            string
	allowUnauthenticated bool
	instance             string
	matchLabels          map[string]string
	webhookTimeout       time.Duration
	maxBody              int64
	autonomous           bool
	noExporterMetrics    bool
	idlePriority         bool
	limits               *httpserve.Limits
	history              historyFlags
}

func addServe(app *kingpin.Application, c *common) *serveCmd {
	s := &serveCmd{common: c, matchLabels: map[string]string{}}
	s.cmd = app.Command("serve", "Run the exporter and the Alertmanager webhook (the default command).").Default()
	s.web = kingpinflag.AddFlags(s.cmd, defaultListenAddress)
	s.limits = addHTTPLimits(s.cmd)
	s.cmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&s.metricsPath)
	s.cmd.Flag("webhook.path", "Path of the Alertmanager webhook receiver.").Default("/webhook").StringVar(&s.webhookPath)
	s.cmd.Flag("webhook.token-file", "File holding the bearer token Alertmanager sends (http_config.authorization.credentials_file); read for every request, so a rotation revokes the old token at once.").PlaceHolder("FILE").StringVar(&s.tokenFile)
	s.cmd.Flag("webhook.allow-unauthenticated", "Allow prune.execute targets with a webhook that has neither a token nor basic auth.").BoolVar(&s.allowUnauthenticated)
	s.cmd.Flag("webhook.instance", "Ignore alerts whose instance label is set and differs from this (for fleets that broadcast one receiver to every node).").PlaceHolder("NAME").StringVar(&s.instance)
	s.cmd.Flag("webhook.match-label", "Ignore alerts that carry this label with another value (repeatable; e.g. node=$(NODE_NAME) in a Kubernetes DaemonSet, where instance is the pod's address).").PlaceHolder("LABEL=VALUE").StringMapVar(&s.matchLabels)
	s.cmd.Flag("webhook.timeout", "How long a webhook request waits for its prunes before answering 202 and letting them finish in the background.").Default("5s").DurationVar(&s.webhookTimeout)
	s.cmd.Flag("webhook.max-body-bytes", "Largest webhook request body accepted.").Default("1048576").Int64Var(&s.maxBody)
	s.cmd.Flag("web.disable-exporter-metrics", "Exclude the exporter's own go_* and process_* metrics (they are most of a scrape's cost).").BoolVar(&s.noExporterMetrics)
	s.cmd.Flag("collector.idle-priority", "Walk checkpoint trees in background scans in a child process whose threads are at idle CPU and I/O priority, so they only use time the training jobs leave (--no-collector.idle-priority: in this process, at normal priority). On-demand scans for a prune always run in this process at normal priority.").Default("true").BoolVar(&s.idlePriority)
	addHistoryFlags(s.cmd, &s.history)
	s.cmd.Flag("pruner.autonomous", "After every scan, prune targets at or past their high watermark, or over their max_bytes, without waiting for an alert.").BoolVar(&s.autonomous)
	return s
}

func (s *serveCmd) run(ctx context.Context) int {
	logger, slogger := s.logger()
	if err := s.serve(ctx, logger, slogger); err != nil {
		level.Error(logger).Log("msg", "exiting", "err", err)
		return exitError
	}
	return exitOK
}

func (s *serveCmd) serve(ctx context.Context, logger log.Logger, slogger *slog.Logger) error {
	level.Info(logger).Log("msg", "starting "+program, "version", version.Info(), "build_context", version.BuildContext())
	cfg, err := s.loadConfig()
	if err != nil {
		return err
	}
	if s.idlePriority {
		if err := sizing.CheckIdlePriority(); err != nil {
			level.Warn(logger).Log("msg", "background scans run at normal priority: this process may not lower its threads' priority", "err", err)
			s.idlePriority = false
		}
	}
	// Background scans leave a CPU to the HTTP server: scrapes stay fast
	// while a big tree is walked.
	opts := s.scanOptions(max(1, runtime.GOMAXPROCS(0)-1), s.idlePriority)
	w, err := s.build(logger, cfg, "", opts)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	guard := alertmanager.NewAuthGuard(logger, alertmanager.AuthOptions{
		TokenFile: s.tokenFile, WebConfigFile: *s.web.WebConfigFile, AllowUnauthenticated: s.allowUnauthenticated,
	}, w.targets, reg)
	if err := guard.Check(w.targets); err != nil {
		return err
	}
	reg.MustRegister(collector.New(w.inv), versioncollector.NewCollector(program))
	if !s.noExporterMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collector.NewProcessCollector())
	}
	for name := range s.matchLabels {
		if !labelNameRe.MatchString(name) {
			return fmt.Errorf("--webhook.match-label: %q is not a label name", name)
		}
	}
	metrics := pruner.NewMetrics(reg, pruner.Names(w.targets))
	w.offloads.Start(ctx, reg)
	w.inv.OnScan(w.offloads.Scanned)
	s.recoverTrash(ctx, logger, w.targets, metrics)
	r := &running{s: s, logger: logger, opts: opts, w: w, metrics: metrics, guard: guard, targets: w.targets,
		svc: pruner.NewService(logger, w.inv, w.targets, &pruner.Executor{Logger: logger, LockWait: s.lockWait}, metrics)}
	coord := config.NewCoordinator(logger, s.loadConfig, reg)
	r.subscribe(ctx, coord)
	hist, err := s.history.open(logger)
	if err != nil {
		return err
	}
	defer hist.Close()
	r.svc.RecordTo(hist.PruneRecorder())
	hook, err := alertmanager.NewWebhook(logger, r.svc, w.inv.Snapshots, reg, alertmanager.Options{
		TokenFile: s.tokenFile, MaxBodyBytes: s.maxBody, Timeout: s.webhookTimeout, Instance: s.instance, Guard: guard.Allow,
		MatchLabels: s.matchLabels,
	})
	if err != nil {
		return err
	}
	if s.autonomous {
		w.inv.OnScan(r.svc.Guard)
	}
	coord.Started()
	// The chart's samples: one a minute from the background scans, a day's
	// worth, in memory.
	usage := statuspage.NewUsage(time.Minute, 24*time.Hour)
	w.inv.OnScan(usage.OnScan)
	page, err := s.statusPage(w, r, hist, usage)
	if err != nil {
		return err
	}
	mux := s.routes(logger, reg, hook, reloadHandler(coord), w.inv, page)

	go w.inv.Run(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go coord.WatchSignals(ctx, hup)
	go guard.Watch(ctx, time.Second)
	srv := s.limits.Server(logger, reg, mux, s.webhookTimeout)
	errc := make(chan error, 1)
	go func() { errc <- web.ListenAndServe(srv, s.web, slogger) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		level.Info(logger).Log("msg", "shutting down")
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	}
}

// recoverTrash finishes the deletions a crash interrupted, in every target
// that is there.
func (s *serveCmd) recoverTrash(ctx context.Context, logger log.Logger, targets []pruner.Target, metrics *pruner.Metrics) {
	for _, t := range targets {
		if _, err := os.Stat(t.Path); err != nil {
			level.Warn(logger).Log("msg", "target directory not there yet; it is reported down until it is", "target", t.Name, "path", t.Path)
			continue
		}
		if t.Policy.Execute {
			if err := targetdir.Provision(t.Path, t.Policy.Lock); err != nil {
				level.Warn(logger).Log("msg", "could not make the files a prune needs on a full disk; they are made after the next prune that frees space",
					"target", t.Name, "err", err)
			}
		}
		rec, err := pruner.RecoverTrash(ctx, logger, t, s.lockWait)
		if err != nil {
			level.Warn(logger).Log("msg", "could not finish an interrupted prune", "target", t.Name, "err", err)
			continue
		}
		metrics.Recovered(t.Name, rec)
	}
}
