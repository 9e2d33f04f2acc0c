package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The watchers sample the system while the end-to-end scenario runs. They
// are started in a watchers group; their results are read only after stop
// has cancelled them and waited for every one to return, so no result is
// read while a goroutine may still write it. They carry no build tag, so
// `go test -race ./test/e2e` checks them without the stack.

// watchers runs sampling goroutines until stop.
type watchers struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startWatchers(ctx context.Context) *watchers {
	w := &watchers{}
	w.ctx, w.cancel = context.WithCancel(ctx)
	return w
}

// every runs fn every period until stop.
func (w *watchers) every(period time.Duration, fn func()) {
	w.wg.Go(func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			fn()
			select {
			case <-w.ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// stop cancels every watcher and waits until all have returned. After it
// returns, their results may be read without locks.
func (w *watchers) stop() {
	w.cancel()
	w.wg.Wait()
}

// crossing times how long free space stays below a threshold before space is
// freed again.
type crossing struct {
	below     uint64 // threshold in bytes of free space
	at        time.Time
	count     int
	reactions []time.Duration
}

// observe records one sample; freedAtLeast is how much free space must grow
// between samples to count as space being freed.
func (c *crossing) observe(avail, last, freedAtLeast uint64) {
	if avail < c.below && c.at.IsZero() {
		c.at = time.Now()
		c.count++
	}
	if !c.at.IsZero() && avail > last+freedAtLeast {
		c.reactions = append(c.reactions, time.Since(c.at))
		c.at = time.Time{}
	}
}

func (c *crossing) String() string {
	if len(c.reactions) == 0 {
		return "never crossed"
	}
	r := append([]time.Duration(nil), c.reactions...)
	sort.Slice(r, func(i, j int) bool { return r[i] < r[j] })
	return fmt.Sprintf("crossed %d times, space freed after median %s, max %s", c.count,
		r[len(r)/2].Round(10*time.Millisecond), r[len(r)-1].Round(10*time.Millisecond))
}

// fsWatch samples a filesystem: the lowest free space, and the reaction from
// free space falling below the high watermark (and below the pruner's goal)
// to space being freed.
type fsWatch struct {
	dir          string
	freedAtLeast uint64
	minAvail     uint64
	last         uint64
	high, goal   crossing
}

func (w *fsWatch) sample() {
	var st unix.Statfs_t
	if unix.Statfs(w.dir, &st) != nil {
		return
	}
	avail := st.Bavail * uint64(st.Frsize)
	if w.last == 0 || avail < w.minAvail {
		w.minAvail = avail
	}
	w.high.observe(avail, w.last, w.freedAtLeast)
	w.goal.observe(avail, w.last, w.freedAtLeast)
	w.last = avail
}

// savedSteps follows the training job's progress: the step it saved last.
type savedSteps struct {
	mu   sync.Mutex // guards last
	last int64
}

func (s *savedSteps) set(step int64) {
	s.mu.Lock()
	s.last = step
	s.mu.Unlock()
}

func (s *savedSteps) get() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// newestWatch checks that the newest keep saved checkpoints exist at every
// sample. A checkpoint missing while the job saves a newer one is not
// counted: it may have just fallen out of the newest keep.
type newestWatch struct {
	saved   *savedSteps
	keep    int
	every   int64
	path    func(step int64) string
	missing []string
}

func (w *newestWatch) sample() {
	s := w.saved.get()
	for k := int64(0); k < int64(w.keep) && s-k*w.every > 0; k++ {
		p := w.path(s - k*w.every)
		if _, err := os.Lstat(p); err != nil && w.saved.get() == s {
			w.missing = append(w.missing, filepath.Base(p))
		}
	}
}
