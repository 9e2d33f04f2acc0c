package checkpoint

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-kit/log"
)

// A reload through Update keeps the scanner (and so the snapshot and cache)
// of a target passed again, drops every other target's snapshot at once, and
// is not ready until the new targets have been scanned; Run follows it.
func TestInventoryUpdate(t *testing.T) {
	dirs := map[string]string{}
	scanners := map[string]*Scanner{}
	for _, name := range []string{"kept", "removed", "added"} {
		dirs[name] = tree(t, map[string]int{"checkpoint-100/model.bin": 4096, "checkpoint-200/model.bin": 4096})
		sc, err := NewScanner(Target{Name: name, Path: dirs[name]}, ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		scanners[name] = sc
	}
	inv := NewInventory(log.NewNopLogger(), time.Hour, scanners["kept"], scanners["removed"])
	inv.ScanAll(context.Background())
	if ready, waiting := inv.Ready(); !ready {
		t.Fatalf("not ready after scanning everything: waiting for %v", waiting)
	}
	kept, _ := inv.Latest("kept")

	inv.Update(time.Hour, scanners["kept"], scanners["added"])
	if _, ok := inv.Latest("removed"); ok {
		t.Error("a removed target kept its snapshot")
	}
	if got, _ := inv.Latest("kept"); got != kept {
		t.Error("the kept target lost its snapshot")
	}
	if ready, waiting := inv.Ready(); ready || !slices.Equal(waiting, []string{"added"}) {
		t.Errorf("ready=%v waiting=%v before the added target was scanned; want waiting for [added]", ready, waiting)
	}
	// A scan by a scanner the update dropped stores nothing.
	inv.store(scanners["removed"], scanners["removed"].Scan(context.Background()))
	if _, ok := inv.Latest("removed"); ok {
		t.Error("a dropped scanner's late scan brought its target back")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { inv.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for ready, _ := inv.Ready(); !ready; ready, _ = inv.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("Run never scanned the added target")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var names []string
	for _, s := range inv.Snapshots() {
		names = append(names, s.Target.Name)
	}
	if !slices.Equal(names, []string{"kept", "added"}) {
		t.Errorf("snapshots of %v, want [kept added]", names)
	}
	// Dropping a target while Run runs stops its scans.
	inv.Update(time.Hour, scanners["added"])
	if _, ok := inv.Latest("kept"); ok {
		t.Error("kept target still reported after its removal")
	}
}
