package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// Issue #23 item 3: freed bytes are what the prune removed. With a writer
// filling the same filesystem during the prune, the prune reports as freed
// the disk usage (du) of the checkpoints it deleted, measured before the
// prune, never the change in free space (which the writer makes negative);
// that change is reported beside it under its own name.
func TestFreedBytesAreWhatWasDeleted(t *testing.T) {
	root := t.TempDir()
	testenv.MountTmpfs(t, root, "64m")
	dir := filepath.Join(root, "models")
	must(t, os.Mkdir(dir, 0o755))
	base := time.Now().Add(-2 * time.Hour)
	du := map[string]int64{}
	for i := range 8 {
		name := fmt.Sprintf("checkpoint_step_%d.keras", (i+1)*100)
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, make([]byte, 2<<20+i*4096), 0o644))
		mt := base.Add(time.Duration(i) * time.Minute)
		must(t, os.Chtimes(p, mt, mt))
		du[name] = testenv.DuBytes(t, p)
	}
	// The writer: up to 40 MiB more, a chunk at a time, from before the
	// prune to its end.
	var stop atomic.Bool
	var chunks atomic.Int64
	done := make(chan error, 1)
	go func() {
		f, err := os.Create(filepath.Join(root, "other-writer"))
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		chunk := make([]byte, 256<<10)
		for written := 0; !stop.Load() && written < 40<<20; written += len(chunk) {
			time.Sleep(100 * time.Microsecond)
			if _, err := f.Write(chunk); err != nil && !errors.Is(err, unix.ENOSPC) {
				done <- err
				return
			}
			chunks.Add(1)
		}
		done <- nil
	}()
	for chunks.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	out, stderr, code := runCLI(t, "prune", "--checkpoint.dir="+dir, "--keep=2", "--execute")
	stop.Store(true)
	must(t, <-done)
	if code != exitOK {
		t.Fatalf("prune: exit %d\n%s\n%s", code, out, stderr)
	}
	var want int64
	deleted := deletedNames(stderr)
	for _, n := range deleted {
		want += du[n]
	}
	if len(deleted) != 6 {
		t.Fatalf("deleted %v, want six", deleted)
	}
	m := regexp.MustCompile(`freed_bytes=(-?\d+) free_space_change_bytes=(-?\d+)`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no freed_bytes and free_space_change_bytes in the log:\n%s", stderr)
	}
	freed, _ := strconv.ParseInt(m[1], 10, 64)
	change, _ := strconv.ParseInt(m[2], 10, 64)
	if freed != want {
		t.Errorf("freed_bytes=%d, want %d (du of the deleted checkpoints before the prune)", freed, want)
	}
	t.Logf("freed %d bytes; available space changed by %d meanwhile", freed, change)
	if !regexp.MustCompile(`freed 12\.\dMiB \(their disk usage\); available space changed by [-+]`).MatchString(out) {
		t.Errorf("output does not report freed bytes and the change apart:\n%s", out)
	}
}
