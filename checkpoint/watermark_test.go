package checkpoint

import "testing"

func TestParseFreeGoal(t *testing.T) {
	tests := []struct {
		in      string
		text    string
		ratio   float64
		free    uint64
		invalid bool
	}{
		{in: "", text: ""},
		{in: "20%", text: "80%", ratio: 0.8},
		{in: " 12.5% ", text: "87.5%", ratio: 0.875},
		{in: "10GiB", text: "10GiB", free: 10 << 30},
		{in: "0%", invalid: true},
		{in: "100%", invalid: true},
		{in: "NaN%", invalid: true},
		{in: "lots", invalid: true},
	}
	for _, tt := range tests {
		w, err := ParseFreeGoal(tt.in)
		if (err != nil) != tt.invalid {
			t.Errorf("%q: error %v, want invalid=%v", tt.in, err, tt.invalid)
			continue
		}
		if !tt.invalid && (w.String() != tt.text || w.Ratio != tt.ratio || w.Free != tt.free) {
			t.Errorf("%q: %s (ratio %v, free %d), want %s (ratio %v, free %d)", tt.in, w, w.Ratio, w.Free, tt.text, tt.ratio, tt.free)
		}
	}
}
