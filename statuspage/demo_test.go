package statuspage

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/history"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

var demoOut = flag.String("demo", "", "write the demo page (a simulated day of two training runs) in English and Chinese to this directory (make screenshots)")

// TestDemoPage writes the page of a simulated day: a run saving a 14 GiB
// checkpoint every half hour onto a 2 TiB disk that the webhook prunes at
// its high watermark, and a second run in dry run with offload. The
// README's screenshots are this page (make screenshots, which passes -demo);
// without -demo it is rendered into a temporary directory, so the demo
// keeps working.
func TestDemoPage(t *testing.T) {
	out := *demoOut
	if out == "" {
		out = t.TempDir()
	}
	now := time.Now().Truncate(time.Minute)
	f := &fixture{hist: history.New(history.Options{}), usage: NewUsage(time.Minute, 24*time.Hour), offload: map[string]Offload{}}
	const gib = 1 << 30
	size := uint64(2 << 40)

	// llama: saves every 30 minutes; the disk goes from 70% to 85%, then a
	// prune brings it back.
	llama := checkpoint.Target{Name: "llama-7b-sft", Path: "/data/llama-7b-sft/checkpoints", MinAge: 2 * time.Minute}
	snap := &checkpoint.Snapshot{Target: llama, Layout: "hf", Series: "checkpoint-{step}", Framework: "transformers Trainer", Time: now,
		FS: &targetdir.FSStats{Mountpoint: "/data", Device: "/dev/nvme1n1", FSType: "xfs", SizeBytes: size}}
	var used float64 = 0.70
	for m := 24 * 60; m >= 0; m-- {
		at := now.Add(-time.Duration(m) * time.Minute)
		used += 14.0 * gib / 30 / float64(size) // 14 GiB per half hour
		if used >= 0.85 {
			used = 0.70 + 0.004
			f.hist.Record(context.Background(), history.Run{Time: at, Target: llama.Name, Trigger: history.TriggerWebhook, Result: "ok",
				Alerts: []history.Alert{{Name: "CheckpointDiskPruneNeeded", Fingerprint: fmt.Sprintf("%016x", uint64(at.Unix())*2654435761),
					Labels: map[string]string{"alertname": "CheckpointDiskPruneNeeded", "target": llama.Name, "severity": "warning", "prune": "true", "instance": "gpu07:9866"}}},
				Deleted: []history.Item{
					{Name: fmt.Sprintf("checkpoint-%d", 1000*(24*60-m)/30), Step: int64(1000 * (24*60 - m) / 30), Bytes: 14 * gib, Reason: "oldest, to free space"},
					{Name: fmt.Sprintf("checkpoint-%d", 1000*(24*60-m)/30+1000), Step: int64(1000*(24*60-m)/30 + 1000), Bytes: 14 * gib, Reason: "oldest, to free space"},
				},
				PlannedBytes: 28 * gib, FreedBytes: 28 * gib, FreeSpaceChange: 28*gib - 300<<20})
		}
		s := *snap
		fs := *snap.FS
		fs.AvailBytes = uint64((1 - used) * float64(size))
		s.FS, s.Time = &fs, at
		s.Checkpoints = []checkpoint.Checkpoint{{Name: "x", Bytes: int64(used*float64(size)) - 900*gib, Entries: []checkpoint.Entry{{Name: "x"}}}}
		f.usage.Add(&s)
	}
	snap.FS.AvailBytes = uint64((1 - used) * float64(size))
	for i := range 12 {
		step := int64(46000 + 1000*i)
		c := checkpoint.Checkpoint{Name: fmt.Sprintf("checkpoint-%d", step), Step: step, Bytes: 14 * gib, ModTime: now.Add(-time.Duration(11-i)*30*time.Minute - 40*time.Second),
			Entries: []checkpoint.Entry{{Name: fmt.Sprintf("checkpoint-%d", step), Ino: uint64(step), Dir: true}}}
		switch i {
		case 3:
			c.Pinned = "best_model_checkpoint in checkpoint-56000/trainer_state.json"
		case 11:
			c.ModTime = now.Add(-20 * time.Second)
			c.Incomplete, c.Why = true, "lacks trainer_state.json that checkpoint-56000 has"
		}
		snap.Checkpoints = append(snap.Checkpoints, c)
	}
	f.snaps = append(f.snaps, snap)
	f.targets = append(f.targets, pruner.Target{Target: llama, Policy: pruner.Policy{KeepLast: 3, High: checkpoint.MustWatermark("85%"),
		Low: checkpoint.MustWatermark("70%"), Headroom: 10 * time.Minute, Execute: true}})

	// vit: dry run, offload to object storage, a torn last save.
	vit := checkpoint.Target{Name: "vit-pretrain", Path: "/scratch/vit/ckpt", MinAge: 2 * time.Minute, MaxBytes: 300 * gib}
	vs := &checkpoint.Snapshot{Target: vit, Layout: "torch", Series: "model_{step}.pt", Framework: "PyTorch", Time: now,
		FS: &targetdir.FSStats{Mountpoint: "/scratch", Device: "nfs01:/scratch", FSType: "nfs4", SizeBytes: 20 << 40, AvailBytes: 9 << 40}}
	for i := range 9 {
		step := int64(5000 * (i + 1))
		c := checkpoint.Checkpoint{Name: fmt.Sprintf("model_%d.pt", step), Step: step, Bytes: 38 * gib, ModTime: now.Add(-time.Duration(9-i) * 2 * time.Hour),
			Entries: []checkpoint.Entry{{Name: fmt.Sprintf("model_%d.pt", step), Ino: uint64(step)}}}
		state := "offloaded"
		if i >= 6 {
			state = "not offloaded"
		}
		if i == 6 {
			state = "running"
		}
		f.offload[c.Name] = Offload{State: state, Time: c.ModTime.Add(20 * time.Minute)}
		if i == 8 {
			c.Torn, c.Bytes = "zip end record missing, file ends at 21474836480", 20*gib
			c.ModTime = now.Add(-40 * time.Minute)
		}
		vs.Checkpoints = append(vs.Checkpoints, c)
	}
	f.snaps = append(f.snaps, vs)
	for m := 24 * 60; m >= 0; m -= 10 {
		s := *vs
		fs := *vs.FS
		fs.AvailBytes = uint64(float64(fs.SizeBytes) * (0.60 - 0.15*math.Sin(float64(m)/300)))
		s.FS, s.Time = &fs, now.Add(-time.Duration(m)*time.Minute)
		f.usage.Add(&s)
	}
	f.targets = append(f.targets, pruner.Target{Target: vit, Offload: confirmer{}, Policy: pruner.Policy{KeepLast: 3,
		High: checkpoint.MustWatermark("85%"), Low: checkpoint.MustWatermark("70%"), Headroom: 10 * time.Minute}})
	f.hist.Record(context.Background(), history.Run{Time: now.Add(-3 * time.Hour), Target: vit.Name, Trigger: history.TriggerCLI, Result: "dry_run",
		Deleted: []history.Item{{Name: "model_5000.pt", Step: 5000, Bytes: 38 * gib, Reason: "older than the newest 3"}}, PlannedBytes: 38 * gib})

	p := f.page(t, Options{})
	p.src.Now = func() time.Time { return now }
	for _, lang := range []string{langEN, langZH} {
		body, _ := getPage(t, p, "/?lang="+lang, "")
		if err := os.WriteFile(filepath.Join(out, "status-"+lang+".html"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// confirmer marks a demo target as offloading (the page asks Sources.Offload).
type confirmer struct{}

func (confirmer) Confirmed(context.Context, *checkpoint.Snapshot) func(checkpoint.Checkpoint) bool {
	return func(checkpoint.Checkpoint) bool { return false }
}
