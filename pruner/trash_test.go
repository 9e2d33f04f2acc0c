package pruner

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Issue #23 item 4: two pruners finishing the same trash at once (a holder
// whose lease was taken over, and the new holder's recovery) both succeed;
// neither reports as left what the other removed.
func TestTrashRemovedTwiceAtOnce(t *testing.T) {
	for round := range 20 {
		dir := t.TempDir()
		trash := TrashPrefix + "checkpoint-100"
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
