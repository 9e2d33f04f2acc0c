package main

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/netfs"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// netfsTargets are the three layouts the issue saw deleted behind a cache:
// a directory per checkpoint, a file per checkpoint, and a checkpoint of
// several files.
var netfsTargets = []string{"hf", "keras", "tf"}

// netfsTree writes, in back, hf/checkpoint-100..500 (directories),
// keras/checkpoint_step_100..500.keras and tf/ckpt-1..5 (index and data,
// with TensorFlow's state file), all saved two days ago, a minute apart.
func netfsTree(t *testing.T, back string) {
	t.Helper()
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	w, _ := zw.Create("model.weights.h5")
	w.Write(make([]byte, 4096))
	must(t, zw.Close())
	base := time.Now().Add(-48 * time.Hour)
	for i := 1; i <= 5; i++ {
		mt := base.Add(time.Duration(i) * time.Minute)
		files := map[string][]byte{
			fmt.Sprintf("hf/checkpoint-%d/pytorch_model.bin", i*100):           zipped.Bytes(),
			fmt.Sprintf("hf/checkpoint-%d/trainer_state.json", i*100):          []byte(`{"global_step": 1}`),
			fmt.Sprintf("keras/checkpoint_step_%d.keras", i*100):               zipped.Bytes(),
			fmt.Sprintf("tf/ckpt-%d.index", i):                                 []byte("not a bundle"),
			fmt.Sprintf("tf/ckpt-%d.data-00000-of-00001", i):                   make([]byte, 4096),
			fmt.Sprintf("hf/checkpoint-%d/optimizer/state.bin", i*100):         make([]byte, 4096),
			fmt.Sprintf("hf/checkpoint-%d/optimizer/shard-00001.bin", i*100):   make([]byte, 4096),
			fmt.Sprintf("hf/checkpoint-%d/optimizer/nested/deeper.bin", i*100): make([]byte, 512),
		}
		for name, data := range files {
			p := filepath.Join(back, name)
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.WriteFile(p, data, 0o644))
		}
		for _, p := range []string{"optimizer/nested/deeper.bin", "optimizer/nested", "optimizer/state.bin", "optimizer/shard-00001.bin",
			"optimizer", "pytorch_model.bin", "trainer_state.json", ""} {
			must(t, os.Chtimes(filepath.Join(back, fmt.Sprintf("hf/checkpoint-%d", i*100), p), mt, mt))
		}
		for _, p := range []string{fmt.Sprintf("keras/checkpoint_step_%d.keras", i*100), fmt.Sprintf("tf/ckpt-%d.index", i), fmt.Sprintf("tf/ckpt-%d.data-00000-of-00001", i)} {
			must(t, os.Chtimes(filepath.Join(back, p), mt, mt))
		}
	}
	must(t, os.WriteFile(filepath.Join(back, "tf/checkpoint"), []byte("model_checkpoint_path: \"ckpt-5\"\n"), 0o644))
}

// netfsTouched are the files inside the oldest checkpoint of each target
// that the other node rewrites.
var netfsTouched = []string{"hf/checkpoint-100/optimizer/nested/deeper.bin", "keras/checkpoint_step_100.keras", "tf/ckpt-1.data-00000-of-00001"}

// otherNode rewrites files in place through the backing directory, as a
// job on another node does, until stopped. It never creates a file: one
// that is gone is recorded.
type otherNode struct {
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex // guards writes and gone
	writes int
	gone   []string
}

