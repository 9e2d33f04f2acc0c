package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

const token = "s3cret-token"

type harness struct {
	dir     string
	srv     *httptest.Server
	inv     *checkpoint.Inventory
	svc     *pruner.Service
	reg     *prometheus.Registry
	metrics *pruner.Metrics
}

func newHarness(t *testing.T, dir string, p pruner.Policy) *harness {
	t.Helper()
	tg := checkpoint.Target{Name: "train", Path: dir}
	sc, err := checkpoint.NewScanner(tg, checkpoint.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	logger := testLogger(t)
	inv := checkpoint.NewInventory(logger, time.Hour, sc)
	inv.ScanAll(context.Background())
	reg := prometheus.NewRegistry()
	m := pruner.NewMetrics(reg, []string{"train"})
	svc := pruner.NewService(logger, inv, withPolicy(p, tg), &pruner.Executor{Logger: logger, LockWait: 10 * time.Second}, m)
	tokFile := filepath.Join(t.TempDir(), "token")
	must(t, os.WriteFile(tokFile, []byte(token+"\n"), 0o600))
	hook, err := NewWebhook(logger, svc, inv.Snapshots, reg, Options{TokenFile: tokFile, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{dir: dir, srv: httptest.NewServer(hook), inv: inv, svc: svc, reg: reg, metrics: m}
	t.Cleanup(h.srv.Close)
	return h
}

func alertBody(status string, labels map[string]string) []byte {
	msg := map[string]any{
		"version": "4", "groupKey": `{}/{prune="true"}:{alertname="CheckpointDiskPruneNeeded"}`, "truncatedAlerts": 0,
		"status": status, "receiver": "checkpoint-pruner", "groupLabels": map[string]string{"alertname": "CheckpointDiskPruneNeeded"},
		"commonLabels": labels, "commonAnnotations": map[string]string{}, "externalURL": "http://alertmanager:9093",
		"alerts": []map[string]any{{
			"status": status, "labels": labels, "annotations": map[string]string{"summary": "disk filling"},
			"startsAt": "2026-11-28T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
			"generatorURL": "http://prometheus:9090/graph", "fingerprint": "c0ffee",
		}},
	}
	b, _ := json.Marshal(msg)
	return b
}

func post(t *testing.T, url string, body []byte, mod func(r *http.Request)) (int, Response) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if mod != nil {
		mod(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r Response
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("response %q: %v", data, err)
	}
	return resp.StatusCode, r
}

// fillTmpfs fills a 64 MiB tmpfs past 90% with 1 MiB Keras checkpoints.
func fillTmpfs(t *testing.T) (string, []int) {
	t.Helper()
	dir := tmpfs(t, "64m")
	var list []int
	for s := 100; ; s += 100 {
		fs, _ := targetdir.StatFS(dir)
		if fs.UsedRatio() >= 0.90 {
			break
		}
		kerasFiles(t, dir, 1<<20, s)
		mt := old.Add(time.Duration(s) * time.Second)
		must(t, os.Chtimes(filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s)), mt, mt))
		list = append(list, s)
	}
	return dir, list
}

var defaultPolicy = pruner.Policy{KeepLast: 3, High: checkpoint.MustWatermark("85%"), Low: checkpoint.MustWatermark("70%"), Execute: true}

func TestWebhookPrunesToLowWatermarkThenNoop(t *testing.T) {
	dir, list := fillTmpfs(t)
	h := newHarness(t, dir, defaultPolicy)
	code, r := post(t, h.srv.URL, alertBody("firing", map[string]string{"alertname": "CheckpointDiskPruneNeeded", "target": "train", "prune": "true"}), nil)
	if code != http.StatusOK || len(r.Results) != 1 {
		t.Fatalf("code %d, response %+v", code, r)
	}
	res := r.Results[0]
	if res.Outcome != pruner.ResultOK || len(res.Deleted) == 0 || res.FreedBytes <= 0 {
		t.Fatalf("result %+v", res)
	}
	fs, _ := targetdir.StatFS(dir)
	if fs.UsedRatio() > 0.70 {
		t.Errorf("usage %.1f%% after prune, want at most 70%%", 100*fs.UsedRatio())
	}
	for _, s := range list[len(list)-3:] {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s))); err != nil {
			t.Errorf("newest checkpoint %d gone: %v", s, err)
		}
	}
	for i, d := range res.Deleted {
		if d.Step != int64(list[i]) {
			t.Errorf("deleted[%d] = step %d, want oldest first (%d)", i, d.Step, list[i])
		}
	}
	// Alertmanager repeats itself: the same notification again is a no-op.
	before := names(t, dir)
	code, r = post(t, h.srv.URL, alertBody("firing", map[string]string{"alertname": "CheckpointDiskPruneNeeded", "target": "train"}), nil)
	if code != http.StatusOK || r.Results[0].Outcome != pruner.ResultNoop || len(r.Results[0].Deleted) != 0 {
		t.Errorf("repeat: code %d %+v", code, r)
	}
	if after := names(t, dir); len(after) != len(before) {
		t.Errorf("repeat deleted files: %d → %d", len(before), len(after))
	}
	if got := value(t, h.reg, "checkpoint_prune_runs_total", map[string]string{"target": "train", "trigger": pruner.TriggerWebhook, "result": pruner.ResultOK}); got != 1 {
		t.Errorf("runs{result=ok} = %v, want 1", got)
	}
	if got := value(t, h.reg, "checkpoint_prune_runs_total", map[string]string{"target": "train", "trigger": pruner.TriggerWebhook, "result": pruner.ResultNoop}); got != 1 {
		t.Errorf("runs{result=noop} = %v, want 1", got)
	}
	if got := value(t, h.reg, "checkpoint_webhook_alerts_total", map[string]string{"status": "firing", "outcome": OutcomePruned}); got != 1 {
		t.Errorf("alerts{pruned} = %v, want 1", got)
	}
}

