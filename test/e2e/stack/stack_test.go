package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestScaleRules(t *testing.T) {
	in := "        for: 5m\n        expr: increase(x[30m]) > 0.85 and predict_linear(y[30m], 4 * 3600) < 0\n      for: 10s\n"
	got := string(ScaleRules([]byte(in), 1.0/60))
	want := "        for: 5000ms\n        expr: increase(x[30000ms]) > 0.85 and predict_linear(y[30000ms], 4 * 3600) < 0\n      for: 1000ms\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestAlertmanagerConfigFromExample(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "..", "..", "alerts", "alertmanager.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := AlertmanagerConfig(example, "http://127.0.0.1:1/webhook", "/tmp/tok", Timers{GroupWait: time.Second, GroupInterval: 2 * time.Second, RepeatInterval: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"http://127.0.0.1:1/webhook", "credentials_file: /tmp/tok", "group_interval: 2s", "repeat_interval: 5s", `prune="true"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("generated config lacks %q:\n%s", want, out)
		}
	}
}
