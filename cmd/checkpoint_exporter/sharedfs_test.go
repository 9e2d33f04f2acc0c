package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/hangfs"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// hfTree writes n Hugging Face checkpoint directories of files files each,
// saved a minute apart two days ago.
func hfTree(t *testing.T, dir string, n, files int) {
	t.Helper()
	base := time.Now().Add(-48 * time.Hour)
	for i := 1; i <= n; i++ {
		d := filepath.Join(dir, fmt.Sprintf("checkpoint-%d", i*100))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for j := range files {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("shard-%03d.bin", j)), make([]byte, 1024), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		mt := base.Add(time.Duration(i) * time.Minute)
		for _, e := range mustReadDir(t, d) {
			os.Chtimes(filepath.Join(d, e), mt, mt)
		}
		os.Chtimes(d, mt, mt)
	}
}

func mustReadDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// checkpointsIn lists the names in dir that look like checkpoints.
func checkpointsIn(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, n := range mustReadDir(t, dir) {
		if strings.HasPrefix(n, "checkpoint") {
			out = append(out, n)
		}
	}
	return out
}

func needFUSE(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to mount FUSE")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Missing(t, "needs /dev/fuse")
	}
}

// alertTargets sends a firing alert for targets to the webhook and returns the
// per-target results of the answer.
func alertTargets(t *testing.T, base string, client *http.Client, targets ...string) (int, map[string]string) {
	t.Helper()
	code, res, err := sendAlert(base, client, targets...)
	if err != nil {
		t.Fatalf("webhook for %v: %v", targets, err)
	}
	return code, res
}

func sendAlert(base string, client *http.Client, targets ...string) (int, map[string]string, error) {
	var alerts []string
	for _, tg := range targets {
		alerts = append(alerts, fmt.Sprintf(`{"status":"firing","labels":{"alertname":"CheckpointDiskPruneNeeded","target":%q},"fingerprint":"f-%s"}`, tg, tg))
	}
	body := `{"version":"4","status":"firing","receiver":"pruner","alerts":[` + strings.Join(alerts, ",") + `]}`
	resp, err := client.Post(base+"/webhook", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Results []struct{ Target, Result, Error string }
	}
	json.NewDecoder(resp.Body).Decode(&r)
	out := map[string]string{}
	for _, x := range r.Results {
		out[x.Target] = x.Result
	}
	return resp.StatusCode, out, nil
}

