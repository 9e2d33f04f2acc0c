// Command gentree builds the benchmark trees of BENCHMARKS.md:
//
//	a: the operator's case, 250 Keras files checkpoint_step_{100..25000}.keras
//	b: 200 Hugging Face checkpoint-N/ directories of 500 files (100 000 files)
//	c: 1000 checkpoint-N/ directories of 1000 files (1 000 000 files)
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

func main() {
	kind := flag.String("case", "a", "a, b or c")
	dir := flag.String("dir", "", "directory to create")
	size := flag.Int("size", 0, "bytes per file (default: 84 KiB for a, 1 byte for b and c)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "gentree: --dir is required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var err error
	switch *kind {
	case "a":
		err = files(*dir, 250, pick(*size, 84<<10))
	case "b":
		err = dirs(*dir, 200, 500, pick(*size, 1))
	case "c":
		err = dirs(*dir, 1000, 1000, pick(*size, 1))
	default:
		err = fmt.Errorf("unknown case %q", *kind)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func pick(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

var old = time.Now().Add(-24 * time.Hour)

func files(dir string, n, size int) error {
	buf := make([]byte, size)
	for i := 1; i <= n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("checkpoint_step_%d.keras", i*100))
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			return err
		}
		mt := old.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(p, mt, mt); err != nil {
			return err
		}
	}
	return nil
}

func dirs(dir string, n, per, size int) error {
	buf := make([]byte, size)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 4)
	for i := 1; i <= n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// Every file carries its checkpoint's save time, so the newest by
			// step is also the most recently written, as in a real run
			// (keep_last protects both).
			mt := old.Add(time.Duration(i) * time.Minute)
			d := filepath.Join(dir, fmt.Sprintf("checkpoint-%d", i*500))
			for _, sub := range []string{"", "shards"} {
				if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
					errs <- err
					return
				}
			}
			for j := 0; j < per; j++ {
				name := filepath.Join(d, "shards", fmt.Sprintf("model-%05d-of-%05d.safetensors", j, per))
				if j < 3 {
					name = filepath.Join(d, []string{"trainer_state.json", "optimizer.pt", "scheduler.pt"}[j])
				}
				if err := os.WriteFile(name, buf, 0o644); err != nil {
					errs <- err
					return
				}
				if err := os.Chtimes(name, mt, mt); err != nil {
					errs <- err
					return
				}
			}
			os.Chtimes(filepath.Join(d, "shards"), mt, mt)
			os.Chtimes(d, mt, mt)
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
