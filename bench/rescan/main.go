// Command rescan measures checkpoint_exporter's scans of one directory in one
// process, as the running exporter does them: a first full scan, then
// --rescans incremental rescans of the unchanged tree. It prints the first
// scan's and the median rescan's wall time.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

func main() {
	dir := flag.String("dir", "", "target directory")
	rescans := flag.Int("rescans", 10, "incremental rescans after the first scan")
	full := flag.Bool("full", false, "make every rescan a full walk (no cache)")
	flag.Parse()
	opts := checkpoint.ScanOptions{FullRescanInterval: time.Hour}
	if *full {
		opts.FullRescanInterval = -1
	}
	s, err := checkpoint.NewScanner(checkpoint.Target{Name: "bench", Path: *dir}, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	snap := s.Scan(context.Background())
	if snap.Err != nil {
		fmt.Fprintln(os.Stderr, snap.Err)
		os.Exit(1)
	}
	fmt.Printf("first scan: %d checkpoints, %d bytes, %s\n", len(snap.Checkpoints), snap.Bytes(), snap.Duration)
	if *rescans == 0 {
		return
	}
	var ds []time.Duration
	for range *rescans {
		r := s.Scan(context.Background())
		if r.Bytes() != snap.Bytes() {
			fmt.Fprintf(os.Stderr, "rescan disagrees: %d bytes, first scan %d\n", r.Bytes(), snap.Bytes())
			os.Exit(1)
		}
		ds = append(ds, r.Duration)
	}
	slices.Sort(ds)
	fmt.Printf("rescan median: %s (min %s, max %s, n=%d)\n", ds[len(ds)/2], ds[0], ds[len(ds)-1], len(ds))
}