// One target whose filesystem hangs in the middle of a scan and another that
// hangs in the middle of deleting a checkpoint: /metrics keeps answering,
// both report checkpoint_dir_up 0 and their prunes fail at once, a third
// target keeps scanning and pruning, and after the filesystems answer again
// everything recovers without a restart.
func TestHungFilesystemsDoNotStopTheProcess(t *testing.T) {
	needFUSE(t)
	root := t.TempDir()
	backA, backB, dirC := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c")
	for _, d := range []string{backA, backB, dirC} {
		os.Mkdir(d, 0o755)
	}
	hfTree(t, backA, 6, 20)
	hfTree(t, backB, 6, 50)
	hfTree(t, dirC, 6, 5)
	hA := hangfs.Mount(t, backA, filepath.Join(root, "mnt-a"), hangfs.Options{})
	hB := hangfs.Mount(t, backB, filepath.Join(root, "mnt-b"), hangfs.Options{})

	cfg := filepath.Join(root, "c.yml")
	var b strings.Builder
	b.WriteString("scan_interval: 200ms\ntargets:\n")
	for _, tg := range [][2]string{{"a", hA.Dir}, {"b", hB.Dir}, {"c", dirC}} {
		// The guard never fires (99%); an alert prunes all it may (1%).
		// hangfs caches nothing (attribute_cache: 0s), or the pruner
		// would refuse a FUSE filesystem it does not know.
		fmt.Fprintf(&b, "  - name: %s\n    path: %s\n    keep_last: 2\n    prune: {execute: true, high_watermark: 99%%, low_watermark: 1%%, attribute_cache: 0s}\n", tg[0], tg[1])
	}
	os.WriteFile(cfg, []byte(b.String()), 0o644)
	base, logs := serve(t, "--config.file="+cfg, "--webhook.allow-unauthenticated", "--webhook.timeout=2s",
		"--collector.hang-timeout=1s", "--collector.statfs-timeout=1s", "--collector.full-rescan-interval=-1s")
	for _, tg := range []string{"a", "b", "c"} {
		scrapeUntil(t, base+"/metrics", fmt.Sprintf(`checkpoint_dir_up{target=%q} 1`, tg))
	}
	client := &http.Client{Timeout: 60 * time.Second}

	// a hangs at the third directory it opens: inside a scan's walk.
	hA.HangOn(hangfs.OpOpendir, 3)
	// b hangs at the tenth unlink: inside the removal of a checkpoint.
	hB.HangOn(hangfs.OpUnlink, 10)
	go sendAlert(base, client, "b") // answers 202 after --webhook.timeout; the prune goes on
	hA.WaitBlocked(t, 30*time.Second)
	hB.WaitBlocked(t, 30*time.Second)

	// Scrapes go on: every one answers, and both hung targets go down.
	var lat []time.Duration
	deadline := time.Now().Add(60 * time.Second)
	for {
		start := time.Now()
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			t.Fatalf("scrape %d during the hang: %v\nlogs:\n%s", len(lat), err, logs.String())
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		down := strings.Contains(body.String(), `checkpoint_dir_up{target="a"} 0`) &&
			strings.Contains(body.String(), `checkpoint_dir_up{target="b"} 0`)
		if down && len(lat) >= 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hung targets not reported down after %d scrapes:\n%s", len(lat), body.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	slices.Sort(lat)
	t.Logf("%d scrapes while two filesystems hang: p50 %s, p99 %s, max %s", len(lat),
		lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])

	// Prunes of the hung targets fail at once; the third target is pruned.
	start := time.Now()
	code, res := alertTargets(t, base, client, "a", "b", "c")
	t.Logf("webhook for a, b, c during the hang answered %d in %s: %v", code, time.Since(start), res)
	if res["a"] != "error" || res["b"] != "error" {
		t.Errorf("hung targets' prunes: a=%q b=%q, want error", res["a"], res["b"])
	}
	if got := checkpointsIn(t, dirC); len(got) != 2 {
		t.Errorf("c after its prune: %v, want the newest 2", got)
	}
	// ...and keeps being scanned.
	os.Mkdir(filepath.Join(dirC, "checkpoint-700"), 0o755)
	scrapeUntil(t, base+"/metrics", `checkpoint_dir_checkpoints{target="c"} 3`)
	if !strings.Contains(logs.String(), "its filesystem does not answer") {
		t.Errorf("no log line for the hung scan:\n%s", logs.String())
	}

	// Release: both recover without a restart, b's prune finishes, a prunes.
	hA.Release()
	hB.Release()
	scrapeUntil(t, base+"/metrics", `checkpoint_dir_up{target="a"} 1`)
	scrapeUntil(t, base+"/metrics", `checkpoint_dir_up{target="b"} 1`)
	waitUntil(t, "b's interrupted prune to finish", func() bool { return len(checkpointsIn(t, backB)) == 2 })
	if _, res := alertTargets(t, base, client, "a"); res["a"] == "error" {
		t.Errorf("a after recovery: %v", res)
	}
	if got := checkpointsIn(t, backA); len(got) != 2 {
		t.Errorf("a after its prune: %v, want the newest 2", got)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deletedNames returns the names a process logged as deleted.
func deletedNames(logs string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `msg="deleted checkpoint"`) {
			continue
		}
		if _, rest, ok := strings.Cut(line, " name="); ok {
			out = append(out, strings.Fields(rest)[0])
		}
	}
	return out
}

// On a filesystem whose flock fails with ENOSYS (Lustre noflock), prunes
// still run, through the lock file, and two at once delete each checkpoint
// exactly once. Before the lock file, every prune there failed.
func TestPruneWithoutFlockUsesLockFile(t *testing.T) {
	needFUSE(t)
	h := hangfs.Mount(t, seedTree(t), filepath.Join(t.TempDir(), "mnt"), hangfs.Options{NoFlock: true})
	// hangfs caches nothing: said so, or the pruner refuses a FUSE
	// filesystem it does not know (and a lock file on it).
	cfg := filepath.Join(t.TempDir(), "c.yml")
	must(t, os.WriteFile(cfg, []byte("targets:\n  - name: mnt\n    path: "+h.Dir+"\n    prune: {attribute_cache: 0s}\n"), 0o644))
	outs := make(chan cliRun, 2)
	for range 2 {
		go func() { outs <- runBinary("prune", "--config.file="+cfg, "--keep=3", "--execute") }()
	}
	seen := map[string]int{}
	for range 2 {
		o := <-outs
		if o.err != nil || o.code != 0 {
			t.Errorf("prune exited %d (%v):\n%s\n%s", o.code, o.err, o.stdout, o.stderr)
		}
		if !strings.Contains(o.stderr, "no flock on this filesystem") {
			t.Errorf("no word of the lock file fallback:\n%s", o.stderr)
		}
		for _, n := range deletedNames(o.stderr) {
			seen[n]++
		}
	}
	if len(seen) != 247 {
		t.Errorf("%d checkpoints deleted, want 247", len(seen))
	}
	for n, c := range seen {
		if c != 1 {
			t.Errorf("%s deleted %d times", n, c)
		}
	}
	if got := remaining(t, h.Dir); len(got) != 4 || got[2] != "checkpoint_step_25000.keras" {
		t.Errorf("left %v", got)
	}
}

