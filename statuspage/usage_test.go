package statuspage

import (
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

func usageSnap(target string, at time.Time, avail uint64) *checkpoint.Snapshot {
	return &checkpoint.Snapshot{Target: checkpoint.Target{Name: target}, Time: at,
		FS: &targetdir.FSStats{SizeBytes: 1000, AvailBytes: avail}}
}

// A sample a minute for a day, however often the target is scanned: the
// newest scan of a minute stands for it.
func TestUsageKeepsOneSampleAMinuteForADay(t *testing.T) {
	u := NewUsage(time.Minute, 24*time.Hour)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var at time.Time
	for i := range 25 * 60 * 4 { // 25 hours of scans every 15 s
		at = start.Add(time.Duration(i) * 15 * time.Second)
		u.Add(usageSnap("a", at, uint64(i%1000)))
	}
	ss := u.Samples("a", time.Time{})
	if len(ss) > 24*60+1 || len(ss) < 24*60 {
		t.Fatalf("%d samples, want a day's worth by the minute (1440)", len(ss))
	}
	last := ss[len(ss)-1]
	if !last.Time.Equal(at) || last.UsedBytes != 1000-uint64((25*60*4-1)%1000) || ss[0].Time.Before(at.Add(-24*time.Hour)) {
		t.Errorf("first %+v, last %+v", ss[0], last)
	}
	for i := 1; i < len(ss); i++ {
		if ss[i].Time.Truncate(time.Minute).Equal(ss[i-1].Time.Truncate(time.Minute)) {
			t.Fatalf("two samples in the minute of %v", ss[i].Time)
		}
	}
	if got := u.Samples("a", at.Add(-time.Hour)); len(got) != 61 {
		t.Errorf("the last hour has %d samples, want 61", len(got))
	}
	// A target that is no longer scanned (a reload removed it) goes once its
	// samples are a day old; a failed scan adds nothing.
	u.Add(usageSnap("b", at.Add(25*time.Hour), 5))
	u.Add(&checkpoint.Snapshot{Target: checkpoint.Target{Name: "b"}, Time: at.Add(26 * time.Hour), Err: targetdir.ErrHung})
	if len(u.Samples("a", time.Time{})) != 0 || len(u.Samples("b", time.Time{})) != 1 {
		t.Errorf("a: %d samples, b: %d; want 0 and 1", len(u.Samples("a", time.Time{})), len(u.Samples("b", time.Time{})))
	}
}
