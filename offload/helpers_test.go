package offload

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
	"github.com/checkpoint-exporter/checkpoint_exporter/layout"
)

// old is an mtime well past any min_age.
var old = time.Now().Add(-time.Hour)

// content is the bytes of checkpoint file i: distinct per file, so a copy
// of the wrong file does not compare equal.
func content(i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(i*31 + j*7)
	}
	return b
}

// writeOld writes a file and dates it minutes after old.
func writeOld(t *testing.T, path string, data []byte, minutes int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mt := old.Add(time.Duration(minutes) * time.Minute)
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
}

// kerasDir is a target directory with Keras checkpoints of the given steps.
func kerasDir(t *testing.T, steps ...int) string {
	t.Helper()
	dir := t.TempDir()
	for i, s := range steps {
		writeOld(t, filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", s)), content(s, 5000+s), i)
	}
	return dir
}

// ageDirs dates every directory under dir (not dir itself) back to old:
// creating files in them made them look freshly written.
func ageDirs(t *testing.T, dir string) {
	t.Helper()
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != dir {
			dirs = append(dirs, p)
		}
		return err
	})
	for _, d := range dirs {
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

func target(dir string) checkpoint.Target {
	return checkpoint.Target{Name: "t", Path: dir, Layout: layout.Auto, MinAge: time.Minute}
}

func scan(t *testing.T, tg checkpoint.Target) *checkpoint.Snapshot {
	t.Helper()
	s, err := checkpoint.NewScanner(tg, checkpoint.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snap := s.Scan(context.Background())
	if snap.Err != nil {
		t.Fatal(snap.Err)
	}
	if len(snap.Checkpoints) == 0 {
		t.Fatalf("no checkpoints in %s (ignored: %v)", tg.Path, snap.Ignored)
	}
	return snap
}

// logs collects an offloader's log lines.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
	t   *testing.T
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newOffloader(t *testing.T, tg checkpoint.Target, cfg Config) (*Offloader, *Metrics, *logs) {
	t.Helper()
	l := &logs{t: t}
	m := NewMetrics(tg.Name)
	return New(log.NewLogfmtLogger(l), tg, cfg, m), m, l
}

// confirmed lists the names of snap's checkpoints that o confirms.
func confirmed(o *Offloader, snap *checkpoint.Snapshot) []string {
	ok := o.Confirmed(context.Background(), snap)
	out := []string{}
	for _, c := range snap.Checkpoints {
		if ok(c) {
			out = append(out, c.Name)
		}
	}
	return out
}

func needRclone(t *testing.T) {
	t.Helper()
	testenv.Need(t, "rclone")
}

// sameTree fails unless every regular file under want has an equal copy at
// the same relative path under got.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	err := filepath.WalkDir(want, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil {
			return err
		}
		if !bytes.Equal(a, b) {
			return fmt.Errorf("%s: copy differs (%d bytes, want %d)", rel, len(b), len(a))
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
