package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

type fixed []*checkpoint.Snapshot

func (f fixed) Snapshots() []*checkpoint.Snapshot { return f }

func TestGoldenExposition(t *testing.T) {
	t0 := time.Unix(1_732_000_000, 0)
	fs := &targetdir.FSStats{Mountpoint: "/data", Device: "/dev/sdb1", FSType: "xfs", SizeBytes: 1000 << 20, AvailBytes: 300 << 20, Files: 1000, FilesFree: 900}
	ok := &checkpoint.Snapshot{
		Target: checkpoint.Target{Name: "caocrvfy", Path: "/data/caocrvfy/models", MaxBytes: 2 << 40},
		Layout: "keras", Series: "checkpoint_step_{step}.keras",
		Checkpoints: []checkpoint.Checkpoint{
			{Name: "checkpoint_step_100.keras", Step: 100, Bytes: 84 << 20, ModTime: t0},
			{Name: "checkpoint_step_200.keras", Step: 200, Bytes: 84 << 20, ModTime: t0.Add(60 * time.Second)},
			{Name: "checkpoint_step_300.keras", Step: 300, Bytes: 84 << 20, ModTime: t0.Add(180 * time.Second)},
			{Name: "checkpoint_step_350.keras", Step: 350, Bytes: 1 << 20, ModTime: t0.Add(190 * time.Second), Torn: "zip end record missing, file ends at 1048576"},
			{Name: "checkpoint_step_400.keras", Step: 400, Bytes: 10 << 20, ModTime: t0.Add(200 * time.Second), Incomplete: true},
		},
		FS: fs, ErrorsTotal: 2, Duration: 250 * time.Millisecond, Time: t0.Add(300 * time.Second),
	}
	down := &checkpoint.Snapshot{
		Target: checkpoint.Target{Name: "gone", Path: "/data/gone"}, Err: errors.New("open: no such file or directory"),
		Duration: time.Millisecond, Time: t0.Add(300 * time.Second),
	}
	c := New(fixed{ok, down})
	f, err := os.Open(filepath.Join("testdata", "golden.prom"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.CollectAndCompare(c, f); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// Issue #27: checkpoints no layout's rule names are counted like any
// (bytes, latest, save interval, saves until full) and told apart as
// uncertain; a time in their names orders them but is never exposed as a
// step.
func TestUnrecognisedCheckpoints(t *testing.T) {
	t0 := time.Unix(1_732_000_000, 0)
	fs := &targetdir.FSStats{Mountpoint: "/data", Device: "/dev/sdb1", FSType: "xfs", SizeBytes: 1000 << 20, AvailBytes: 300 << 20}
	snap := func(noStep bool) *checkpoint.Snapshot {
		s := &checkpoint.Snapshot{Target: checkpoint.Target{Name: "jax", Path: "/data/jax"}, Layout: "unrecognised", Series: "snapshot-{time}",
			FS: fs, Time: t0.Add(time.Hour)}
		for i, step := range []int64{1732000000, 1732000600, 1732001200} {
			s.Checkpoints = append(s.Checkpoints, checkpoint.Checkpoint{Name: fmt.Sprintf("snapshot-%d", step), Step: step, Bytes: 100 << 20,
				ModTime: t0.Add(time.Duration(i) * 10 * time.Minute), Uncertain: "no rule for this layout", Unrecognised: true, NoStep: noStep})
		}
		s.Checkpoints = append(s.Checkpoints, checkpoint.Checkpoint{Name: "snapshot-1732001800", Step: 1732001800, Bytes: 0,
			ModTime: t0.Add(30 * time.Minute), Incomplete: true, Uncertain: "no rule for this layout", Unrecognised: true, NoStep: noStep})
		return s
	}
	counted := `
# HELP checkpoint_dir_checkpoints Number of complete checkpoints in the target directory (from the last background scan).
# TYPE checkpoint_dir_checkpoints gauge
checkpoint_dir_checkpoints{target="jax"} 3
# HELP checkpoint_dir_uncertain_checkpoints Number of complete checkpoints counted in checkpoint_dir_checkpoints but never pruned because layout detection is not sure of them (no rule names the layout, or rules disagree); ` + "`checkpoint_exporter scan`" + ` prints the pattern: that settles it (from the last background scan).
# TYPE checkpoint_dir_uncertain_checkpoints gauge
checkpoint_dir_uncertain_checkpoints{target="jax"} 3
# HELP checkpoint_dir_bytes Disk usage in bytes of all checkpoints of the target (st_blocks*512, hard links once) (from the last background scan).
# TYPE checkpoint_dir_bytes gauge
checkpoint_dir_bytes{target="jax"} 3.145728e+08
# HELP checkpoint_dir_latest_bytes Disk usage in bytes of the newest complete checkpoint (from the last background scan).
# TYPE checkpoint_dir_latest_bytes gauge
checkpoint_dir_latest_bytes{target="jax"} 1.048576e+08
# HELP checkpoint_dir_latest_timestamp_seconds Modification time of the newest complete checkpoint, in seconds since the epoch (from the last background scan).
# TYPE checkpoint_dir_latest_timestamp_seconds gauge
checkpoint_dir_latest_timestamp_seconds{target="jax"} 1.7320012e+09
# HELP checkpoint_dir_save_interval_seconds Median time between the most recent saves; absent with fewer than two complete checkpoints (from the last background scan).
# TYPE checkpoint_dir_save_interval_seconds gauge
checkpoint_dir_save_interval_seconds{target="jax"} 600
# HELP checkpoint_dir_saves_until_full How many more checkpoints of the newest one's size fit in the filesystem's available space (from the last background scan).
# TYPE checkpoint_dir_saves_until_full gauge
checkpoint_dir_saves_until_full{target="jax"} 3
`
	steps := `
# HELP checkpoint_dir_latest_step Step of the newest complete checkpoint (from the last background scan).
# TYPE checkpoint_dir_latest_step gauge
checkpoint_dir_latest_step{target="jax"} 1.7320012e+09
# HELP checkpoint_dir_oldest_step Step of the oldest complete checkpoint (from the last background scan).
# TYPE checkpoint_dir_oldest_step gauge
checkpoint_dir_oldest_step{target="jax"} 1.732e+09
`
	names := []string{"checkpoint_dir_checkpoints", "checkpoint_dir_uncertain_checkpoints", "checkpoint_dir_bytes", "checkpoint_dir_latest_bytes",
		"checkpoint_dir_latest_timestamp_seconds", "checkpoint_dir_save_interval_seconds", "checkpoint_dir_saves_until_full",
		"checkpoint_dir_latest_step", "checkpoint_dir_oldest_step"}
	for _, tt := range []struct {
		name   string
		noStep bool
		want   string
	}{
		{"numbered by a time: no step series", true, counted},
		{"numbered by a step", false, counted + steps},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := New(fixed{snap(tt.noStep)})
			if err := testutil.CollectAndCompare(c, strings.NewReader(tt.want), names...); err != nil {
				t.Error(err)
			}
			if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
				t.Errorf("lint: %v %+v", err, problems)
			}
		})
	}
}

