package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// Invariant 8 through the real binary (issue #21 item 4): on a filesystem
// with no free block, or no free inode, or neither, every prune path (the
// CLI, the webhook, the autonomous guard; flock and lockfile; single-file,
// directory and multi-file layouts; offload on) deletes checkpoints and
// frees space.

// fullLayouts write five checkpoints, steps 100 to 500, of about 1.25 MiB
// each, saved a minute apart two hours ago.
var fullLayouts = map[string]func(t *testing.T, dir string){
	"keras": func(t *testing.T, dir string) {
		for i, s := range fullSteps {
			writeOld(t, filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s)), 1280<<10, i)
		}
	},
	"hf": func(t *testing.T, dir string) {
		for i, s := range fullSteps {
			d := filepath.Join(dir, fmt.Sprintf("checkpoint-%d", s))
			must(t, os.Mkdir(d, 0o755))
			writeOld(t, filepath.Join(d, "model.safetensors"), 1280<<10, i)
			writeOld(t, filepath.Join(d, "trainer_state.json"), 64, i)
			writeOld(t, d, -1, i)
		}
	},
	"tensorflow": func(t *testing.T, dir string) {
		for i, s := range fullSteps {
			writeOld(t, filepath.Join(dir, fmt.Sprintf("ckpt-%d.index", s)), 4096, i)
			for shard := range 2 {
				writeOld(t, filepath.Join(dir, fmt.Sprintf("ckpt-%d.data-%05d-of-00002", s, shard)), 640<<10, i)
			}
		}
	},
}

var fullSteps = []int{100, 200, 300, 400, 500}

// writeOld writes size bytes to p (size < 0: only sets its time) with the
// i-th save's time, a minute apart two hours ago.
func writeOld(t *testing.T, p string, size, i int) {
	t.Helper()
	if size >= 0 {
		buf := make([]byte, size)
		for j := range buf {
			buf[j] = byte(j) | 1
		}
		must(t, os.WriteFile(p, buf, 0o644))
	}
	mt := time.Now().Add(-2*time.Hour + time.Duration(i)*time.Minute)
	must(t, os.Chtimes(p, mt, mt))
}

// fullCase is one target on a small tmpfs of its own.
type fullCase struct {
	name, layout, lock string
	offload            bool
	root, dir          string
}

func newFullCase(t *testing.T, layout, lock string, offload bool) *fullCase {
	t.Helper()
	c := &fullCase{name: layout + "-" + lock, layout: layout, lock: lock, offload: offload}
	if offload {
		c.name += "-offload"
	}
	c.root = filepath.Join(t.TempDir(), c.name)
	testenv.MountTmpfsWith(t, c.root, "size=8m,nr_inodes=200")
	c.dir = filepath.Join(c.root, "models")
	must(t, os.Mkdir(c.dir, 0o755))
	fullLayouts[layout](t, c.dir)
	if offload {
		for _, s := range fullSteps {
			must(t, os.WriteFile(filepath.Join(c.dir, fmt.Sprintf("checkpoint_step_%d.keras.synced", s)), nil, 0o644))
		}
	}
	return c
}

// yaml is the case's target in a configuration file.
func (c *fullCase) yaml() string {
	s := fmt.Sprintf("  - name: %s\n    path: %s\n    keep_last: 2\n    min_age: 1m\n    prune: {execute: true, high_watermark: 85%%, low_watermark: 70%%, lock: %s}\n",
		c.name, c.dir, c.lock)
	if c.offload {
		s += "    offload: {require_marker: .synced}\n"
	}
	return s
}

// fill uses up the case's filesystem: "blocks", "inodes" or "both".
func (c *fullCase) fill(t *testing.T, what string) {
	t.Helper()
	if what != "inodes" {
		testenv.FillBlocks(t, filepath.Join(c.root, "blocks"))
	}
	if what != "blocks" {
		// Empty files take no block on a tmpfs, only an inode.
		testenv.FillInodes(t, filepath.Join(c.root, "inodes"))
	}
}

// freed checks that the prune deleted oldest first, kept the newest two,
// left no trash or deletion mark, and freed what the filesystem lacked.
func (c *fullCase) freed(t *testing.T, what string) {
	t.Helper()
	left := steps(t, c.dir)
	if len(left) >= len(fullSteps) || !slices.Contains(left, 400) || !slices.Contains(left, 500) {
		t.Errorf("%s: left steps %v; want some deleted, 400 and 500 kept", c.name, left)
	}
	entries, _ := os.ReadDir(c.dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".checkpoint_exporter-trash-") || strings.HasPrefix(e.Name(), ".checkpoint_exporter-deleting") {
			t.Errorf("%s: left %s", c.name, e.Name())
		}
	}
	var st unix.Statfs_t
	must(t, unix.Statfs(c.dir, &st))
	if what != "inodes" && st.Bavail == 0 {
		t.Errorf("%s: no block freed", c.name)
	}
	if what != "blocks" && st.Ffree == 0 {
		t.Errorf("%s: no inode freed", c.name)
	}
}

