package alertmanager

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// old is an mtime well past any min_age.
var old = time.Now().Add(-time.Hour)

// kerasFiles writes checkpoint_step_N.keras files of size bytes for the
// given steps, saved a minute apart and an hour ago.
func kerasFiles(t *testing.T, dir string, size int, stepList ...int) {
	t.Helper()
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i) | 1
	}
	for i, s := range stepList {
		p := filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s))
		must(t, os.WriteFile(p, buf, 0o644))
		mt := old.Add(time.Duration(i) * time.Minute)
		must(t, os.Chtimes(p, mt, mt))
	}
}

// tmpfs mounts a small tmpfs for the test, which really returns ENOSPC.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	testenv.MountTmpfs(t, dir, size)
	return dir
}

func testLogger(t *testing.T) log.Logger {
	return log.NewLogfmtLogger(log.NewSyncWriter(testWriter{t}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// must fails the test at once on a setup error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// withPolicy gives every scanned target the same policy.
func withPolicy(p pruner.Policy, ts ...checkpoint.Target) []pruner.Target {
	out := make([]pruner.Target, len(ts))
	for i, t := range ts {
		out[i] = pruner.Target{Target: t, Policy: p}
	}
	return out
}

// value reads the value of the counter or gauge name with labels from reg
// (0 when the series does not exist).
func value(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				}
			}
		}
	}
	return 0
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

// memRecorder keeps the reports it gets.
type memRecorder struct {
	mu      sync.Mutex // guards reports
	reports []pruner.Report
}

func (m *memRecorder) Record(_ context.Context, r pruner.Report) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reports = append(m.reports, r)
	return nil
}

func (m *memRecorder) all() []pruner.Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.reports)
}

// names lists dir without the pruner's own lock file.
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, e := range es {
		if e.Name() != targetdir.LockFile {
			out = append(out, e.Name())
		}
	}
	return out
}
