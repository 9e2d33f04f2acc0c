package checkpoint

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// tree creates files (name → size; a name ending in "/" is a directory) under
// a new temporary directory, all with mtime old, and returns its path.
func tree(t *testing.T, entries map[string]int) string {
	t.Helper()
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	for name, size := range entries {
		p := filepath.Join(dir, name)
		if name[len(name)-1] == '/' {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Set mtimes bottom-up so that directories keep theirs.
	var paths []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { paths = append(paths, p); return nil })
	for i := len(paths) - 1; i >= 0; i-- {
		os.Chtimes(paths[i], old, old)
	}
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func scan(t *testing.T, tg Target, opts ScanOptions) *Snapshot {
	t.Helper()
	s, err := NewScanner(tg, opts)
	if err != nil {
		t.Fatal(err)
	}
	snap := s.Scan(context.Background())
	if snap.Err != nil {
		t.Fatalf("scan %s: %v", tg.Path, snap.Err)
	}
	return snap
}

type summary struct {
	layout     string
	steps      []int64
	incomplete []int64
	pinned     []int64
}

func summarize(s *Snapshot) summary {
	out := summary{layout: s.Layout}
	for _, c := range s.Checkpoints {
		switch {
		case c.Incomplete:
			out.incomplete = append(out.incomplete, c.Step)
		default:
			out.steps = append(out.steps, c.Step)
		}
		if c.Pinned != "" {
			out.pinned = append(out.pinned, c.Step)
		}
	}
	return out
}
