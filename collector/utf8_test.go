package collector

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// Label values that are not valid UTF-8 (a directory, series or mount point
// named in another encoding) must not fail the scrape: every target is still
// exported, with the invalid bytes replaced.
func TestInvalidUTF8LabelsDoNotFailTheScrape(t *testing.T) {
	t0 := time.Unix(1_732_000_000, 0)
	bad := &checkpoint.Snapshot{
		Target: checkpoint.Target{Name: "latin1", Path: "/data/caf\xe9/models"},
		Layout: "keras", Series: "mod\xe8le_{step}.keras",
		Checkpoints: []checkpoint.Checkpoint{{Name: "mod\xe8le_1.keras", Step: 1, Bytes: 1 << 20, ModTime: t0}},
		FS:          &targetdir.FSStats{Mountpoint: "/mnt/caf\xe9", Device: "/dev/\xff", FSType: "ext4", SizeBytes: 1 << 30, AvailBytes: 1 << 29},
		Time:        t0,
	}
	good := &checkpoint.Snapshot{Target: checkpoint.Target{Name: "fine", Path: "/data/fine"}, Layout: "keras", Time: t0}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(New(fixed{bad, good}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather failed: %v", err)
	}
	up := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if !utf8.ValidString(l.GetValue()) {
					t.Errorf("%s: label %s=%q is not valid UTF-8", mf.GetName(), l.GetName(), l.GetValue())
				}
				if mf.GetName() == "checkpoint_dir_up" && l.GetName() == "target" {
					up[l.GetValue()] = true
				}
				if l.GetName() == "path" && !strings.HasPrefix(l.GetValue(), "/data/caf") && l.GetValue() != "/data/fine" {
					t.Errorf("path label %q lost its valid part", l.GetValue())
				}
			}
		}
	}
	if !up["latin1"] || !up["fine"] {
		t.Errorf("checkpoint_dir_up exported for %v, want both targets", up)
	}
}
