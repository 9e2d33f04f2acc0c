package pruner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

// Issue #23 item 4: two pruners finishing the same trash at once (a holder
// whose lease was taken over, and the new holder's recovery) both succeed;
// neither reports as left what the other removed.
func TestTrashRemovedTwiceAtOnce(t *testing.T) {
	for round := range 20 {
		dir := t.TempDir()
		trash := targetdir.TrashPrefix + "checkpoint-100"
		for i := range 20 {
			sub := filepath.Join(dir, trash, fmt.Sprintf("shard-%02d", i))
			must(t, os.MkdirAll(sub, 0o755))
			for j := range 20 {
				must(t, os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%02d", j)), nil, 0o644))
			}
		}
		d := openDir(t, dir)
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for range 2 {
			wg.Go(func() { errs <- removeTrash(d.Fd(), dir, trash) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if left := stillThere(d.Fd(), []string{trash}); len(left) != 0 {
			t.Fatalf("round %d: %v left", round, left)
		}
	}
}

// Start-up recovery of a directory without trash takes no lock, so a target
// the exporter only watches (and may not be allowed to write) gets no lock
// file.
func TestRecoverTrashWithoutTrashWritesNothing(t *testing.T) {
	dir := t.TempDir()
	kerasFiles(t, dir, 10, 100, 200)
	rec, err := RecoverTrash(context.Background(), testLogger(t), Target{Target: checkpoint.Target{Name: "t", Path: dir}}, time.Second)
	if err != nil || rec.Removed != 0 || len(rec.Left) != 0 {
		t.Fatalf("recovery: %+v, %v", rec, err)
	}
	for _, name := range []string{targetdir.LockFile, targetdir.LeaseFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s created: %v", name, err)
		}
	}
}
