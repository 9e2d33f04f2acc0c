package checkpoint

import (
	"testing"
	"time"
)

func TestSaveIntervalIgnoresCopies(t *testing.T) {
	t0 := time.Unix(1_732_000_000, 0)
	snap := func(offsets ...time.Duration) *Snapshot {
		s := &Snapshot{}
		for i, o := range offsets {
			s.Checkpoints = append(s.Checkpoints, Checkpoint{Step: int64(i + 1), Bytes: 1 << 20, ModTime: t0.Add(o)})
		}
		return s
	}
	ms := time.Millisecond
	for _, tt := range []struct {
		name   string
		snap   *Snapshot
		want   time.Duration
		wantOK bool
	}{
		{"regular saves", snap(0, time.Minute, 2*time.Minute, 3*time.Minute), time.Minute, true},
		{"one save", snap(0), 0, false},
		{"copied together", snap(0, ms, 2*ms, 3*ms, 4*ms), 0, false},
		// A copied backlog followed by real saves: only the real gaps count.
		{"copied, then saves", snap(0, ms, 2*ms, 3*ms, time.Minute, 2*time.Minute), time.Minute - 3*ms/2, true},
	} {
		got, ok := tt.snap.SaveInterval()
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%s: SaveInterval = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
		if _, rok := tt.snap.WriteRate(); rok != tt.wantOK {
			t.Errorf("%s: WriteRate known = %v, want %v", tt.name, rok, tt.wantOK)
		}
	}
}
