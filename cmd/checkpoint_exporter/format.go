package main

import (
	"fmt"
	"strconv"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// stepCell is a checkpoint's step as the tables show it: "-" where its name
// carries a time, not a step (checkpoint.Checkpoint.NoStep).
func stepCell(c checkpoint.Checkpoint) string {
	if c.NoStep {
		return "-"
	}
	return strconv.FormatInt(c.Step, 10)
}

// patternLine is a pattern: setting as it goes into a target of the
// configuration file: a YAML double-quoted string (Go's quoting is one).
func patternLine(pattern string) string {
	return "pattern: " + strconv.Quote(pattern)
}

// formatBytes renders n in binary units for people ("84.0MiB"), as the
// tables and messages of the commands show sizes.
func formatBytes(n int64) string {
	if n < 0 {
		return "-" + scaled(uint64(-n), 1024, "KMGTPE", "", "iB")
	}
	return scaled(uint64(n), 1024, "KMGTPE", "", "iB")
}

// signedBytes is formatBytes with a sign always: a change, not an amount.
func signedBytes(n int64) string {
	if n < 0 {
		return formatBytes(n)
	}
	return "+" + formatBytes(n)
}

// formatSI renders n in decimal units ("84.0 MB"), as disk vendors count.
func formatSI(n uint64) string { return scaled(n, 1000, "kMGTPE", " ", "B") }

// scaled writes n with one decimal in the largest unit (a power of unit,
// named by prefixes) it reaches.
func scaled(n, unit uint64, prefixes, sep, suffix string) string {
	if n < unit {
		return fmt.Sprintf("%d%sB", n, sep)
	}
	div, exp := unit, 0
	for m := n / unit; m >= unit && exp < len(prefixes)-1; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%s%c%s", float64(n)/float64(div), sep, prefixes[exp], suffix)
}
