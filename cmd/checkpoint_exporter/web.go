package main

import (
	"fmt"
	"html"
	"net/http"
	"os"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"

	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// routes is the exporter's HTTP surface: metrics, the webhook, the
// lifecycle endpoints (/-/healthy, /-/ready, /-/reload) and the landing
// page listing the running targets.
func (s *serveCmd) routes(logger log.Logger, reg *prometheus.Registry, hook http.Handler, r *reloader) *http.ServeMux {
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
	if s.metricsPath != "/" {
		mux.HandleFunc("/", func(rw http.ResponseWriter, req *http.Request) { (*r.landing.Load()).ServeHTTP(rw, req) })
	}
	return mux
}

// landingPage is the landing page listing targets.
func (s *serveCmd) landingPage(targets []pruner.Target) (http.Handler, error) {
	return web.NewLandingPage(web.LandingConfig{
		Name:        program,
		Description: "Prometheus exporter for machine-learning checkpoint directories, with alert-driven pruning",
		Version:     version.Info(),
		Links: []web.LandingLinks{
			{Address: s.metricsPath, Text: "Metrics"},
			{Address: "/-/healthy", Text: "Health"},
			{Address: "/-/ready", Text: "Readiness"},
		},
		ExtraHTML: targetsHTML(targets, s.webhookPath),
	})
}

// targetsHTML lists the configured targets on the landing page.
func targetsHTML(ts []pruner.Target, webhookPath string) string {
	var b strings.Builder
	b.WriteString("<h2>Targets</h2><table><tr><th>target</th><th>path</th><th>layout</th><th>keep_last</th><th>prune</th></tr>")
	for _, t := range ts {
		mode := "dry run"
		if t.Policy.Execute {
			mode = "execute"
		}
		layout := t.Layout
		if t.Pattern != "" {
			layout = "pattern " + t.Pattern
		}
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%d</td><td>%s, high %s, low %s</td></tr>",
			html.EscapeString(t.Name), html.EscapeString(t.Path), html.EscapeString(layout), t.Policy.KeepLast,
			mode, html.EscapeString(t.Policy.High.String()), html.EscapeString(t.Policy.Low.String()))
	}
	fmt.Fprintf(&b, "</table><p>Alertmanager webhook: <code>POST %s</code></p>", html.EscapeString(webhookPath))
	return b.String()
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
