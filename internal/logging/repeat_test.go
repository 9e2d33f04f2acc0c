package logging

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
)

func TestRepeatFilter(t *testing.T) {
	var buf bytes.Buffer
	f := newRepeatFilter(log.NewLogfmtLogger(&buf), time.Minute)
	clock := time.Unix(1_732_000_000, 0)
	f.now = func() time.Time { return clock }
	logAt := func(d time.Duration, kv ...any) {
		clock = time.Unix(1_732_000_000, 0).Add(d)
		f.Log(append([]any{"ts", clock.Format(time.RFC3339Nano)}, kv...)...)
	}
	for i := range 100 {
		logAt(time.Duration(i)*100*time.Millisecond, "msg", "dry run: would delete checkpoint", "name", "c1")
	}
	logAt(time.Second, "msg", "dry run: would delete checkpoint", "name", "c2") // another line
	logAt(61*time.Second, "msg", "dry run: would delete checkpoint", "name", "c1")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"name=c1", "name=c2", "name=c1 repeated=99"}
	if len(lines) != len(want) {
		t.Fatalf("lines:\n%s\nwant %d", buf.String(), len(want))
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d = %q, want it to end in %q", i, lines[i], w)
		}
	}
}
