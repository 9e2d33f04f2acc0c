package alertmanager

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// FuzzDecodeAndMatch: decoding never panics, and matching never selects a
// target that is not configured.
func FuzzDecodeAndMatch(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "alertmanager-*.json"))
	if len(files) == 0 {
		f.Fatal("no seed payloads in testdata")
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","labels":{"target":"../../etc"}}]}`))
	m := Matcher{
		Targets:     []string{"caocrvfy", "llama"},
		Mountpoints: map[string][]string{"/data": {"caocrvfy"}, "/scratch": {"llama"}},
		Instance:    "gpu01:9866",
		Labels:      map[string]string{"node": "gpu01"},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, err := decodeMessage(body)
		if err != nil {
			return
		}
		// The streaming decoder reads what encoding/json reads.
		var std Message
		if err := json.Unmarshal(body, &std); err != nil {
			t.Fatalf("decodeMessage accepted what encoding/json refuses (%v): %q", err, body)
		}
		if len(std.Alerts) != len(msg.Alerts) || (len(msg.Alerts) > 0 && !reflect.DeepEqual(std.Alerts, msg.Alerts)) {
			t.Fatalf("alerts %+v, encoding/json reads %+v from %q", msg.Alerts, std.Alerts, body)
		}
		std.Alerts = msg.Alerts
		if !reflect.DeepEqual(&std, msg) {
			t.Fatalf("message %+v, encoding/json reads %+v from %q", msg, std, body)
		}
		matches := matchAll(m, msg)
		if len(matches) != len(msg.Alerts) {
			t.Fatalf("%d matches for %d alerts", len(matches), len(msg.Alerts))
		}
		for i, r := range matches {
			if msg.Alerts[i].Status != "firing" && len(r.Targets) > 0 {
				t.Fatalf("resolved alert selected %v", r.Targets)
			}
			for _, tg := range r.Targets {
				if !slices.Contains(m.Targets, tg) {
					t.Fatalf("selected unconfigured target %q from %s", tg, body)
				}
			}
			if len(r.Targets) == 0 && r.Ignored == "" {
				t.Fatalf("alert selects nothing without saying why: %+v", r)
			}
		}
	})
}

func TestSeedPayloadsMatch(t *testing.T) {
	m := Matcher{Targets: []string{"caocrvfy"}, Mountpoints: map[string][]string{"/data": {"caocrvfy"}}}
	for file, want := range map[string][]string{
		"alertmanager-firing-target.json":      {"caocrvfy"},
		"alertmanager-node-filesystem.json":    {"caocrvfy"},
		"alertmanager-resolved-truncated.json": {},
	} {
		b, _ := os.ReadFile(filepath.Join("testdata", file))
		msg, err := decodeMessage(b)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var got []string
		for _, r := range matchAll(m, msg) {
			got = append(got, r.Targets...)
		}
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s selects %v, want %v", file, got, want)
		}
	}
	// --webhook.instance ignores other instances' alerts.
	b, _ := os.ReadFile(filepath.Join("testdata", "alertmanager-firing-target.json"))
	msg, _ := decodeMessage(b)
	m.Instance = "gpu02:9866"
	if r := matchAll(m, msg); len(r[0].Targets) != 0 {
		t.Errorf("alert for gpu01 selected %v on gpu02", r[0].Targets)
	}
}
