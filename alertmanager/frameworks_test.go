package alertmanager

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// firing posts a firing prune alert for the harness's target and returns its
// result.
func firing(t *testing.T, h *harness) pruner.Result {
	t.Helper()
	code, r := post(t, h.srv.URL, alertBody("firing", map[string]string{"alertname": "CheckpointDiskPruneNeeded", "target": "train"}), nil)
	if code != http.StatusOK || len(r.Results) != 1 {
		t.Fatalf("code %d, response %+v", code, r)
	}
	return r.Results[0]
}

// Issue #11 item 8 on the webhook path: a run resumed from an earlier step
// writes low steps after old high ones; a prune while the disk fills must
// keep the new saves (the N most recently written) as well as the N highest
// steps (docs/architecture.md, invariant 1).
func TestWebhookResumedRunKeepsNewSaves(t *testing.T) {
	dir := tmpfs(t, "64m")
	var high []int
	for s := 1000; ; s += 100 {
		if fs, _ := targetdir.StatFS(dir); fs.UsedRatio() >= 0.86 {
			break
		}
		kerasFiles(t, dir, 1<<20, s)
		mt := time.Now().Add(-3*time.Hour + time.Duration(s)*time.Second/10) // all before the resumed saves
		os.Chtimes(filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s)), mt, mt)
		high = append(high, s)
	}
	// Resumed from step 100: three new saves, written last.
	resumedSteps := []int{200, 300, 400}
	for i, s := range resumedSteps {
		kerasFiles(t, dir, 1<<20, s)
		mt := time.Now().Add(-time.Duration(10-i) * time.Minute)
		os.Chtimes(filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s)), mt, mt)
	}
	h := newHarness(t, dir, defaultPolicy)
	res := firing(t, h)
	if res.Outcome != pruner.ResultOK || len(res.Deleted) == 0 {
		t.Fatalf("result %+v", res)
	}
	left := names(t, dir)
	for _, s := range append(resumedSteps, high[len(high)-3:]...) {
		if n := fmt.Sprintf("checkpoint_step_%d.keras", s); !slices.Contains(left, n) {
			t.Errorf("%s deleted: it is among the newest 3 by step or by write time (left %v)", n, left)
		}
	}
}

// Issue #11 item 2 on the webhook path: the disk fills exactly while the
// Trainer writes checkpoint-N, which has no trainer_state.json yet. The best
// checkpoint named by the newest complete trainer state stays, and so does
// the save in progress.
func TestWebhookMidSaveHFKeepsBest(t *testing.T) {
	dir := tmpfs(t, "64m")
	state := func(best string) string { return fmt.Sprintf(`{"best_model_checkpoint": "out/%s"}`, best) }
	write := func(p string, data []byte, mt time.Time) {
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, data, 0o644))
		os.Chtimes(p, mt, mt)
	}
	weights := make([]byte, 1<<20)
	for i := range weights {
		weights[i] = byte(i) | 1
	}
	step := 100
	for ; ; step += 100 {
		if fs, _ := targetdir.StatFS(dir); fs.UsedRatio() >= 0.88 {
			break
		}
		d := filepath.Join(dir, fmt.Sprintf("checkpoint-%d", step))
		mt := time.Now().Add(-3*time.Hour + time.Duration(step)*time.Second/10)
		write(filepath.Join(d, "model.safetensors"), weights, mt)
		write(filepath.Join(d, "trainer_state.json"), []byte(state("checkpoint-200")), mt)
		os.Chtimes(d, mt, mt)
	}
	inProgress := fmt.Sprintf("checkpoint-%d", step)
	mt := time.Now().Add(-3*time.Hour + time.Duration(step)*time.Second/10)
	write(filepath.Join(dir, inProgress, "model.safetensors"), weights, mt)
	os.Chtimes(filepath.Join(dir, inProgress), mt, mt)

	h := newHarness(t, dir, defaultPolicy)
	res := firing(t, h)
	if res.Outcome != pruner.ResultOK || len(res.Deleted) == 0 {
		t.Fatalf("result %+v", res)
	}
	left := names(t, dir)
	for _, n := range []string{"checkpoint-200", inProgress} {
		if !slices.Contains(left, n) {
			t.Errorf("%s deleted during a save (left %v)", n, left)
		}
	}
	for _, d := range res.Deleted {
		if d.Name == "checkpoint-200" || d.Name == inProgress {
			t.Errorf("deleted %s", d.Name)
		}
	}
}