// steps lists the steps of the checkpoints in dir, whatever the layout.
func steps(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	var out []int
	for _, e := range entries {
		for _, s := range fullSteps {
			for _, n := range []string{"checkpoint_step_%d.keras", "checkpoint-%d", "ckpt-%d.index"} {
				if e.Name() == fmt.Sprintf(n, s) {
					out = append(out, s)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func writeConfig(t *testing.T, cases []*fullCase, extra string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("scan_interval: 1s\n" + extra + "targets:\n")
	for _, c := range cases {
		b.WriteString(c.yaml())
	}
	cfg := filepath.Join(t.TempDir(), "config.yml")
	must(t, os.WriteFile(cfg, []byte(b.String()), 0o644))
	return cfg
}

// The CLI's first prune of a full filesystem: in flock mode nothing was
// made ahead of need; the lockfile mode needs the spare lock file that any
// earlier run with room made (here a prune that deleted nothing).
func TestFullDiskCLI(t *testing.T) {
	for _, layout := range []string{"keras", "hf", "tensorflow"} {
		for _, fill := range []string{"blocks", "inodes", "both"} {
			for _, lock := range []string{"flock", "lockfile"} {
				t.Run(layout+"/"+fill+"/"+lock, func(t *testing.T) {
					c := newFullCase(t, layout, lock, false)
					cfg := writeConfig(t, []*fullCase{c}, "")
					if lock == "lockfile" {
						if out, stderr, code := runCLI(t, "prune", "--config.file="+cfg, "--keep=10", "--execute"); code != exitOK {
							t.Fatalf("prune with room: exit %d\n%s\n%s", code, out, stderr)
						}
					}
					c.fill(t, fill)
					out, stderr, code := runCLI(t, "prune", "--config.file="+cfg, "--keep=2", "--execute")
					if code != exitOK || !strings.Contains(out, "deleted 3 checkpoints") {
						t.Fatalf("prune of a full disk: exit %d\n%s\n%s", code, out, stderr)
					}
					c.freed(t, fill)
				})
			}
		}
	}
}

// The webhook and the autonomous guard, each in one exporter serving a
// target of every layout and lock mode (and one with offload), started while
// there was room; then every filesystem is filled, blocks and inodes both.
func TestFullDiskWebhookAndGuard(t *testing.T) {
	for _, trigger := range []string{"webhook", "autonomous"} {
		t.Run(trigger, func(t *testing.T) {
			var cases []*fullCase
			for _, layout := range []string{"keras", "hf", "tensorflow"} {
				for _, lock := range []string{"flock", "lockfile"} {
					cases = append(cases, newFullCase(t, layout, lock, false))
				}
			}
			cases = append(cases, newFullCase(t, "keras", "flock", true))
			cfg := writeConfig(t, cases, "")
			tok := filepath.Join(t.TempDir(), "token")
			must(t, os.WriteFile(tok, []byte("t0ken"), 0o600))
			args := []string{"--config.file=" + cfg, "--webhook.token-file=" + tok}
			if trigger == "autonomous" {
				args = append(args, "--pruner.autonomous")
			}
			base, logs := serve(t, args...)
			for _, c := range cases {
				scrapeUntil(t, base+"/metrics", fmt.Sprintf(`checkpoint_dir_checkpoints{target=%q} 5`, c.name))
				c.fill(t, "both")
			}
			for _, c := range cases {
				if trigger == "webhook" {
					if code := postAlert(t, base, "t0ken", c.name); code != 200 {
						t.Errorf("%s: webhook answered %d\n%s", c.name, code, logs.String())
					}
				}
				waitMetric(t, base, c.name+" pruned", func(e string) bool {
					for _, line := range strings.Split(e, "\n") {
						if strings.HasPrefix(line, "checkpoint_prune_deleted_checkpoints_total{") && strings.Contains(line, fmt.Sprintf("target=%q", c.name)) {
							return !strings.HasSuffix(line, " 0")
						}
					}
					return false
				})
			}
			for _, c := range cases {
				c.freed(t, "both")
			}
			if strings.Contains(logs.String(), "no space left on device") {
				t.Errorf("a prune met ENOSPC:\n%s", logs.String())
			}
		})
	}
}
