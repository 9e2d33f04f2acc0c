package logging

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/go-kit/log/level"
)

// Both loggers write the same leading keys in the same order, at the chosen
// level and above.
func TestLinesStartAlike(t *testing.T) {
	var buf bytes.Buffer
	l, sl := New(&buf, "logfmt", "info")
	level.Info(l).Log("msg", "from go-kit", "target", "a")
	sl.With("listener", "tcp").WithGroup("tls").Info("from slog", "cert", "x.pem")
	level.Debug(l).Log("msg", "hidden")
	sl.Debug("hidden too")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines at info:\n%s", buf.String())
	}
	head := regexp.MustCompile(`^ts=\S+ caller=\S+:\d+ level=info msg=`)
	for _, line := range lines {
		if !head.MatchString(line) {
			t.Errorf("line does not start with ts, caller, level, msg: %s", line)
		}
	}
	if !strings.HasSuffix(lines[0], `msg="from go-kit" target=a`) {
		t.Errorf("go-kit line: %s", lines[0])
	}
	if !strings.HasSuffix(lines[1], `msg="from slog" listener=tcp tls.cert=x.pem`) {
		t.Errorf("slog line: %s", lines[1])
	}
}

func TestLevelsAndJSON(t *testing.T) {
	for _, tc := range []struct {
		lvl  string
		want []string
	}{
		{"debug", []string{"debug", "info", "warn", "error"}},
		{"info", []string{"info", "warn", "error"}},
		{"warn", []string{"warn", "error"}},
		{"error", []string{"error"}},
	} {
		t.Run(tc.lvl, func(t *testing.T) {
			var buf bytes.Buffer
			l, sl := New(&buf, "json", tc.lvl)
			level.Debug(l).Log("msg", "debug")
			sl.Info("info")
			level.Warn(l).Log("msg", "warn")
			sl.Error("error")
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if line == "" {
					continue
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("not JSON: %s", line)
				}
				if m["level"] != m["msg"] || m["ts"] == nil || m["caller"] == nil {
					t.Errorf("line %s", line)
				}
				got = append(got, m["msg"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("at %s got %v, want %v", tc.lvl, got, tc.want)
			}
		})
	}
}