func rewriteFrom(back string, rel []string) *otherNode {
	o := &otherNode{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(o.done)
		for {
			for _, r := range rel {
				p := filepath.Join(back, r)
				data, err := os.ReadFile(p)
				if err == nil {
					var f *os.File
					f, err = os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
					if err == nil {
						_, err = f.Write(data)
						f.Close()
					}
				}
				o.mu.Lock()
				if err == nil {
					o.writes++
				} else if errors.Is(err, os.ErrNotExist) {
					o.gone = append(o.gone, r)
				}
				o.mu.Unlock()
			}
			select {
			case <-o.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return o
}

func (o *otherNode) end(t *testing.T) {
	t.Helper()
	close(o.stop)
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.writes == 0 {
		t.Fatal("the other node never wrote")
	}
	if len(o.gone) > 0 {
		t.Errorf("files the other node was writing were deleted under it: %v", dedupe(o.gone))
	}
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// netfsConfig writes a configuration with the three targets under mnt,
// keep_last 3, pruning on (the webhook's goal: max_bytes 1, so everything
// prunable goes; the watermarks are out of reach), with extra prune keys.
func netfsConfig(t *testing.T, dir, mnt, prune string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("targets:\n")
	for _, name := range netfsTargets {
		fmt.Fprintf(&b, "  - name: %s\n    path: %s\n    keep_last: 3\n    max_bytes: 1\n    prune: {execute: true, high_watermark: 99.9%%, low_watermark: 99.8%%%s}\n",
			name, filepath.Join(mnt, name), prune)
	}
	cfg := filepath.Join(dir, "exporter.yml")
	must(t, os.WriteFile(cfg, []byte(b.String()), 0o644))
	return cfg
}

// checkNetfsTree checks back after the prunes: the touched checkpoints and
// the newest three of each target are there, the untouched old ones and
// every trash entry are gone.
func checkNetfsTree(t *testing.T, back string) {
	t.Helper()
	want := map[string]bool{
		"hf/checkpoint-100": true, "hf/checkpoint-200": false,
		"keras/checkpoint_step_100.keras": true, "keras/checkpoint_step_200.keras": false,
		"tf/ckpt-1.index": true, "tf/ckpt-1.data-00000-of-00001": true, "tf/ckpt-2.index": false, "tf/ckpt-2.data-00000-of-00001": false,
	}
	for i := 3; i <= 5; i++ {
		want[fmt.Sprintf("hf/checkpoint-%d", i*100)] = true
		want[fmt.Sprintf("keras/checkpoint_step_%d.keras", i*100)] = true
		want[fmt.Sprintf("tf/ckpt-%d.index", i)] = true
	}
	for p, there := range want {
		_, err := os.Lstat(filepath.Join(back, p))
		switch {
		case there && err != nil:
			t.Errorf("%s was deleted: %v", p, err)
		case !there && err == nil:
			t.Errorf("%s was not deleted", p)
		}
	}
	for _, name := range netfsTargets {
		for _, e := range mustReadDir(t, filepath.Join(back, name)) {
			if strings.HasPrefix(e, ".checkpoint_exporter-trash-") || strings.HasPrefix(e, ".checkpoint_exporter-deleting") {
				t.Errorf("trash left on the server: %s/%s", name, e)
			}
		}
	}
}

// A job on another node rewrites a file inside the oldest checkpoint of
// each target while `prune --keep=3 --execute` and a webhook prune run
// through the mount, on the real sshfs and rclone mount, with their caches
// as configured by default and as the issue tried them: nothing it touched
// is deleted, the untouched old checkpoints are. Before the fix each prune
// read the mount's cached attributes (the old mtimes) in its last check and
// deleted checkpoint-100, checkpoint_step_100.keras and ckpt-1 under the
// writer.
func TestNetworkFSForeignWriteIsNeverDeleted(t *testing.T) {
	for _, tt := range []struct {
		name  string
		mount func(t *testing.T, back, mnt string) *netfs.Mount
		prune string // extra prune keys
	}{
		{"sshfs defaults", func(t *testing.T, back, mnt string) *netfs.Mount { return netfs.SSHFS(t, back, mnt, "") }, ""},
		{"sshfs cache=yes,attr_timeout=60", func(t *testing.T, back, mnt string) *netfs.Mount {
			return netfs.SSHFS(t, back, mnt, "cache=yes,attr_timeout=60")
		}, ""},
		// rclone's own default directory cache (5 minutes) would make the
		// test wait that long: the mount says 10s, the configuration too.
		{"rclone --vfs-cache-mode off", func(t *testing.T, back, mnt string) *netfs.Mount {
			return netfs.Rclone(t, back, mnt, "--vfs-cache-mode", "off", "--dir-cache-time", "10s")
		}, ", attribute_cache: 10s"},
		{"rclone --vfs-cache-mode writes", func(t *testing.T, back, mnt string) *netfs.Mount {
			return netfs.Rclone(t, back, mnt, "--vfs-cache-mode", "writes", "--dir-cache-time", "10s")
		}, ", attribute_cache: 10s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			back, mnt := filepath.Join(root, "back"), filepath.Join(root, "mnt")
			netfsTree(t, back)
			tt.mount(t, back, mnt)
			cfg := netfsConfig(t, root, mnt, tt.prune)
			token := filepath.Join(root, "token")
			must(t, os.WriteFile(token, []byte("s3cret\n"), 0o600))
			url, logs := serve(t, "--config.file="+cfg, "--webhook.token-file="+token)
			for _, name := range netfsTargets {
				scrapeUntil(t, url+"/metrics", fmt.Sprintf(`checkpoint_dir_checkpoints{target=%q} 5`, name))
			}
			// The scans read every attribute through the mount: its
			// caches now hold the old mtimes.
			writer := rewriteFrom(back, netfsTouched)
			var wg sync.WaitGroup
			var cli cliRun
			wg.Add(1)
			go func() {
				defer wg.Done()
				cli = runBinary("prune", "--config.file="+cfg, "--keep=3", "--execute", "--pruner.lock-wait=5m")
			}()
			body := `{"version":"4","status":"firing","alerts":[`
			for i, name := range netfsTargets {
				if i > 0 {
					body += ","
				}
				body += fmt.Sprintf(`{"status":"firing","labels":{"alertname":"CheckpointOverMaxBytes","target":%q}}`, name)
			}
			body += `]}`
			if code := postWebhook(t, url, "s3cret", body); code != http.StatusOK && code != http.StatusAccepted {
				t.Errorf("webhook answered %d", code)
			}
			wg.Wait()
			waitWebhookPrunes(t, url, logs)
			writer.end(t)
			if cli.err != nil || cli.code != 0 {
				t.Errorf("prune --execute: exit %d, %v\n%s\n%s", cli.code, cli.err, cli.stdout, cli.stderr)
			}
			checkNetfsTree(t, back)
			if t.Failed() {
				t.Logf("prune output:\n%s\n%s\nexporter log:\n%s", cli.stdout, cli.stderr, logs)
			}
		})
	}
}

// waitWebhookPrunes waits until each target's webhook prune has finished
// (it may answer 202 and go on in the background).
func waitWebhookPrunes(t *testing.T, url string, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for _, name := range netfsTargets {
		for metricValue(t, url, "checkpoint_prune_runs_total", map[string]string{"target": name, "trigger": "webhook"}) < 1 {
			if time.Now().After(deadline) {
				t.Fatalf("the webhook prune of %s never finished; logs:\n%s", name, logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// A live lock file of another host, written through the backing directory
// after the mount listed the target: prune --execute with lock: lockfile
// refuses (rclone mount lists from its cache, the lock file is unseen) or
// waits for it and gives up (sshfs looks names up on the server), and never
// destroys it. Before the fix the prune through rclone created its own lock
// file over the foreign one (O_EXCL cannot see what the cached listing
// hides) and removed it when done.
func TestNetworkFSForeignLockFileIsNeverDestroyed(t *testing.T) {
	for _, tt := range []struct {
		name    string
		mount   func(t *testing.T, back, mnt string) *netfs.Mount
		refused string // in the refusal at load; "" if the lock is waited for
	}{
		{"rclone --vfs-cache-mode off", func(t *testing.T, back, mnt string) *netfs.Mount {
			return netfs.Rclone(t, back, mnt, "--vfs-cache-mode", "off")
		}, "fuse.rclone"},
		{"sshfs defaults", func(t *testing.T, back, mnt string) *netfs.Mount { return netfs.SSHFS(t, back, mnt, "") }, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			back, mnt := filepath.Join(root, "back"), filepath.Join(root, "mnt")
			netfsTree(t, back)
			tt.mount(t, back, mnt)
			cfg := filepath.Join(root, "exporter.yml")
			must(t, os.WriteFile(cfg, []byte(fmt.Sprintf("targets:\n  - name: hf\n    path: %s\n    keep_last: 3\n    prune: {lock: lockfile}\n",
				filepath.Join(mnt, "hf"))), 0o644))
			// The mount lists the target; then the other host takes its lock.
			mustReadDir(t, filepath.Join(mnt, "hf"))
			foreign := fmt.Sprintf("owner=foreign\nhost=other-node\npid=4242\npidns=pid:[1]\nexpires=%s\n", time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano))
			lockPath := filepath.Join(back, "hf", ".checkpoint_exporter.lockfile")
			must(t, os.WriteFile(lockPath, []byte(foreign), 0o644))

			r := runBinary("prune", "--config.file="+cfg, "--keep=3", "--execute", "--pruner.lock-wait=2s")
			if r.err != nil || r.code == 0 {
				t.Errorf("prune --execute exited %d (%v), want a failure:\n%s\n%s", r.code, r.err, r.stdout, r.stderr)
			}
			if tt.refused != "" {
				for _, s := range []string{tt.refused, "prune.lock", "lock: flock"} {
					if !strings.Contains(r.stderr, s) {
						t.Errorf("the refusal does not say %q:\n%s", s, r.stderr)
					}
				}
				if c := runBinary("check-config", "--config.file="+cfg); c.code == 0 || !strings.Contains(c.stderr, tt.refused) {
					t.Errorf("check-config exited %d:\n%s", c.code, c.stderr)
				}
			} else if !strings.Contains(r.stderr, "other-node") {
				t.Errorf("the failure does not name the other host's lock:\n%s", r.stderr)
			}
			// Give a write-back or a late removal time to reach the server.
			time.Sleep(6 * time.Second)
			if got, err := os.ReadFile(lockPath); err != nil || string(got) != foreign {
				t.Errorf("the other host's lock file is %q (%v), want it untouched:\n%s", got, err, r.stderr)
			}
			for s := 100; s <= 500; s += 100 {
				if _, err := os.Stat(filepath.Join(back, "hf", fmt.Sprintf("checkpoint-%d", s))); err != nil {
					t.Errorf("deleted under another host's lock: %v", err)
				}
			}
		})
	}
}

// rclone mount caches directory listings for 5 minutes by default, and the
// default min_age is 2 minutes: a save another node is writing could look
// finished, so execute is refused, saying why and what to set; nothing is
// deleted.
func TestRcloneDefaultCacheRefusesExecute(t *testing.T) {
	root := t.TempDir()
	back, mnt := filepath.Join(root, "back"), filepath.Join(root, "mnt")
	netfsTree(t, back)
	netfs.Rclone(t, back, mnt, "--vfs-cache-mode", "off")
	r := runBinary("prune", "--checkpoint.dir="+filepath.Join(mnt, "keras"), "--keep=3", "--execute")
	if r.err != nil || r.code == 0 {
		t.Errorf("prune --execute exited %d (%v), want a failure", r.code, r.err)
	}
	for _, s := range []string{"min_age 2m0s", "fuse.rclone", "rclone mount's default --dir-cache-time", "raise min_age above 5m1s", "prune.attribute_cache"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("the refusal does not say %q:\n%s", s, r.stderr)
		}
	}
	if got, _ := filepath.Glob(filepath.Join(back, "keras", "checkpoint_step_*.keras")); len(got) != 5 {
		t.Errorf("left %v, want all 5", got)
	}
}

// rclone mount reports a billion inodes with none free. The series the
// exporter exports for a target on it, fed to the shipped rules for half an
// hour, fire no CheckpointInodesLow (promtool test rules). Before the fix
// checkpoint_filesystem_files 1e9 and _files_free 0 were exported and the
// alert fired.
func TestRcloneStatfsFiresNoInodeAlert(t *testing.T) {
	promtool := testenv.Need(t, "promtool")
	root := t.TempDir()
	back, mnt := filepath.Join(root, "back"), filepath.Join(root, "mnt")
	netfsTree(t, back)
	netfs.Rclone(t, back, mnt, "--vfs-cache-mode", "off")
	url, _ := serve(t, "--checkpoint.dir="+filepath.Join(mnt, "keras"))
	body := scrapeUntil(t, url+"/metrics", `checkpoint_dir_checkpoints{target="keras"} 5`)

	var series strings.Builder
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "checkpoint_filesystem_") {
			continue
		}
		i := strings.LastIndex(line, " ")
		name, value := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(value, 64)
		must(t, err)
		name = strings.Replace(name, "{", `{instance="node1:9866",job="checkpoint_exporter",`, 1)
		fmt.Fprintf(&series, "      - series: '%s'\n        values: '%sx40'\n", name, strconv.FormatFloat(v, 'f', -1, 64))
	}
	if !strings.Contains(series.String(), "checkpoint_filesystem_avail_bytes") {
		t.Fatalf("no filesystem series exported:\n%s", body)
	}
	rules, err := filepath.Abs(filepath.Join("..", "..", "alerts", "checkpoint_exporter.rules.yml"))
	must(t, err)
	test := filepath.Join(root, "rclone_rules_test.yml")
	must(t, os.WriteFile(test, []byte(fmt.Sprintf(`rule_files:
  - %s
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
%s    alert_rule_test:
      - eval_time: 30m
        alertname: CheckpointInodesLow
        exp_alerts: []
`, rules, series.String())), 0o644))
	if out, err := exec.Command(promtool, "test", "rules", test).CombinedOutput(); err != nil {
		t.Errorf("promtool test rules with the series exported for rclone: %v\n%s\nseries:\n%s", err, out, series.String())
	}
}

// rclone mount answers statfs from a figure it refreshes once per directory
// cache lifetime: after a deletion the free space has not moved. A prune to
// a free-space goal there stops after one checkpoint, says why, and counts
// what it deleted as freed. Before the fix it deleted every prunable
// checkpoint (four here) for a goal it could not see coming closer. (The
// mount keeps its directory cache for an hour, which holds its statfs
// figure still; the configuration says 2s so that the test does not wait:
// nothing else writes here.)
func TestRcloneFreeSpaceGoalStopsAfterOneRound(t *testing.T) {
	root := t.TempDir()
	back, mnt := filepath.Join(root, "back"), filepath.Join(root, "mnt")
	netfsTree(t, back)
	netfs.Rclone(t, back, mnt, "--vfs-cache-mode", "off", "--dir-cache-time", "1h")
	cfg := filepath.Join(root, "exporter.yml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf("targets:\n  - name: keras\n    path: %s\n    keep_last: 1\n    prune: {attribute_cache: 2s}\n",
		filepath.Join(mnt, "keras"))), 0o644))
	r := runBinary("prune", "--config.file="+cfg, "--free-target=99%", "--execute")
	if r.err != nil || r.code != exitInsufficient {
		t.Errorf("prune exited %d (%v), want %d (insufficient)", r.code, r.err, exitInsufficient)
	}
	for _, s := range []string{"deleted 1 checkpoints, freed ", "stopped: free space did not change after deleting checkpoint_step_100.keras", "fuse.rclone"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("output does not say %q:\n%s\n%s", s, r.stdout, r.stderr)
		}
	}
	if got, _ := filepath.Glob(filepath.Join(back, "keras", "checkpoint_step_*.keras")); len(got) != 4 {
		t.Errorf("left %v, want 4: one deleted", got)
	}
}

