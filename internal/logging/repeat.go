package logging

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
)

// repeatWindow is how often one identical log line is written at most.
const repeatWindow = time.Minute

// maxRepeatKeys bounds the lines a repeatFilter remembers.
const maxRepeatKeys = 4096

// repeatFilter writes a log line identical to one written less than window
// ago (the same keys and values but the timestamp) only once: the next one
// after the window carries repeated=N, the number left out. A dry run or
// the autonomous guard at a short scan_interval would otherwise write the
// same lines at every scan.
type repeatFilter struct {
	next   log.Logger
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex // guards seen
	seen map[string]*repeat
}

type repeat struct {
	written time.Time
	left    int
}

func newRepeatFilter(next log.Logger, window time.Duration) *repeatFilter {
	return &repeatFilter{next: next, window: window, now: time.Now, seen: map[string]*repeat{}}
}

func (f *repeatFilter) Log(kv ...any) error {
	key := lineKey(kv)
	f.mu.Lock()
	now := f.now()
	r, ok := f.seen[key]
	if ok && now.Sub(r.written) < f.window {
		r.left++
		f.mu.Unlock()
		return nil
	}
	left := 0
	if ok {
		left = r.left
	}
	if len(f.seen) >= maxRepeatKeys {
		for k, old := range f.seen {
			if now.Sub(old.written) >= f.window {
				delete(f.seen, k)
			}
		}
		if len(f.seen) >= maxRepeatKeys {
			clear(f.seen)
		}
	}
	f.seen[key] = &repeat{written: now}
	f.mu.Unlock()
	if left > 0 {
		kv = append(kv[:len(kv):len(kv)], "repeated", left)
	}
	return f.next.Log(kv...)
}

// lineKey is a log line without its timestamp.
func lineKey(kv []any) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "ts" {
			continue
		}
		fmt.Fprintf(&b, "%v=%v\x00", kv[i], kv[i+1])
	}
	return b.String()
}
