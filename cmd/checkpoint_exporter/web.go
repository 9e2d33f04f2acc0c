package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/history"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/httpserve"
	"github.com/checkpoint-exporter/checkpoint_exporter/statuspage"
)

// routes is the exporter's HTTP surface: metrics, the webhook, the
// lifecycle endpoints (/-/healthy, /-/ready, /-/reload), and the status
// page with its JSON API. exporter-toolkit wraps the whole mux, so the page
// is behind the same TLS and basic auth as /metrics.
func (s *serveCmd) routes(logger log.Logger, reg *prometheus.Registry, hook, reload http.Handler, inv *checkpoint.Inventory, page *statuspage.Page) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(s.metricsPath, httpserve.NewGzip(promhttp.HandlerFor(reg, promhttp.HandlerOpts{
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
		if ready, waiting := inv.Ready(); !ready {
			http.Error(rw, "Not ready: waiting for the first scan of "+strings.Join(waiting, ", "), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "Ready.")
	})
	mux.Handle("/-/reload", reload)
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
func (s *serveCmd) statusPage(w *setup, r *running, hist *history.Store, usage *statuspage.Usage) (*statuspage.Page, error) {
	return statuspage.New(statuspage.Sources{
		Snapshots: w.inv.Snapshots,
		Targets:   r.currentTargets,
		Offload:   offloadState(w.offloads),
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

// stdLogger adapts the go-kit logger for promhttp's error log.
type stdLogger struct{ l log.Logger }

func (s stdLogger) Println(v ...any) { level.Error(s.l).Log("msg", fmt.Sprint(v...)) }