// kerasTree writes n Keras checkpoints of size bytes, a minute apart, an
// hour ago.
func kerasTree(t *testing.T, dir string, n, size int) {
	t.Helper()
	base := time.Now().Add(-time.Hour)
	for i := 1; i <= n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", i*100))
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := base.Add(time.Duration(i) * time.Minute)
		os.Chtimes(p, mt, mt)
	}
}

// Three exporters on one shared directory, all receiving the same alert
// again and again, and a prune --execute at the same time: together they
// delete exactly what one pruner deletes, keep_last holds at every moment,
// and none of them counts an error.
func TestThreeExportersOneDirectory(t *testing.T) {
	root := t.TempDir()
	ref, shared := filepath.Join(root, "ref"), filepath.Join(root, "shared")
	testenv.MountTmpfs(t, ref, "64m")
	testenv.MountTmpfs(t, shared, "64m")
	const n, keepLast = 20, 3
	for _, d := range []string{ref, shared} {
		kerasTree(t, d, n, 2<<20) // 40 MiB of 64: a prune to 39 MiB free deletes about 8
	}
	config := func(dir string) string {
		cfg := filepath.Join(root, filepath.Base(dir)+".yml")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`scan_interval: 100ms
targets:
  - name: shared
    path: %s
    keep_last: %d
    prune: {execute: true, high_watermark: 30MiB, low_watermark: 39MiB, headroom: 0s}
`, dir, keepLast)), 0o644)
		return cfg
	}
	pruneCmd := func(cfg string) *exec.Cmd {
		return exec.Command(binary, "prune", "--config.file="+cfg, "--free-target=39MiB", "--execute")
	}
	if out, err := pruneCmd(config(ref)).CombinedOutput(); err != nil {
		t.Fatalf("reference prune: %v\n%s", err, out)
	}
	want := n - len(checkpointsIn(t, ref))
	if want <= 0 || want >= n-keepLast {
		t.Fatalf("reference prune deleted %d: the test needs a goal it reaches before keep_last", want)
	}

	cfg := config(shared)
	var bases []string
	logs := map[string]*syncBuffer{}
	for range 3 {
		base, log := serve(t, "--config.file="+cfg, "--webhook.allow-unauthenticated")
		scrapeUntil(t, base+"/metrics", `checkpoint_dir_up{target="shared"} 1`)
		bases = append(bases, base)
		logs[base] = log
	}
	newest := []string{"checkpoint_step_1800.keras", "checkpoint_step_1900.keras", "checkpoint_step_2000.keras"}
	stop := make(chan struct{})
	violations := make(chan string, 1)
	sampled := make(chan int)
	go func() {
		samples := 0
		defer func() { sampled <- samples }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, name := range newest {
				if _, err := os.Lstat(filepath.Join(shared, name)); err != nil {
					select {
					case violations <- fmt.Sprintf("sample %d: %s: %v", samples, name, err):
					default:
					}
				}
			}
			samples++
			time.Sleep(2 * time.Millisecond)
		}
	}()

	client := &http.Client{Timeout: 60 * time.Second}
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if out, err := pruneCmd(cfg).CombinedOutput(); err != nil {
			errs <- fmt.Errorf("concurrent prune --execute: %v\n%s", err, out)
		}
	}()
	for range 5 { // Alertmanager repeats the notification to every exporter
		for _, base := range bases {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, res, err := sendAlert(base, client, "shared")
				if err != nil || code >= 500 || res["shared"] == "error" {
					errs <- fmt.Errorf("webhook %s: code %d %v %v", base, code, res, err)
				}
			}()
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	close(stop)
	samples := <-sampled
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	select {
	case v := <-violations:
		t.Errorf("keep_last broken: %s", v)
	default:
	}
	if got := n - len(checkpointsIn(t, shared)); got != want {
		t.Errorf("three exporters and a prune deleted %d checkpoints together, one pruner deletes %d", got, want)
	}
	for _, base := range bases {
		body := get(t, base+"/metrics")
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "checkpoint_prune_runs_total{") && strings.Contains(line, `result="error"`) && !strings.HasSuffix(line, " 0") {
				t.Errorf("%s: %s\nlogs:\n%s", base, line, logs[base].String())
			}
		}
	}
	t.Logf("%d deletions, as one pruner's; keep_last held at %d samples", want, samples)
}
