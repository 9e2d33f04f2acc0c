// Command cotenant stands in for a training job's data loaders: one CPU-bound
// worker per core, each doing the same fixed amount of work (SHA-256 over a
// 64 KiB buffer, --units times in all), and prints its throughput in units
// per second. Run alone and then beside the exporter, the ratio of the two is
// what the exporter took from the job.
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	units := flag.Int64("units", 200000, "units of work in total (one unit: SHA-256 of 64 KiB)")
	workers := flag.Int("workers", runtime.NumCPU(), "CPU-bound workers")
	flag.Parse()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for next.Add(1) <= *units {
				sum := sha256.Sum256(buf)
				buf[0] = sum[0]
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Printf("units=%d workers=%d seconds=%.2f throughput=%.1f\n", *units, *workers, elapsed.Seconds(), float64(*units)/elapsed.Seconds())
}
