package checkpoint

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchTree builds dirs checkpoint-N/ directories of files each, once per
// benchmark run.
func benchTree(b *testing.B, dirs, files int) string {
	b.Helper()
	root := b.TempDir()
	for i := 1; i <= dirs; i++ {
		d := filepath.Join(root, fmt.Sprintf("checkpoint-%d", i*100))
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		for j := range files {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("shard-%05d", j)), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		old := time.Now().Add(-time.Hour)
		os.Chtimes(d, old, old)
	}
	return root
}

// BenchmarkFullScan walks 50 directories of 200 files every time.
func BenchmarkFullScan(b *testing.B) {
	root := benchTree(b, 50, 200)
	s, _ := NewScanner(Target{Name: "b", Path: root}, ScanOptions{FullRescanInterval: -1})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if snap := s.Scan(context.Background()); len(snap.Checkpoints) != 50 {
			b.Fatal(snap.Err)
		}
	}
	b.ReportMetric(float64(50*200*b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkRescan rescans the same unchanged tree: settled checkpoints are
// only lstat'ed at the top.
func BenchmarkRescan(b *testing.B) {
	root := benchTree(b, 50, 200)
	s, _ := NewScanner(Target{Name: "b", Path: root}, ScanOptions{FullRescanInterval: time.Hour})
	s.Scan(context.Background())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if snap := s.Scan(context.Background()); len(snap.Checkpoints) != 50 {
			b.Fatal(snap.Err)
		}
	}
}

// BenchmarkKerasSeries classifies the operator's 250-file directory.
func BenchmarkKerasSeries(b *testing.B) {
	root := b.TempDir()
	for s := 100; s <= 25000; s += 100 {
		os.WriteFile(filepath.Join(root, fmt.Sprintf("checkpoint_step_%d.keras", s)), []byte("x"), 0o644)
	}
	s, _ := NewScanner(Target{Name: "b", Path: root}, ScanOptions{})
	b.ReportAllocs()
	for b.Loop() {
		if snap := s.Scan(context.Background()); len(snap.Checkpoints) != 250 {
			b.Fatal(snap.Err)
		}
	}
}
