package collector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/layout"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// Target metrics are built once per snapshot, and every new scan is seen at
// the next scrape: rendering is cached per snapshot, never beyond it.
func TestRenderedOncePerScan(t *testing.T) {
	dir := t.TempDir()
	save := func(step int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", step)), make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	save(100)
	save(200)
	sc, err := checkpoint.NewScanner(checkpoint.Target{Name: "run", Path: dir, Layout: layout.Auto}, checkpoint.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inv := checkpoint.NewInventory(log.NewNopLogger(), time.Hour, sc)
	c := New(inv)
	expect := func(n, latest int) {
		t.Helper()
		want := fmt.Sprintf("# HELP checkpoint_dir_checkpoints Number of complete checkpoints in the target directory%s.\n"+
			"# TYPE checkpoint_dir_checkpoints gauge\ncheckpoint_dir_checkpoints{target=\"run\"} %d\n"+
			"# HELP checkpoint_dir_latest_step Step of the newest complete checkpoint%s.\n"+
			"# TYPE checkpoint_dir_latest_step gauge\ncheckpoint_dir_latest_step{target=\"run\"} %d\n", cached, n, cached, latest)
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), "checkpoint_dir_checkpoints", "checkpoint_dir_latest_step"); err != nil {
			t.Error(err)
		}
	}

	inv.ScanAll(context.Background())
	first := inv.Snapshots()[0]
	expect(2, 200)
	expect(2, 200) // the second scrape of the same snapshot reuses the rendering
	if len(c.rendered) != 1 || c.rendered[first] == nil {
		t.Fatalf("rendering not cached for the current snapshot: %v", c.rendered)
	}
	cachedMetrics := c.rendered[first]
	expect(2, 200)
	if &c.rendered[first][0] != &cachedMetrics[0] {
		t.Error("an unchanged snapshot was rendered again")
	}

	save(300)
	inv.ScanAll(context.Background())
	expect(3, 300) // a new scan is seen at the next scrape
	if _, stale := c.rendered[first]; stale || len(c.rendered) != 1 {
		t.Errorf("the replaced snapshot's rendering is still kept (%d renderings)", len(c.rendered))
	}
}

// BenchmarkCollect: a scrape of 50 targets whose snapshots did not change
// since the last scrape (the common case: scans are minutes apart, scrapes
// seconds).
func BenchmarkCollect(b *testing.B) {
	var snaps fixed
	for i := range 50 {
		s := &checkpoint.Snapshot{Target: checkpoint.Target{Name: fmt.Sprint("t", i), Path: "/data"},
			FS: &targetdir.FSStats{Mountpoint: "/data", SizeBytes: 1 << 40, AvailBytes: 1 << 39}, Time: time.Now()}
		for step := range 20 {
			s.Checkpoints = append(s.Checkpoints, checkpoint.Checkpoint{Step: int64(step), Bytes: 1 << 30, ModTime: time.Now().Add(time.Duration(step) * time.Minute)})
		}
		snaps = append(snaps, s)
	}
	c := New(snaps)
	ch := make(chan prometheus.Metric, 2048)
	b.ReportAllocs()
	for b.Loop() {
		c.Collect(ch)
		for len(ch) > 0 {
			<-ch
		}
	}
}

// A configuration reload replaces a changed target's scanner: its cached
// rendering goes with the old snapshot, and the next scrape after the new
// scanner's first scan shows the new configuration.
func TestRenderingFollowsReload(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "checkpoint_step_100.keras"), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	scanner := func(maxBytes uint64) *checkpoint.Scanner {
		t.Helper()
		sc, err := checkpoint.NewScanner(checkpoint.Target{Name: "run", Path: dir, Layout: layout.Auto, MaxBytes: maxBytes}, checkpoint.ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	inv := checkpoint.NewInventory(log.NewNopLogger(), time.Hour, scanner(1<<20))
	c := New(inv)
	expect := func(want string) {
		t.Helper()
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), "checkpoint_dir_max_bytes"); err != nil {
			t.Error(err)
		}
	}
	const head = "# HELP checkpoint_dir_max_bytes The target's max_bytes: the disk usage its checkpoints are pruned down to; absent when not configured" + cached + ".\n# TYPE checkpoint_dir_max_bytes gauge\n"
	inv.ScanAll(context.Background())
	expect(head + "checkpoint_dir_max_bytes{target=\"run\"} 1.048576e+06\n")
	expect(head + "checkpoint_dir_max_bytes{target=\"run\"} 1.048576e+06\n") // cached

	inv.Update(time.Hour, scanner(2<<20)) // the reload
	expect("")                            // not scanned yet under the new configuration
	inv.ScanAll(context.Background())
	expect(head + "checkpoint_dir_max_bytes{target=\"run\"} 2.097152e+06\n")
}
