package config

import (
	"context"
	"errors"
	"os"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
)

// A Subscriber takes a new configuration in two steps. Called with it, it
// checks it and builds what it needs without changing anything that runs:
// an error refuses the reload. The commit it returns (nil: nothing to do)
// switches what runs to it and cannot fail.
type Subscriber func(cfg *Config) (commit func(), err error)

// Coordinator reloads the configuration for the parts of a running exporter
// that subscribe to it, as Prometheus and Alertmanager do on SIGHUP and
// POST /-/reload. A reload is all or nothing: every subscriber checks the
// new configuration first, and one refusal (or a file that does not load)
// keeps the running configuration everywhere; only then do the subscribers
// commit, in the order they subscribed, so a part another depends on can
// subscribe first. Reloads are serialised. The coordinator owns
// checkpoint_exporter_config_last_reload_successful and
// checkpoint_exporter_config_last_reload_success_timestamp_seconds.
type Coordinator struct {
	logger log.Logger
	load   func() (*Config, error)

	success, successTime prometheus.Gauge

	mu   sync.Mutex // serialises reloads; guards subs
	subs []Subscriber
}

// NewCoordinator returns a coordinator that reads the configuration with
// load, its metrics registered with reg.
func NewCoordinator(logger log.Logger, load func() (*Config, error), reg prometheus.Registerer) *Coordinator {
	c := &Coordinator{logger: logger, load: load,
		success: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "checkpoint_exporter_config_last_reload_successful",
			Help: "Whether the last configuration reload attempt was successful (1) or refused (0).",
		}),
		successTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "checkpoint_exporter_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration load (start-up or reload).",
		}),
	}
	reg.MustRegister(c.success, c.successTime)
	return c
}

// Started records that the exporter started with a configuration it loaded
// and built itself (start-up is not a reload: nothing runs yet to keep).
func (c *Coordinator) Started() {
	c.success.Set(1)
	c.successTime.SetToCurrentTime()
}

// Subscribe adds subscribers, called in this order by every reload.
func (c *Coordinator) Subscribe(s ...Subscriber) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs = append(c.subs, s...)
}

// Reload reads the configuration again and applies it, or refuses it with
// the error start-up would have given and keeps the running one.
func (c *Coordinator) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.apply()
	if err != nil {
		c.success.Set(0)
		level.Error(c.logger).Log("msg", "configuration reload refused; the running configuration stays", "err", err)
		return err
	}
	c.success.Set(1)
	c.successTime.SetToCurrentTime()
	level.Info(c.logger).Log("msg", "configuration reloaded", "targets", n)
	return nil
}

// apply does the reload with c.mu held and returns the number of targets.
func (c *Coordinator) apply() (int, error) {
	cfg, err := c.load()
	if err != nil {
		return 0, err
	}
	if cfg == nil {
		return 0, errors.New("no configuration")
	}
	commits := make([]func(), 0, len(c.subs))
	for _, s := range c.subs {
		commit, err := s(cfg)
		if err != nil {
			return 0, err
		}
		if commit != nil {
			commits = append(commits, commit)
		}
	}
	for _, commit := range commits {
		commit()
	}
	return len(cfg.Targets), nil
}

// WatchSignals reloads on every signal received on hup (SIGHUP) until ctx
// ends.
func (c *Coordinator) WatchSignals(ctx context.Context, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = c.Reload()
		}
	}
}
