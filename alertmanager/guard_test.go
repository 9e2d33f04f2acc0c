package alertmanager

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

const withUsers = "basic_auth_users:\n  alertmanager: $2y$10$abcdefghijklmnopqrstuu\n"

func targets(execute ...bool) []pruner.Target {
	var out []pruner.Target
	for i, e := range execute {
		out = append(out, pruner.Target{Target: checkpoint.Target{Name: string(rune('a' + i))}, Policy: pruner.Policy{Execute: e}})
	}
	return out
}

func TestAuthGuardRule(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.yml")
	must(t, os.WriteFile(users, []byte(withUsers), 0o600))
	noUsers := filepath.Join(dir, "tls-only.yml")
	must(t, os.WriteFile(noUsers, []byte("tls_server_config: {}\n"), 0o600))
	broken := filepath.Join(dir, "broken.yml")
	must(t, os.WriteFile(broken, []byte("basic_auth_users: [\n"), 0o600))
	for _, tc := range []struct {
		name    string
		opts    AuthOptions
		targets []pruner.Target
		refuse  string // "" when allowed
	}{
		{"no execute target", AuthOptions{}, targets(false, false), ""},
		{"no targets", AuthOptions{}, nil, ""},
		{"execute, nothing", AuthOptions{}, targets(false, true), "targets b have prune.execute: true"},
		{"execute, token", AuthOptions{TokenFile: "/any"}, targets(true), ""},
		{"execute, basic auth", AuthOptions{WebConfigFile: users}, targets(true, true), ""},
		{"execute, web config without users", AuthOptions{WebConfigFile: noUsers}, targets(true, true), "targets a, b have"},
		{"execute, allowed knowingly", AuthOptions{AllowUnauthenticated: true}, targets(true), ""},
		{"execute, web config missing", AuthOptions{WebConfigFile: filepath.Join(dir, "gone.yml")}, targets(true), "--web.config.file: open"},
		{"execute, web config broken", AuthOptions{WebConfigFile: broken}, targets(true), "--web.config.file: " + broken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewAuthGuard(log.NewNopLogger(), tc.opts, nil, prometheus.NewRegistry())
			err := g.Check(tc.targets)
			switch {
			case tc.refuse == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refuse != "" && (err == nil || !strings.Contains(err.Error(), tc.refuse)):
				t.Errorf("got %v, want an error with %q", err, tc.refuse)
			}
			// Check judges without changing the state; SetTargets does.
			if g.Allow() != nil {
				t.Error("Check changed the guard's targets")
			}
			g.SetTargets(tc.targets)
			if (g.Allow() != nil) != (tc.refuse != "") {
				t.Errorf("Allow after SetTargets: %v", g.Allow())
			}
		})
	}
}

// syncBuffer is a log destination the watcher and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The web config loses its users and gets them back: the watcher follows
// both edits without a request, the metric says so, and each change is
// logged once. A scrape reads only the state: with the watcher stopped, the
// metric keeps its value whatever the file says.
func TestAuthGuardFollowsWebConfig(t *testing.T) {
	webCfg := filepath.Join(t.TempDir(), "web.yml")
	must(t, os.WriteFile(webCfg, []byte(withUsers), 0o600))
	var logs syncBuffer
	reg := prometheus.NewRegistry()
	g := NewAuthGuard(log.NewLogfmtLogger(&logs), AuthOptions{WebConfigFile: webCfg}, targets(true), reg)
	unauthenticated := func() float64 { return value(t, reg, "checkpoint_webhook_execute_unauthenticated", nil) }
	if unauthenticated() != 0 {
		t.Fatal("unauthenticated with basic auth configured")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Watch(ctx, 10*time.Millisecond) }()
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; log:\n%s", what, logs.String())
			}
		}
	}
	// An editor's replace: a new file renamed over the old one.
	tmp := webCfg + ".tmp"
	must(t, os.WriteFile(tmp, []byte("# basic auth removed\n"), 0o600))
	must(t, os.Rename(tmp, webCfg))
	waitUntil("the metric to say unauthenticated", func() bool { return unauthenticated() == 1 })
	if g.Allow() == nil {
		t.Error("Allow lets a prune through without authentication")
	}
	must(t, os.WriteFile(webCfg, []byte(withUsers), 0o600))
	waitUntil("the metric to say authenticated", func() bool { return unauthenticated() == 0 })
	cancel()
	<-done
	if n := strings.Count(logs.String(), "the webhook refuses to prune"); n != 1 {
		t.Errorf("refusal logged %d times:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "authenticated again"); n != 1 {
		t.Errorf("recovery logged %d times:\n%s", n, logs.String())
	}

	must(t, os.Remove(webCfg))
	for range 3 {
		if unauthenticated() != 0 {
			t.Fatal("a scrape read the web config")
		}
	}
}
