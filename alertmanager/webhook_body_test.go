package alertmanager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// floodBody is a webhook body of n alerts, each naming a different unknown
// target (the worst case for anything kept per distinct alert), every
// tenth one resolved.
func floodBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"version":"4","status":"firing","receiver":"flood","groupLabels":{},"alerts":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		status := "firing"
		if i%10 == 0 {
			status = "resolved"
		}
		fmt.Fprintf(&b, `{"status":%q,"labels":{"target":"t%d"}}`, status, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// lineCounter counts log lines.
type lineCounter struct {
	mu    sync.Mutex
	lines int
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

// A 23,000-alert body costs one summary log line, a bounded answer, and
// allocations of a small multiple of its size (before: one log line per
// alert, every alert echoed back, 46 times the body in allocations).
func TestWebhookFloodIsBounded(t *testing.T) {
	const n = 23000
	body := floodBody(n)
	logs := &lineCounter{}
	logger := log.NewLogfmtLogger(logs)
	reg := prometheus.NewRegistry()
	metrics := pruner.NewMetrics(reg, nil)
	hook, err := NewWebhook(logger, pruner.NewService(logger, nil, nil, nil, metrics), func() []*checkpoint.Snapshot { return nil }, reg,
		Options{MaxBodyBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		hook.ServeHTTP(rec, req)
		return rec
	}
	serve() // warm up: first-use allocations are not the request's cost
	logs.lines = 0
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rec := serve()
	runtime.ReadMemStats(&after)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	// Allocations, not live memory (TestDecodeAlertsStreams shows alerts
	// are not kept): the old path allocated 46 times the body.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16*uint64(len(body)) {
		t.Errorf("one request of %d bytes allocated %d bytes (%.1f×), want at most 16×", len(body), alloc, float64(alloc)/float64(len(body)))
	}
	if logs.lines > 1 {
		t.Errorf("one request wrote %d log lines, want one summary", logs.lines)
	}
	if rec.Body.Len() > 64<<10 {
		t.Errorf("answer is %d bytes, want at most 64 KiB", rec.Body.Len())
	}
	var resp Response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	counted := 0
	for _, m := range resp.Alerts {
		counted += max(m.Count, 1)
	}
	if counted+resp.AlertsOmitted != n {
		t.Errorf("answer accounts for %d alerts (+%d omitted), want %d", counted, resp.AlertsOmitted, n)
	}
	firing := value(t, reg, "checkpoint_webhook_alerts_total", map[string]string{"status": "firing", "outcome": OutcomeIgnored})
	resolved := value(t, reg, "checkpoint_webhook_alerts_total", map[string]string{"status": "resolved", "outcome": OutcomeIgnored})
	if firing != 2*n*9/10 || resolved != 2*n/10 {
		t.Errorf("alerts counted firing=%v resolved=%v over two requests, want %d and %d", firing, resolved, 2*n*9/10, 2*n/10)
	}
	if !strings.Contains(rec.Body.String(), `unknown target \"t1\"`) {
		t.Errorf("answer does not say why alerts were ignored: %.300s", rec.Body)
	}
}

// Alerts are handed on while the body is still arriving: the decoder never
// holds the whole body, so a request's live memory is bounded by its largest
// alert, not by how many it carries.
func TestDecodeAlertsStreams(t *testing.T) {
	pr, pw := io.Pipe()
	first := make(chan struct{})
	writeErr := make(chan error, 1)
	go func() {
		defer pw.Close()
		if _, err := io.WriteString(pw, `{"version":"4","alerts":[{"status":"firing","labels":{"target":"a"}},`); err != nil {
			writeErr <- err
			return
		}
		// The rest is only written once the first alert was handed on.
		select {
		case <-first:
		case <-time.After(30 * time.Second):
			writeErr <- errors.New("first alert not decoded before the rest of the body was sent")
			return
		}
		_, err := io.WriteString(pw, `{"status":"resolved","labels":{"target":"b"}}]}`)
		writeErr <- err
	}()
	var got []string
	_, err := DecodeAlerts(pr, func(a Alert) error {
		if len(got) == 0 {
			close(first)
		}
		got = append(got, a.Status+" "+a.Labels["target"])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if want := []string{"firing a", "resolved b"}; !slices.Equal(got, want) {
		t.Errorf("alerts %v, want %v", got, want)
	}
}