// rclone mount with --vfs-cache-mode writes holds files written through it
// for --vfs-write-back (5s) before sending them. Checkpoints saved through
// the mount and pruned at once are renamed to trash and removed there, and
// then sent to the server under their trash names, invisible through the
// mount. Before the fix the prune reported them deleted and the trash
// directories stayed on the server with their contents; now the prune checks
// once the write-back and the listing cache have passed, removes what came
// back, and nothing is left. (The mount's directory cache is 2s and the
// configuration says so: the wait before the final walk stays shorter than
// the write-back, as it would for a large upload.)
func TestRcloneWriteBackTrashIsVerifiedGone(t *testing.T) {
	root := t.TempDir()
	back, mnt := filepath.Join(root, "back"), filepath.Join(root, "mnt")
	must(t, os.MkdirAll(back, 0o755))
	netfs.Rclone(t, back, mnt, "--vfs-cache-mode", "writes", "--dir-cache-time", "2s")
	// Saved through the mount, a minute apart two days ago.
	base := time.Now().Add(-48 * time.Hour)
	for i := 1; i <= 5; i++ {
		d := filepath.Join(mnt, fmt.Sprintf("checkpoint-%d", i*100))
		must(t, os.MkdirAll(d, 0o755))
		for _, f := range []string{"pytorch_model.bin", "trainer_state.json"} {
			must(t, os.WriteFile(filepath.Join(d, f), make([]byte, 4096), 0o644))
		}
		mt := base.Add(time.Duration(i) * time.Minute)
		for _, f := range []string{"pytorch_model.bin", "trainer_state.json", ""} {
			must(t, os.Chtimes(filepath.Join(d, f), mt, mt))
		}
	}
	cfg := filepath.Join(root, "exporter.yml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf("targets:\n  - name: hf\n    path: %s\n    prune: {attribute_cache: 2s}\n", mnt)), 0o644))
	r := runBinary("prune", "--config.file="+cfg, "--keep=2", "--execute")
	if r.err != nil || r.code != 0 {
		t.Fatalf("prune exited %d (%v):\n%s\n%s", r.code, r.err, r.stdout, r.stderr)
	}
	// Anything still held by the mount reaches the server by then.
	time.Sleep(8 * time.Second)
	var got []string
	for _, e := range mustReadDir(t, back) {
		if !strings.HasPrefix(e, ".checkpoint_exporter.lock") {
			got = append(got, e)
		}
	}
	if strings.Join(got, " ") != "checkpoint-400 checkpoint-500" {
		t.Errorf("on the server after the prune: %v, want checkpoint-400 checkpoint-500 only\n%s\n%s", got, r.stdout, r.stderr)
	}
}

// sshfs's FUSE daemon killed with SIGKILL in the middle of a prune's
// removal, then mounted again. sshfs numbers inodes in lookup order, anew
// after the remount, on the same device number: the directory of target hf
// can get the number target keras's had. The next prune of hf is not
// refused for that, finishes the trash the killed one left, and nothing
// the kill cut short ever scans as a checkpoint. Before the fix that prune
// was refused ("the directory is also target keras's") and the trash
// stayed.
func TestSSHFSKilledMidPruneAndRemounted(t *testing.T) {
	root := t.TempDir()
	back, mnt := filepath.Join(root, "back"), filepath.Join(root, "mnt")
	hfCheckpoints(t, filepath.Join(back, "b", "hf"), 100, 200, 300, 400, 500)
	// checkpoint-100 has enough files for its removal to be caught midway.
	old := time.Now().Add(-time.Hour)
	for i := range 5000 {
		p := filepath.Join(back, "b", "hf", "checkpoint-100", "sub", fmt.Sprintf("shard-%05d", i))
		must(t, os.WriteFile(p, nil, 0o644))
		must(t, os.Chtimes(p, old, old))
	}
	for _, p := range []string{"checkpoint-100/sub", "checkpoint-100"} {
		must(t, os.Chtimes(filepath.Join(back, "b", "hf", p), old, old))
	}
	must(t, os.MkdirAll(filepath.Join(back, "a", "keras"), 0o755))
	writeKeras(t, filepath.Join(back, "a", "keras"), 5, time.Now().Add(-48*time.Hour), time.Minute)
	m := netfs.SSHFS(t, back, mnt, "")
	keras, hf := filepath.Join(mnt, "a", "keras"), filepath.Join(mnt, "b", "hf")
	lookUp := func(paths ...string) {
		for _, p := range paths {
			_, err := os.Stat(p)
			must(t, err)
		}
	}
	// sshfs numbers nodes as they are looked up: keras's directory first.
	lookUp(filepath.Join(mnt, "a"), keras, filepath.Join(mnt, "b"), hf)

	cfg := filepath.Join(root, "exporter.yml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`scan_interval: 1h
targets:
  - {name: keras, path: %s, keep_last: 3}
  - name: hf
    path: %s
    keep_last: 3
    max_bytes: 1
    prune: {execute: true, high_watermark: 99.9%%, low_watermark: 99.8%%}
`, keras, hf)), 0o644))
	token := filepath.Join(root, "token")
	must(t, os.WriteFile(token, []byte("s3cret\n"), 0o600))
	url, logs := serve(t, "--config.file="+cfg, "--webhook.token-file="+token, "--webhook.timeout=1s")
	scrapeUntil(t, url+"/metrics", `checkpoint_dir_checkpoints{target="keras"} 5`)
	scrapeUntil(t, url+"/metrics", `checkpoint_dir_checkpoints{target="hf"} 5`)

	alert := `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"CheckpointOverMaxBytes","target":"hf"}}]}`
	runs := func() float64 {
		return metricValue(t, url, "checkpoint_prune_runs_total", map[string]string{"target": "hf", "trigger": "webhook"})
	}
	postWebhook(t, url, "s3cret", alert)
	// Kill the daemon as soon as checkpoint-100 is trash, mid-removal.
	deadline := time.Now().Add(5 * time.Minute)
	for trash := ""; trash == ""; {
		for _, e := range mustReadDir(t, filepath.Join(back, "b", "hf")) {
			if strings.HasPrefix(e, ".checkpoint_exporter-trash-checkpoint-100") {
				trash = e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint-100 never became trash; logs:\n%s", logs)
		}
		time.Sleep(2 * time.Millisecond)
	}
	m.Kill(t)
	for runs() < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the killed prune never finished; logs:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if left, _ := filepath.Glob(filepath.Join(back, "b", "hf", ".checkpoint_exporter-trash-*", "sub", "shard-*")); len(left) == 0 {
		t.Fatal("the removal finished before the kill: nothing to test")
	}

	m.Remount(t)
	// hf's directory is looked up first now: it gets keras's old number.
	lookUp(filepath.Join(mnt, "b"), hf, filepath.Join(mnt, "a"), keras)
	// What the kill left is no checkpoint.
	scan := runBinary("scan", "--config.file="+cfg, "--target=hf")
	if scan.code != 0 || strings.Contains(scan.stdout, "checkpoint-100 ") {
		t.Errorf("scan after the remount (exit %d) shows the half-removed checkpoint:\n%s\n%s", scan.code, scan.stdout, scan.stderr)
	}

	postWebhook(t, url, "s3cret", alert)
	for runs() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the prune after the remount never finished; logs:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "is also target") {
		t.Errorf("refused after the remount:\n%s", logs)
	}
	if got := metricValue(t, url, "checkpoint_prune_runs_total", map[string]string{"target": "hf", "trigger": "webhook", "result": "error"}); got != 1 {
		t.Errorf("%v webhook prunes of hf failed, want 1 (the killed one); logs:\n%s", got, logs)
	}
	got := mustReadDir(t, filepath.Join(back, "b", "hf"))
	var names []string
	for _, n := range got {
		if !strings.HasPrefix(n, ".checkpoint_exporter.lock") {
			names = append(names, n)
		}
	}
	if strings.Join(names, " ") != "checkpoint-300 checkpoint-400 checkpoint-500" {
		t.Errorf("hf on the server: %v, want checkpoint-300 to -500 and no trash; logs:\n%s", names, logs)
	}
}
