package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// AuthOptions say how the webhook is authenticated.
type AuthOptions struct {
	// TokenFile is the bearer token file (Options.TokenFile); set, the
	// webhook is authenticated whatever the web config says.
	TokenFile string
	// WebConfigFile is exporter-toolkit's --web.config.file, whose
	// basic_auth_users authenticate every request, the webhook's included.
	// exporter-toolkit reads it again for every request, so it can lose its
	// users at any time.
	WebConfigFile string
	// AllowUnauthenticated turns the rule off (--webhook.allow-unauthenticated).
	AllowUnauthenticated bool
}

// AuthGuard is the rule that a webhook able to delete is authenticated:
// while targets have prune.execute, either a token file is set or the web
// config has basic_auth_users. Start-up and reloads refuse a configuration
// that breaks it (Check); the webhook asks it before every prune (Allow),
// and the web config is watched, so an edit that drops basic auth stops
// deletions at once and shows in checkpoint_webhook_execute_unauthenticated.
// A scrape only reads the state last computed: it never reads a file.
type AuthGuard struct {
	logger log.Logger
	opts   AuthOptions

	mu        sync.Mutex
	executing []string  // names of the targets with prune.execute
	stamp     fileStamp // of the web config when last read
	refusal   error     // the rule's verdict when last computed
}

// NewAuthGuard returns the guard for the targets the exporter starts with,
// checkpoint_webhook_execute_unauthenticated registered with reg. It does
// not refuse: call Check first.
func NewAuthGuard(logger log.Logger, opts AuthOptions, targets []pruner.Target, reg prometheus.Registerer) *AuthGuard {
	g := &AuthGuard{logger: logger, opts: opts}
	g.SetTargets(targets)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "checkpoint_webhook_execute_unauthenticated",
		Help: "1 while targets have prune.execute but the webhook has no authentication (the web config lost its basic auth): the webhook refuses to prune until it has again.",
	}, func() float64 {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.refusal != nil {
			return 1
		}
		return 0
	}))
	return g
}

// Check returns the rule's verdict on targets with the web config as it
// reads now, without changing the guard's state: start-up and a reload
// refuse a configuration it fails.
func (g *AuthGuard) Check(targets []pruner.Target) error {
	return g.verdict(executing(targets))
}

// SetTargets makes targets (a reload's) the ones the rule is about.
func (g *AuthGuard) SetTargets(targets []pruner.Target) {
	g.mu.Lock()
	g.executing = executing(targets)
	g.mu.Unlock()
	g.refresh()
}

// Allow computes the rule again with the web config as it reads now and
// returns its verdict: the webhook asks it before every prune a request
// would start, as exporter-toolkit has just read the same file to let the
// request in.
func (g *AuthGuard) Allow() error { return g.refresh() }

// Watch computes the rule again whenever the web config file changes
// (looked at every interval) until ctx ends, so the metric follows an edit
// without a webhook request.
func (g *AuthGuard) Watch(ctx context.Context, interval time.Duration) {
	if g.opts.WebConfigFile == "" {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.mu.Lock()
		changed := statFile(g.opts.WebConfigFile) != g.stamp
		g.mu.Unlock()
		if changed {
			g.refresh()
		}
	}
}

// refresh computes the verdict, logs when it changes and returns it.
func (g *AuthGuard) refresh() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stamp = statFile(g.opts.WebConfigFile)
	err := g.verdict(g.executing)
	switch {
	case err != nil && g.refusal == nil:
		level.Error(g.logger).Log("msg", "the webhook refuses to prune: targets have prune.execute but the webhook is no longer authenticated", "err", err)
	case err == nil && g.refusal != nil:
		level.Info(g.logger).Log("msg", "the webhook is authenticated again; it prunes")
	}
	g.refusal = err
	return err
}

// verdict applies the rule to the targets named executing.
func (g *AuthGuard) verdict(executing []string) error {
	if len(executing) == 0 || g.opts.TokenFile != "" || g.opts.AllowUnauthenticated {
		return nil
	}
	basicAuth, err := basicAuthConfigured(g.opts.WebConfigFile)
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

// executing names the targets with prune.execute.
func executing(targets []pruner.Target) []string {
	var names []string
	for _, t := range targets {
		if t.Policy.Execute {
			names = append(names, t.Name)
		}
	}
	return names
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

// fileStamp tells one version of a file from another without reading it:
// an edit in place changes its size or time, a replacement (an editor's or
// a Kubernetes Secret's rename) its inode.
type fileStamp struct {
	exists  bool
	ino     uint64
	size    int64
	modTime time.Time
	err     string
}

func statFile(name string) fileStamp {
	if name == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fileStamp{}
		}
		return fileStamp{err: err.Error()}
	}
	st := fileStamp{exists: true, size: fi.Size(), modTime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}
