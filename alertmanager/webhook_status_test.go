package alertmanager

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// The status code tells Alertmanager whether to retry: a prune that failed
// answers 500 (retried), one that did all it may but could not reach its
// goal answers 200 (a retry would do no more).
func TestWebhookStatusCodes(t *testing.T) {
	firing := alertBody("firing", map[string]string{"target": "train"})

	t.Run("insufficient is 200", func(t *testing.T) {
		dir := t.TempDir()
		kerasFiles(t, dir, 100, 100, 200, 300, 400, 500)
		p := defaultPolicy
		p.Low = checkpoint.MustWatermark("1%") // no disk gets there
		h := newHarness(t, dir, p)
		code, r := post(t, h.srv.URL, firing, nil)
		if code != http.StatusOK || r.Status != "done" || len(r.Results) != 1 || r.Results[0].Outcome != pruner.ResultInsufficient {
			t.Fatalf("code %d, %+v", code, r)
		}
	})

	t.Run("error is 500", func(t *testing.T) {
		dir := t.TempDir()
		kerasFiles(t, dir, 100, 100, 200, 300, 400, 500)
		h := newHarness(t, dir, defaultPolicy)
		// The directory goes after the last scan: the prune's own scan fails.
		must(t, os.Rename(dir, dir+".gone"))
		code, r := post(t, h.srv.URL, firing, nil)
		if code != http.StatusInternalServerError || r.Status != "error" || len(r.Results) != 1 || r.Results[0].Outcome != pruner.ResultError {
			t.Fatalf("code %d, %+v", code, r)
		}
	})

	t.Run("guard refusal is 503 and deletes nothing", func(t *testing.T) {
		dir := t.TempDir()
		kerasFiles(t, dir, 100, 100, 200, 300, 400, 500)
		p := defaultPolicy
		p.Low = checkpoint.MustWatermark("1%")
		h := newHarness(t, dir, p)
		refusal := errors.New("execute targets but no authentication")
		hook, err := NewWebhook(testLogger(t), h.svc, h.inv.Snapshots, prometheus.NewRegistry(), Options{Guard: func() error { return refusal }})
		must(t, err)
		srv := httptest.NewServer(hook)
		defer srv.Close()
		code, r := post(t, srv.URL, firing, nil)
		if code != http.StatusServiceUnavailable || r.Error != refusal.Error() {
			t.Fatalf("code %d, %+v", code, r)
		}
		if got, _ := filepath.Glob(filepath.Join(dir, "*.keras")); len(got) != 5 {
			t.Errorf("%d of 5 checkpoints left after a refused request", len(got))
		}
		// A notification that would prune nothing is not refused.
		if code, r := post(t, srv.URL, alertBody("resolved", map[string]string{"target": "train"}), nil); code != http.StatusOK {
			t.Errorf("resolved alert while the guard refuses: %d %+v", code, r)
		}
	})
}
