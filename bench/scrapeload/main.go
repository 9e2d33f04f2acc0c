// Command scrapeload measures scrape latency of a running exporter: --clients
// concurrent clients share --scrapes scrapes of --url, back to back or with
// --interval between a client's scrapes; it prints p50, p99 and max latency
// and, with --pid, the exporter's CPU time per scrape (user+system time of
// that process over the run, from /proc/PID/stat).
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:9866/metrics", "metrics URL")
	clients := flag.Int("clients", 10, "concurrent clients")
	scrapes := flag.Int("scrapes", 1000, "scrapes in total")
	interval := flag.Duration("interval", 0, "pause of each client between its scrapes (0: back to back)")
	pid := flag.Int("pid", 0, "exporter process ID, to report its CPU time per scrape")
	flag.Parse()
	cpu0 := cpuTime(*pid)
	jobs := make(chan struct{}, *scrapes)
	for range *scrapes {
		jobs <- struct{}{}
	}
	close(jobs)
	var mu sync.Mutex
	var lat []time.Duration
	var failures int
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				start := time.Now()
				resp, err := client.Get(*url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(start)
				mu.Lock()
				if err != nil {
					failures++
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
				time.Sleep(*interval)
			}
		}()
	}
	wg.Wait()
	if len(lat) == 0 {
		fmt.Fprintln(os.Stderr, "no successful scrape")
		os.Exit(1)
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("scrapes=%d failures=%d p50=%s p99=%s max=%s", len(lat), failures, q(0.50), q(0.99), lat[len(lat)-1])
	if *pid > 0 {
		fmt.Printf(" cpu_per_scrape=%s", (cpuTime(*pid)-cpu0)/time.Duration(len(lat)+failures))
	}
	fmt.Println()
}

// cpuTime is the user+system CPU time of process pid (0: none). The kernel
// counts it in clock ticks of 1/100 s, so runs need hundreds of scrapes.
func cpuTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the whole line.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
