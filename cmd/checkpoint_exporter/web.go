package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"go.yaml.in/yaml/v3"

	"github.com/checkpoint-exporter/checkpoint_exporter/history"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
	"github.com/checkpoint-exporter/checkpoint_exporter/statuspage"
)

// routes is the exporter's HTTP surface: metrics, the webhook, the
// lifecycle endpoints (/-/healthy, /-/ready, /-/reload), and the status
// page with its JSON API. exporter-toolkit wraps the whole mux, so the page
// is behind the same TLS and basic auth as /metrics.
func (s *serveCmd) routes(logger log.Logger, reg *prometheus.Registry, hook http.Handler, r *reloader, page *statuspage.Page) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(s.metricsPath, newGzipHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:           stdLogger{logger},
		EnableOpenMetrics:  true,
		Registry:           reg,
		DisableCompression: true, // gzipHandler compresses
	})))
	mux.Handle(s.webhookPath, hook)
	mux.HandleFunc("/-/healthy", func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(rw, "Healthy.")
	})
	mux.HandleFunc("/-/ready", func(rw http.ResponseWriter, _ *http.Request) {
		if ready, waiting := r.inv.Ready(); !ready {
			http.Error(rw, "Not ready: waiting for the first scan of "+strings.Join(waiting, ", "), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "Ready.")
	})
	mux.HandleFunc("/-/reload", r.serveHTTP)
	if s.metricsPath != statusAPIPath && s.webhookPath != statusAPIPath {
		mux.Handle(statusAPIPath, page.API())
	}
	if s.metricsPath != "/" {
		mux.Handle("/", page)
	}
	return mux
}

// statusAPIPath is where the status page's data is served as JSON.
const statusAPIPath = "/api/v1/status"

// statusPage builds the status page over the running exporter's state.
func (s *serveCmd) statusPage(w *world, r *reloader, hist *history.Store, usage *statuspage.Usage) (*statuspage.Page, error) {
	return statuspage.New(statuspage.Sources{
		Snapshots: w.inv.Snapshots,
		Targets:   r.currentTargets,
		Offload:   w.offloads.state,
		History:   hist,
		Usage:     usage,
	}, statuspage.Options{
		Version:     version.Version,
		WebhookPath: s.webhookPath,
		Links: []statuspage.Link{
			{Path: s.metricsPath, Key: "link.metrics"},
			{Path: statusAPIPath, Key: "link.api"},
			{Path: "/-/healthy", Key: "link.health"},
			{Path: "/-/ready", Key: "link.ready"},
		},
	})
}

// authGuard is the rule that a webhook able to delete must be authenticated.
type authGuard struct {
	tokenFile, webConfigFile string
	allowUnauthenticated     bool
}

func (s *serveCmd) authGuard() authGuard {
	return authGuard{tokenFile: s.tokenFile, webConfigFile: *s.web.WebConfigFile, allowUnauthenticated: s.allowUnauthenticated}
}

// check refuses targets with prune.execute behind a webhook that has neither
// a bearer token nor basic auth in the web config, as the web config reads now.
func (g authGuard) check(targets []pruner.Target) error {
	var executing []string
	for _, t := range targets {
		if t.Policy.Execute {
			executing = append(executing, t.Name)
		}
	}
	if len(executing) == 0 || g.tokenFile != "" || g.allowUnauthenticated {
		return nil
	}
	basicAuth, err := basicAuthConfigured(g.webConfigFile)
	if err != nil {
		return fmt.Errorf("--web.config.file: %w", err)
	}
	if basicAuth {
		return nil
	}
	return fmt.Errorf("targets %s have prune.execute: true, but the webhook that deletes their checkpoints has no authentication: "+
		"set --webhook.token-file or basic_auth_users in --web.config.file (or, knowingly, --webhook.allow-unauthenticated)",
		strings.Join(executing, ", "))
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

// stdLogger adapts the go-kit logger for promhttp's error log.
type stdLogger struct{ l log.Logger }

func (s stdLogger) Println(v ...any) { level.Error(s.l).Log("msg", fmt.Sprint(v...)) }
