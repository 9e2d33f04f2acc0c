package main

import "testing"

func TestFormatSizes(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{formatBytes(0), "0B"},
		{formatBytes(1023), "1023B"},
		{formatBytes(84 << 20), "84.0MiB"},
		{formatBytes(-1536), "-1.5KiB"},
		{formatBytes(3 << 60), "3.0EiB"},
		{formatSI(999), "999 B"},
		{formatSI(84_000_000), "84.0 MB"},
		{formatSI(1_500), "1.5 kB"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestParseFreeTarget(t *testing.T) {
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
		w, err := parseFreeTarget(tt.in)
		if (err != nil) != tt.invalid {
			t.Errorf("%q: error %v, want invalid=%v", tt.in, err, tt.invalid)
			continue
		}
		if !tt.invalid && (w.String() != tt.text || w.Ratio != tt.ratio || w.Free != tt.free) {
			t.Errorf("%q: %s (ratio %v, free %d), want %s (ratio %v, free %d)", tt.in, w, w.Ratio, w.Free, tt.text, tt.ratio, tt.free)
		}
	}
}