func TestWebhookDryRun(t *testing.T) {
	dir, _ := fillTmpfs(t)
	p := defaultPolicy
	p.Execute = false
	h := newHarness(t, dir, p)
	before := names(t, dir)
	code, r := post(t, h.srv.URL, alertBody("firing", map[string]string{"target": "train"}), nil)
	if code != http.StatusOK || r.Results[0].Outcome != pruner.ResultDryRun || len(r.Results[0].Deleted) == 0 {
		t.Fatalf("code %d %+v", code, r)
	}
	if after := names(t, dir); len(after) != len(before) {
		t.Errorf("dry run deleted %d files", len(before)-len(after))
	}
}

func TestWebhookMountpointAlert(t *testing.T) {
	dir, _ := fillTmpfs(t)
	h := newHarness(t, dir, defaultPolicy)
	fs, _ := targetdir.StatFS(dir)
	labels := map[string]string{"alertname": "NodeFilesystemAlmostOutOfSpace", "mountpoint": fs.Mountpoint, "fstype": "tmpfs", "instance": "node:9100"}
	code, r := post(t, h.srv.URL, alertBody("firing", labels), nil)
	if code != http.StatusOK || len(r.Results) != 1 || len(r.Results[0].Deleted) == 0 {
		t.Fatalf("code %d %+v", code, r)
	}
	// Another mount point selects nothing.
	code, r = post(t, h.srv.URL, alertBody("firing", map[string]string{"mountpoint": "/elsewhere"}), nil)
	if code != http.StatusOK || len(r.Results) != 0 || r.Alerts[0].Ignored == "" {
		t.Errorf("unrelated mountpoint: %d %+v", code, r)
	}
}