func TestTargetGoneLeavesNoSeries(t *testing.T) {
	snap := &checkpoint.Snapshot{Target: checkpoint.Target{Name: "a"}, Time: time.Now()}
	src := &mutable{[]*checkpoint.Snapshot{snap}}
	c := New(src)
	if n := testutil.CollectAndCount(c, "checkpoint_dir_up"); n != 1 {
		t.Fatalf("up series = %d, want 1", n)
	}
	src.s = nil
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("%d series after the target went away, want 0", n)
	}
}

type mutable struct{ s []*checkpoint.Snapshot }

func (m *mutable) Snapshots() []*checkpoint.Snapshot { return m.s }

// A scrape never waits on the filesystem: with a scan blocked in statfs, the
// scrape answers at once from the last snapshot.
func TestScrapeDoesNotWaitForScan(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "checkpoint_step_1.keras"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "checkpoint_step_2.keras"), []byte("x"), 0o644)
	block := make(chan struct{})
	defer close(block)
	calls := make(chan struct{}, 100)
	sc, err := checkpoint.NewScanner(checkpoint.Target{Name: "slow", Path: dir}, checkpoint.ScanOptions{
		StatFSTimeout: time.Hour,
		StatFS: func(p string) (targetdir.FSStats, error) {
			calls <- struct{}{}
			if len(calls) > 1 {
				<-block // every scan after the first hangs, like a dead NFS server
			}
			return targetdir.StatFS(p)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	inv := checkpoint.NewInventory(log.NewNopLogger(), 10*time.Millisecond, sc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inv.Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for len(calls) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(calls) < 2 {
		t.Fatal("second scan never started")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(inv))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatalf("scrape while a scan hangs: %v", err)
	}
	defer resp.Body.Close()
	body := new(strings.Builder)
	if _, err := io.Copy(body, resp.Body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body.String(), `checkpoint_dir_checkpoints{target="slow"} 2`) {
		t.Errorf("scrape did not serve the last snapshot:\n%s", body)
	}
}
