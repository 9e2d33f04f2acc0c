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