func TestWebhookBadRequestsDeleteNothing(t *testing.T) {
	dir := t.TempDir()
	kerasFiles(t, dir, 100, 100, 200, 300, 400, 500)
	p := defaultPolicy
	p.Low = checkpoint.MustWatermark("1%") // any prune would delete
	h := newHarness(t, dir, p)
	good := alertBody("firing", map[string]string{"target": "train"})
	tests := []struct {
		name   string
		method string
		body   []byte
		mod    func(r *http.Request)
		code   int
	}{
		{"GET", http.MethodGet, nil, nil, 405},
		{"PUT", http.MethodPut, good, nil, 405},
		{"no token", http.MethodPost, good, func(r *http.Request) { r.Header.Del("Authorization") }, 401},
		{"wrong token", http.MethodPost, good, func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, 401},
		{"basic instead of bearer", http.MethodPost, good, func(r *http.Request) { r.SetBasicAuth("u", token) }, 401},
		{"text/plain", http.MethodPost, good, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, 415},
		{"no content type", http.MethodPost, good, func(r *http.Request) { r.Header.Del("Content-Type") }, 415},
		{"malformed", http.MethodPost, []byte(`{"version": "4", "alerts": [`), nil, 400},
		{"trailing garbage", http.MethodPost, append(append([]byte{}, good...), []byte(`{}`)...), nil, 400},
		{"version 3", http.MethodPost, bytes.Replace(good, []byte(`"version":"4"`), []byte(`"version":"3"`), 1), nil, 400},
		{"bad alert status", http.MethodPost, bytes.Replace(good, []byte(`"status":"firing"}]`), []byte(`"status":"burning"}]`), 1), nil, 400},
		{"too large", http.MethodPost, append(good[:len(good)-1], []byte(`,"pad":"`+strings.Repeat("x", 2<<20)+`"}`)...), nil, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, h.srv.URL, bytes.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			if tt.mod != nil {
				tt.mod(req)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("status %d, want %d (%s)", resp.StatusCode, tt.code, body)
			}
			if !strings.Contains(string(body), `"error"`) {
				t.Errorf("no error message in %s", body)
			}
		})
	}
	// Unknown targets and label-less alerts are ignored, not acted on.
	for _, labels := range []map[string]string{{"target": "nope"}, {"alertname": "Other"}} {
		code, r := post(t, h.srv.URL, alertBody("firing", labels), nil)
		if code != 200 || len(r.Results) != 0 || r.Alerts[0].Ignored == "" {
			t.Errorf("labels %v: %d %+v", labels, code, r)
		}
	}
	// Resolved alerts are only counted.
	code, r := post(t, h.srv.URL, alertBody("resolved", map[string]string{"target": "train"}), nil)
	if code != 200 || len(r.Results) != 0 {
		t.Errorf("resolved: %d %+v", code, r)
	}
	if got := len(names(t, dir)); got != 5 {
		t.Errorf("%d of 5 checkpoints left after bad requests", got)
	}
	if got := value(t, h.reg, "checkpoint_webhook_alerts_total", map[string]string{"status": "resolved", "outcome": OutcomeIgnored}); got != 1 {
		t.Errorf("alerts{resolved,ignored} = %v", got)
	}
	if got := value(t, h.reg, "checkpoint_webhook_requests_total", map[string]string{"code": "401"}); got != 3 {
		t.Errorf("requests{code=401} = %v, want 3", got)
	}
}

