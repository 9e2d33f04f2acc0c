package offload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/layout"
)

// runUntil runs o's workers on snap until done holds (or fails the test
// after a generous deadline: a wait, not a timing assertion).
func runUntil(t *testing.T, o *Offloader, snap *checkpoint.Snapshot, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { o.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	o.Scanned(ctx, snap)
	deadline := time.Now().Add(time.Minute)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatal("offloads did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runs(m *Metrics, result string) int {
	return int(testutil.ToFloat64(m.runs.WithLabelValues("t", result)))
}

func names(snap *checkpoint.Snapshot) []string {
	out := []string{}
	for _, c := range snap.Checkpoints {
		out = append(out, c.Name)
	}
	return out
}

// TestRclone offloads three layouts' checkpoints with Debian's rclone to a
// local directory remote: each copy matches byte for byte, the state file
// records them, and a new offloader (a restart) trusts them after checking
// them against a fresh scan.
func TestRclone(t *testing.T) {
	needRclone(t)
	tests := []struct {
		name  string
		files map[string]int // path → size
	}{
		{"keras files", map[string]int{"checkpoint_step_100.keras": 3000, "checkpoint_step_200.keras": 4000, "checkpoint_step_300.keras": 5000}},
		{"hf directories", map[string]int{
			"checkpoint-100/model.safetensors": 3000, "checkpoint-100/optimizer.pt": 100, "checkpoint-100/trainer_state.json": 10,
			"checkpoint-200/model.safetensors": 3000, "checkpoint-200/optimizer.pt": 100, "checkpoint-200/trainer_state.json": 10,
			"checkpoint-200/sub/deep.bin": 700,
		}},
		{"tensorflow file groups", map[string]int{
			"ckpt-1.index": 100, "ckpt-1.data-00000-of-00001": 3000,
			"ckpt-2.index": 100, "ckpt-2.data-00000-of-00002": 3000, "ckpt-2.data-00001-of-00002": 3000,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, remote := t.TempDir(), t.TempDir()
			i := 0
			for p, size := range tt.files {
				i++
				writeOld(t, filepath.Join(dir, p), content(i, size), i)
			}
			ageDirs(t, dir)
			tg := target(dir)
			snap := scan(t, tg)
			cfg := Config{Command: []string{"rclone", "copyto", "--config", "/dev/null", "{path}", remote + "/{target}/{name}"}, Timeout: time.Minute, Concurrency: 2}
			o, m, _ := newOffloader(t, tg, cfg)
			if got := confirmed(o, snap); len(got) != 0 {
				t.Fatalf("confirmed before any offload: %v", got)
			}
			n := len(snap.Checkpoints)
			runUntil(t, o, snap, func() bool { return runs(m, ResultOK)+runs(m, ResultFailed)+runs(m, ResultError) >= n })
			if runs(m, ResultOK) != n {
				t.Fatalf("%d offloads ok, want %d", runs(m, ResultOK), n)
			}
			var bytes int64
			for _, c := range snap.Checkpoints {
				bytes += c.Bytes
				for _, e := range c.Entries {
					sameTree(t, filepath.Join(dir, e.Name), filepath.Join(remote, "t", e.Name))
				}
			}
			if got := testutil.ToFloat64(m.bytes.WithLabelValues("t")); got != float64(bytes) {
				t.Errorf("checkpoint_offload_bytes_total %v, want %d", got, bytes)
			}
			if got := testutil.ToFloat64(m.pending.WithLabelValues("t")); got != 0 {
				t.Errorf("checkpoint_offload_pending %v after every offload, want 0", got)
			}
			if got := confirmed(o, snap); !reflect.DeepEqual(got, names(snap)) {
				t.Errorf("confirmed %v, want all of %v", got, names(snap))
			}
			// A restart: a new offloader reads the state file; a new
			// scanner measures everything again.
			o2, _, _ := newOffloader(t, tg, cfg)
			snap2 := scan(t, tg)
			if got := confirmed(o2, snap2); !reflect.DeepEqual(got, names(snap2)) {
				t.Errorf("after a restart confirmed %v, want all of %v", got, names(snap2))
			}
			for _, c := range snap2.Checkpoints {
				if st := o2.Status(c); st.State != StateOffloaded || st.Time.IsZero() {
					t.Errorf("%s: status %+v, want offloaded with a time", c.Name, st)
				}
			}
			// Another command (a new remote): the old copies do not count.
			cfg.Command = []string{"rclone", "copyto", "{path}", t.TempDir() + "/{name}"}
			o3, _, _ := newOffloader(t, tg, cfg)
			if got := confirmed(o3, snap2); len(got) != 0 {
				t.Errorf("confirmed %v for a changed command, want none", got)
			}
		})
	}
}

// TestFailures: a command that fails, hangs, is killed, cannot start, or
// sees the checkpoint change under it confirms nothing; the counter and the
// log say why, and the state file records nothing.
func TestFailures(t *testing.T) {
	tests := []struct {
		name    string
		command []string
		result  string
		log     string
	}{
		{"exit 1", []string{"sh", "-c", "echo no such bucket >&2; exit 1", "sh", "{path}"}, ResultFailed, "no such bucket"},
		{"hangs past the timeout", []string{"sh", "-c", "sleep 60 & sleep 60", "sh", "{path}"}, ResultTimeout, "timed out"},
		{"killed", []string{"sh", "-c", "kill -KILL $$", "sh", "{path}"}, ResultKilled, "killed by signal"},
		{"cannot start", []string{"/nonexistent/offload-tool", "{path}"}, ResultError, "no such file"},
		{"checkpoint changes during the copy", []string{"sh", "-c", `echo more >> "$1"`, "sh", "{path}"}, ResultChanged, "written to while it was copied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := kerasDir(t, 100, 200, 300)
			tg := target(dir)
			snap := scan(t, tg)
			o, m, logs := newOffloader(t, tg, Config{Command: tt.command, Timeout: 300 * time.Millisecond})
			runUntil(t, o, snap, func() bool { return runs(m, tt.result) >= 1 })
			// Each checkpoint was tried at most once: a failure waits
			// RetryAfter (a minute) before the next try.
			ok := runs(m, ResultOK)
			if ok != 0 {
				t.Errorf("%d offloads counted ok", ok)
			}
			if got := confirmed(o, scan(t, tg)); len(got) != 0 {
				t.Errorf("confirmed %v after a %s offload", got, tt.result)
			}
			c := snap.Checkpoints[0]
			if st := o.Status(c); st.State != StateFailed || st.Detail == "" {
				t.Errorf("status %+v, want failed with a reason", st)
			}
			if l := logs.String(); !strings.Contains(l, "result="+tt.result) || !strings.Contains(strings.ToLower(l), tt.log) {
				t.Errorf("log does not say result=%s and %q:\n%s", tt.result, tt.log, l)
			}
			if _, err := os.Stat(filepath.Join(dir, StateFile)); err == nil {
				recs, _ := readState(filepath.Join(dir, StateFile))
				if len(recs) != 0 {
					t.Errorf("state file records %v", recs)
				}
			}
		})
	}
}

// TestRewrittenInPlace: a checkpoint rewritten in place after its offload
// (same inode, even with its mtime set back) is not trusted after a restart
// and is offloaded again; the copy then holds the new content.
func TestRewrittenInPlace(t *testing.T) {
	dir, remote := kerasDir(t, 100, 200, 300), t.TempDir()
	tg := target(dir)
	cfg := Config{Command: []string{"cp", "{path}", remote + "/{name}"}, Timeout: time.Minute}
	o, m, _ := newOffloader(t, tg, cfg)
	snap := scan(t, tg)
	runUntil(t, o, snap, func() bool { return runs(m, ResultOK) >= 3 })

	p := filepath.Join(dir, "checkpoint_step_100.keras")
	st, _ := os.Stat(p)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(content(999, int(st.Size())))
	f.Close()
	os.Chtimes(p, st.ModTime(), st.ModTime()) // the same mtime as before: only ctime tells

	o2, m2, _ := newOffloader(t, tg, cfg)
	snap2 := scan(t, tg)
	if got := confirmed(o2, snap2); !reflect.DeepEqual(got, []string{"checkpoint_step_200.keras", "checkpoint_step_300.keras"}) {
		t.Fatalf("confirmed %v, want only the two unchanged checkpoints", got)
	}
	if st := o2.Status(snap2.Checkpoints[0]); st.State != StateChanged {
		t.Errorf("status %+v, want %q", st, StateChanged)
	}
	runUntil(t, o2, snap2, func() bool { return runs(m2, ResultOK) >= 1 })
	if n := runs(m2, ResultOK); n != 1 {
		t.Errorf("%d offloads after the rewrite, want 1 (only the rewritten one)", n)
	}
	sameTree(t, p, filepath.Join(remote, "checkpoint_step_100.keras"))
	if got := confirmed(o2, scan(t, tg)); len(got) != 3 {
		t.Errorf("confirmed %v, want all three", got)
	}
}

// TestMarker: with require_marker, only a checkpoint with a marker inside
// (directories) or beside it (files), no older than its newest file, is
// confirmed; nothing is run.
func TestMarker(t *testing.T) {
	t.Run("directories", func(t *testing.T) {
		dir := t.TempDir()
		for i, s := range []int{100, 200, 300, 400} {
			for _, f := range []string{"model.safetensors", "optimizer.pt", "trainer_state.json"} {
				writeOld(t, filepath.Join(dir, fmt.Sprintf("checkpoint-%d", s), f), content(i, 500), i)
			}
		}
		writeOld(t, filepath.Join(dir, "checkpoint-100", ".synced"), nil, 10)
		writeOld(t, filepath.Join(dir, "checkpoint-300", ".synced"), nil, 10)
		// A marker older than the checkpoint's newest file: synced before a
		// rewrite.
		writeOld(t, filepath.Join(dir, "checkpoint-400", ".synced"), nil, -10)
		ageDirs(t, dir)
		tg := target(dir)
		o, m, _ := newOffloader(t, tg, Config{Marker: ".synced"})
		snap := scan(t, tg)
		if got := confirmed(o, snap); !reflect.DeepEqual(got, []string{"checkpoint-100", "checkpoint-300"}) {
			t.Errorf("confirmed %v, want checkpoint-100 and checkpoint-300", got)
		}
		if st := o.Status(snap.Checkpoints[3]); st.State != StateNotOffloaded || !strings.Contains(st.Detail, "older") {
			t.Errorf("checkpoint-400 status %+v, want not offloaded: marker older", st)
		}
		o.Scanned(context.Background(), snap)
		if got := testutil.ToFloat64(m.pending.WithLabelValues("t")); got != 2 {
			t.Errorf("pending %v, want 2", got)
		}
	})
	t.Run("files", func(t *testing.T) {
		dir := kerasDir(t, 100, 200, 300)
		writeOld(t, filepath.Join(dir, "checkpoint_step_200.keras.synced"), nil, 10)
		tg := target(dir)
		o, _, _ := newOffloader(t, tg, Config{Marker: ".synced"})
		snap := scan(t, tg)
		if len(snap.Checkpoints) != 3 {
			t.Fatalf("a marker changed what is a checkpoint: %v", names(snap))
		}
		if got := confirmed(o, snap); !reflect.DeepEqual(got, []string{"checkpoint_step_200.keras"}) {
			t.Errorf("confirmed %v, want checkpoint_step_200.keras", got)
		}
	})
}

// TestStateFileIsNoCheckpoint: neither the state file nor its temporary
// sibling is taken for a checkpoint by any layout or a catch-all pattern.
func TestStateFileIsNoCheckpoint(t *testing.T) {
	dir := kerasDir(t, 100, 200)
	os.WriteFile(filepath.Join(dir, StateFile), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(dir, StateFile+".new-"+letters(8)), []byte("{}"), 0o644)
	for _, tg := range []checkpoint.Target{
		{Name: "t", Path: dir, Layout: layout.Auto},
		{Name: "t", Path: dir, Pattern: "*{step}*"},
		{Name: "t", Path: dir, Pattern: ".{step}*"},
	} {
		for _, l := range append(layout.Names(), "") {
			if tg.Pattern == "" && l == "" {
				continue
			}
			if tg.Pattern == "" {
				tg.Layout = l
			}
			s, err := checkpoint.NewScanner(tg, checkpoint.ScanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range s.Scan(context.Background()).Checkpoints {
				for _, e := range c.Entries {
					if strings.HasPrefix(e.Name, StateFile) {
						t.Errorf("layout %q pattern %q: %s is part of checkpoint %s", tg.Layout, tg.Pattern, e.Name, c.Name)
					}
				}
			}
		}
	}
}

// TestConcurrencyBound: however many checkpoints wait, at most Concurrency
// commands run at once. Each command registers itself in a directory while
// it runs and records how many it saw there.
func TestConcurrencyBound(t *testing.T) {
	steps := []int{100, 200, 300, 400, 500, 600, 700, 800}
	dir, work := kerasDir(t, steps...), t.TempDir()
	running := filepath.Join(work, "running")
	os.Mkdir(running, 0o755)
	script := `mkdir "$2/$1" && ls "$2" | wc -l >> "$3" && sleep 0.05 && rmdir "$2/$1"`
	tg := target(dir)
	o, m, _ := newOffloader(t, tg, Config{Command: []string{"sh", "-c", script, "sh", "{name}", running, filepath.Join(work, "seen")}, Timeout: time.Minute, Concurrency: 3})
	runUntil(t, o, scan(t, tg), func() bool { return runs(m, ResultOK)+runs(m, ResultFailed) >= len(steps) })
	if n := runs(m, ResultOK); n != len(steps) {
		t.Fatalf("%d offloads ok, want %d", n, len(steps))
	}
	data, _ := os.ReadFile(filepath.Join(work, "seen"))
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err != nil || n > 3 {
			t.Errorf("a command saw %s running at once, want at most 3 (all: %q)", f, data)
		}
	}
}

// TestRewrittenDeepInside: a file rewritten in place deep inside a directory
// checkpoint changes nothing at the top level; the next walk of the
// checkpoint (a restart's first scan) sees its newer ctime, so the old copy
// is not trusted.
func TestRewrittenDeepInside(t *testing.T) {
	dir, remote := t.TempDir(), t.TempDir()
	for i, s := range []int{100, 200} {
		for _, f := range []string{"model.safetensors", "optimizer.pt", "trainer_state.json", "sub/shard.bin"} {
			writeOld(t, filepath.Join(dir, fmt.Sprintf("checkpoint-%d", s), f), content(i, 700), i)
		}
	}
	ageDirs(t, dir)
	tg := target(dir)
	cfg := Config{Command: []string{"cp", "-r", "{path}", remote + "/{name}"}, Timeout: time.Minute}
	o, m, _ := newOffloader(t, tg, cfg)
	runUntil(t, o, scan(t, tg), func() bool { return runs(m, ResultOK) >= 2 })

	p := filepath.Join(dir, "checkpoint-100", "sub", "shard.bin")
	st, _ := os.Stat(p)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("rewritten"), 10)
	f.Close()
	os.Chtimes(p, st.ModTime(), st.ModTime())

	o2, _, _ := newOffloader(t, tg, cfg)
	if got := confirmed(o2, scan(t, tg)); !reflect.DeepEqual(got, []string{"checkpoint-200"}) {
		t.Errorf("confirmed %v, want only checkpoint-200", got)
	}
}
