package main

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	"go.yaml.in/yaml/v3"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/collector"
	"github.com/checkpoint-exporter/checkpoint_exporter/config"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

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
	webhookTimeout       time.Duration
	maxBody              int64
	autonomous           bool
	noExporterMetrics    bool
	idlePriority         bool
}

func addServe(app *kingpin.Application, c *common) *serveCmd {
	s := &serveCmd{common: c}
	s.cmd = app.Command("serve", "Run the exporter and the Alertmanager webhook (the default command).").Default()
	s.web = kingpinflag.AddFlags(s.cmd, defaultListenAddress)
	s.cmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&s.metricsPath)
	s.cmd.Flag("webhook.path", "Path of the Alertmanager webhook receiver.").Default("/webhook").StringVar(&s.webhookPath)
	s.cmd.Flag("webhook.token-file", "File holding the bearer token Alertmanager sends (http_config.authorization.credentials_file); re-read when it changes.").PlaceHolder("FILE").StringVar(&s.tokenFile)
	s.cmd.Flag("webhook.allow-unauthenticated", "Allow prune.execute targets with a webhook that has neither a token nor basic auth.").BoolVar(&s.allowUnauthenticated)
	s.cmd.Flag("webhook.instance", "Ignore alerts whose instance label is set and differs from this (for fleets that broadcast one receiver to every node).").PlaceHolder("NAME").StringVar(&s.instance)
	s.cmd.Flag("webhook.timeout", "How long a webhook request waits for its prunes before answering 202 and letting them finish in the background.").Default("5s").DurationVar(&s.webhookTimeout)
	s.cmd.Flag("webhook.max-body-bytes", "Largest webhook request body accepted.").Default("1048576").Int64Var(&s.maxBody)
	s.cmd.Flag("web.disable-exporter-metrics", "Exclude the exporter's own go_* and process_* metrics (they are most of a scrape's cost).").BoolVar(&s.noExporterMetrics)
	s.cmd.Flag("collector.idle-priority", "Walk checkpoint trees in background scans on threads at idle CPU and I/O priority, so they only use time the training jobs leave (--no-collector.idle-priority: normal priority). On-demand scans for a prune always run at normal priority.").Default("true").BoolVar(&s.idlePriority)
	s.cmd.Flag("pruner.autonomous", "After every scan, prune targets at or past their high watermark without waiting for an alert.").BoolVar(&s.autonomous)
	return s
}

// basicAuthConfigured reports whether the exporter-toolkit web config asks
// for basic auth.
func basicAuthConfigured(file string) (bool, error) {
	if file == "" {
		return false, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return false, err
	}
	var wc struct {
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if err := yaml.Unmarshal(data, &wc); err != nil {
		return false, fmt.Errorf("%s: %w", file, err)
	}
	return len(wc.Users) > 0, nil
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
	basicAuth, err := basicAuthConfigured(*s.web.WebConfigFile)
	if err != nil {
		return fmt.Errorf("--web.config.file: %w", err)
	}
	var executing []string
	for _, t := range cfg.Targets {
		if t.Prune.Execute {
			executing = append(executing, t.Name)
		}
	}
	if len(executing) > 0 && s.tokenFile == "" && !basicAuth && !s.allowUnauthenticated {
		return fmt.Errorf("targets %s have prune.execute: true, but the webhook that deletes their checkpoints has no authentication: "+
			"set --webhook.token-file or basic_auth_users in --web.config.file (or, knowingly, --webhook.allow-unauthenticated)",
			strings.Join(executing, ", "))
	}
	// Background scans leave a CPU to the HTTP server: scrapes stay fast
	// while a big tree is walked.
	s.scanWorkers = max(1, runtime.GOMAXPROCS(0)-1)
	if s.idlePriority {
		if err := checkpoint.CheckIdlePriority(); err != nil {
			level.Warn(logger).Log("msg", "background scans run at normal priority: this process may not lower its threads' priority", "err", err)
			s.idlePriority = false
		}
	}
	s.idleScans = s.idlePriority
	w, err := s.build(logger, cfg, "")
	if err != nil {
		return err
	}
	for _, t := range w.targets {
		if _, err := os.Stat(t.Path); err != nil {
			level.Warn(logger).Log("msg", "target directory not there yet; it is reported down until it is", "target", t.Name, "path", t.Path)
			continue
		}
		if _, err := pruner.RecoverTrash(ctx, logger, t.Target, s.lockWait); err != nil {
			level.Warn(logger).Log("msg", "could not finish an interrupted prune", "target", t.Name, "err", err)
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collector.New(w.inv), versioncollector.NewCollector(program))
	if !s.noExporterMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	metrics := pruner.NewMetrics(reg, pruner.Names(w.targets))
	svc := pruner.NewService(logger, w.inv, w.targets, &pruner.Executor{Logger: logger, LockWait: s.lockWait}, metrics)
	hook, err := pruner.NewWebhook(logger, svc, w.inv.Snapshots, metrics, pruner.WebhookOptions{
		TokenFile: s.tokenFile, MaxBodyBytes: s.maxBody, Timeout: s.webhookTimeout, Instance: s.instance,
	})
	if err != nil {
		return err
	}
	if s.autonomous {
		w.inv.OnScan(svc.Guard)
	}

	mux := http.NewServeMux()
	mux.Handle(s.metricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:          stdLogger{logger},
		EnableOpenMetrics: true,
		Registry:          reg,
	}))
	mux.Handle(s.webhookPath, hook)
	if s.metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        program,
			Description: "Prometheus exporter for machine-learning checkpoint directories, with alert-driven pruning",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: s.metricsPath, Text: "Metrics"},
			},
			ExtraHTML: targetsHTML(cfg.Targets, s.webhookPath),
		})
		if err != nil {
			return err
		}
		mux.Handle("/", landing)
	}

	go w.inv.Run(ctx)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
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

// targetsHTML lists the configured targets on the landing page.
func targetsHTML(ts []config.Target, webhookPath string) string {
	var b strings.Builder
	b.WriteString("<h2>Targets</h2><table><tr><th>target</th><th>path</th><th>layout</th><th>keep_last</th><th>prune</th></tr>")
	for _, t := range ts {
		mode := "dry run"
		if t.Prune.Execute {
			mode = "execute"
		}
		layout := t.Layout
		if t.Pattern != "" {
			layout = "pattern " + t.Pattern
		}
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%d</td><td>%s, high %s, low %s</td></tr>",
			html.EscapeString(t.Name), html.EscapeString(t.Path), html.EscapeString(layout), *t.KeepLast,
			mode, html.EscapeString(t.Prune.HighWatermark.String()), html.EscapeString(t.Prune.LowWatermark.String()))
	}
	fmt.Fprintf(&b, "</table><p>Alertmanager webhook: <code>POST %s</code></p>", html.EscapeString(webhookPath))
	return b.String()
}

// stdLogger adapts the go-kit logger for promhttp's error log.
type stdLogger struct{ l log.Logger }

func (s stdLogger) Println(v ...any) { level.Error(s.l).Log("msg", fmt.Sprint(v...)) }