func TestWebhookTokenFileReloaded(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(t.TempDir(), "token")
	must(t, os.WriteFile(tokFile, []byte("first"), 0o600))
	noTargets := pruner.NewService(testLogger(t), nil, nil, nil, nil)
	hook, err := NewWebhook(testLogger(t), noTargets, func() []*checkpoint.Snapshot { return nil }, nil, Options{TokenFile: tokFile})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	_ = dir
	try := func(tok string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(alertBody("resolved", nil)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if try("first") != 200 || try("second") != 401 {
		t.Fatal("first token not accepted or second accepted")
	}
	must(t, os.WriteFile(tokFile, []byte("second-token"), 0o600))
	future := time.Now().Add(time.Second)
	must(t, os.Chtimes(tokFile, future, future))
	if try("second-token") != 200 || try("first") != 401 {
		t.Error("token file change not picked up")
	}
	if _, err := NewWebhook(testLogger(t), noTargets, nil, nil, Options{TokenFile: filepath.Join(dir, "missing")}); err == nil {
		t.Error("missing token file accepted")
	}
}

// Alertmanager in HA pairs, with retries: many identical notifications at
// once, over HTTP, delete every checkpoint at most once, never touch the
// newest keep_last, and are all answered without a server error.
func TestWebhookConcurrentIdenticalPosts(t *testing.T) {
	dir, list := fillTmpfs(t)
	h := newHarness(t, dir, defaultPolicy)
	body := alertBody("firing", map[string]string{"target": "train"})
	var wg sync.WaitGroup
	var mu sync.Mutex
	deleted := map[int64]int{}
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, r := post(t, h.srv.URL, body, nil)
			mu.Lock()
			defer mu.Unlock()
			if code != http.StatusOK && code != http.StatusAccepted {
				t.Errorf("status %d", code)
			}
			for _, res := range r.Results {
				for _, d := range res.Deleted {
					deleted[d.Step]++
				}
			}
		}()
	}
	wg.Wait()
	// Results of a shared run are reported to every request that joined it,
	// so count real deletions by what is gone from disk.
	gone := 0
	for _, s := range list {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s))); os.IsNotExist(err) {
			gone++
		}
	}
	got := value(t, h.reg, "checkpoint_prune_deleted_checkpoints_total", map[string]string{"target": "train"})
	if int(got) != gone || gone == 0 {
		t.Errorf("deleted counter %v, gone from disk %d: a checkpoint was deleted twice or none was", got, gone)
	}
	for _, s := range list[len(list)-3:] {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s))); err != nil {
			t.Errorf("keep_last violated: %d gone", s)
		}
	}
	// How many runs the posts coalesced into depends on scheduling (see
	// TestTriggersCoalesceIntoOneFollowUp for the rule itself); every post
	// was answered by some run.
	runs := 0.0
	for _, r := range []string{pruner.ResultOK, pruner.ResultNoop, pruner.ResultInsufficient, pruner.ResultError} {
		runs += value(t, h.reg, "checkpoint_prune_runs_total", map[string]string{"target": "train", "trigger": pruner.TriggerWebhook, "result": r})
	}
	if runs < 1 || value(t, h.reg, "checkpoint_prune_runs_total", map[string]string{"target": "train", "trigger": pruner.TriggerWebhook, "result": pruner.ResultError}) != 0 {
		t.Errorf("%v runs, some with errors", runs)
	}
}

func TestAutonomousGuard(t *testing.T) {
	dir, _ := fillTmpfs(t)
	h := newHarness(t, dir, defaultPolicy)
	h.inv.OnScan(h.svc.Guard)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.inv.Run(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if value(t, h.reg, "checkpoint_prune_runs_total", map[string]string{"target": "train", "trigger": pruner.TriggerAutonomous, "result": pruner.ResultOK}) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	fs, _ := targetdir.StatFS(dir)
	if fs.UsedRatio() > 0.70 {
		t.Errorf("usage %.1f%%: the guard did not prune without an alert", 100*fs.UsedRatio())
	}
}

// A webhook prune is recorded with the alert that asked for it before the
// webhook answers.
func TestWebhookRecordsTheAlertThatAsked(t *testing.T) {
	dir, _ := fillTmpfs(t)
	h := newHarness(t, dir, defaultPolicy)
	rec := &memRecorder{}
	h.svc.RecordTo(rec)
	labels := map[string]string{"alertname": "CheckpointDiskPruneNeeded", "target": "train", "prune": "true"}
	code, resp := post(t, h.srv.URL, alertBody("firing", labels), nil)
	if code != http.StatusOK {
		t.Fatalf("code %d, response %+v", code, resp)
	}
	got := rec.all()
	if len(got) != 1 {
		t.Fatalf("%d reports when the webhook answered, want 1", len(got))
	}
	r := got[0]
	if r.Trigger != pruner.TriggerWebhook || len(r.Asked.Alerts) != 1 || r.Result.Outcome != pruner.ResultOK || len(r.Result.Deleted) == 0 ||
		r.Result.Target != "train" || r.Time.IsZero() {
		t.Fatalf("report %+v", r)
	}
	a := r.Asked.Alerts[0]
	if a.Name != "CheckpointDiskPruneNeeded" || a.Fingerprint != "c0ffee" || a.Labels["target"] != "train" {
		t.Errorf("alert %+v", a)
	}
}
