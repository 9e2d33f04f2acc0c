package statuspage

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// Sample is a target's filesystem usage at one time.
type Sample struct {
	Time            time.Time `json:"time"`
	UsedBytes       uint64    `json:"used_bytes"`
	SizeBytes       uint64    `json:"size_bytes"`
	CheckpointBytes int64     `json:"checkpoint_bytes"`
}

// Usage keeps, in memory only, one usage sample per target per Every over
// the last Window, from the background scans' snapshots: the chart's data.
// A scan in a minute that already has a sample replaces it, so a target
// holds at most Window/Every samples (1440 for a day by the minute) however
// often it is scanned. It is safe for concurrent use.
type Usage struct {
	every, window time.Duration

	mu sync.Mutex // guards by
	by map[string][]Sample
}

// NewUsage returns a store of one sample per every over window (the page
// uses a minute over 24 hours).
func NewUsage(every, window time.Duration) *Usage {
	return &Usage{every: every, window: window, by: map[string][]Sample{}}
}

// OnScan takes a background scan's snapshot (checkpoint.Inventory.OnScan).
func (u *Usage) OnScan(_ context.Context, snap *checkpoint.Snapshot) { u.Add(snap) }

// Add takes a snapshot's usage, if it measured its filesystem.
func (u *Usage) Add(snap *checkpoint.Snapshot) {
	if !snap.Up() || snap.FS == nil || snap.Time.IsZero() {
		return
	}
	fs := snap.FS
	s := Sample{Time: snap.Time, UsedBytes: fs.SizeBytes - min(fs.SizeBytes, fs.AvailBytes), SizeBytes: fs.SizeBytes, CheckpointBytes: snap.Bytes()}
	u.mu.Lock()
	defer u.mu.Unlock()
	name := snap.Target.Name
	ss := u.by[name]
	if n := len(ss); n > 0 && ss[n-1].Time.Truncate(u.every).Equal(s.Time.Truncate(u.every)) {
		ss[n-1] = s
	} else if n == 0 || s.Time.After(ss[n-1].Time) {
		ss = append(ss, s)
	}
	u.by[name] = dropBefore(ss, s.Time.Add(-u.window))
	// A target that is gone (a reload removed it) leaves within a window.
	for other, os := range u.by {
		if other != name && (len(os) == 0 || os[len(os)-1].Time.Before(s.Time.Add(-u.window))) {
			delete(u.by, other)
		}
	}
}

// dropBefore removes the samples older than cut (they are in time order).
func dropBefore(ss []Sample, cut time.Time) []Sample {
	i, _ := slices.BinarySearchFunc(ss, cut, func(s Sample, t time.Time) int { return s.Time.Compare(t) })
	if i == 0 {
		return ss
	}
	return slices.Delete(ss, 0, i)
}

// Samples returns target's samples since since, oldest first.
func (u *Usage) Samples(target string, since time.Time) []Sample {
	u.mu.Lock()
	defer u.mu.Unlock()
	ss := u.by[target]
	i, _ := slices.BinarySearchFunc(ss, since, func(s Sample, t time.Time) int { return s.Time.Compare(t) })
	return slices.Clone(ss[i:])
}
