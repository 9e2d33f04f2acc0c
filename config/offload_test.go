package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadOffload(t *testing.T) {
	p := writeConfig(t, `
targets:
  - name: a
    path: dir_a
    offload:
      command: [sh, -c, 'cp "$1" /backup/', sh, "{path}"]
  - name: b
    path: dir_b
    offload:
      command: [sh, "{name}", "{step}", "{target}"]
      timeout: 5m
      concurrency: 4
  - name: c
    path: dir_c
    offload: {require_marker: .synced}
  - name: d
    path: dir_d
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	a, b, m := c.Targets[0].Offload, c.Targets[1].Offload, c.Targets[2].Offload
	if time.Duration(*a.Timeout) != DefaultOffloadTimeout || a.Concurrency != DefaultOffloadConcurrency {
		t.Errorf("defaults not applied: %+v", a)
	}
	if !reflect.DeepEqual(b.Command, []string{"sh", "{name}", "{step}", "{target}"}) || time.Duration(*b.Timeout) != 5*time.Minute || b.Concurrency != 4 {
		t.Errorf("values not read: %+v", b)
	}
	if m.RequireMarker != ".synced" || m.Timeout != nil || c.Targets[3].Offload != nil {
		t.Errorf("marker or absent offload misread: %+v %+v", m, c.Targets[3].Offload)
	}
}

func TestLoadOffloadErrors(t *testing.T) {
	target := "targets:\n  - name: a\n    path: models\n    offload: "
	tests := []struct {
		name, offload, key, reason string
	}{
		{"both", `{command: [sh, "{path}"], require_marker: .synced}`, "targets[0] (a).offload", "not both"},
		{"neither", `{}`, "targets[0] (a).offload", "set command"},
		{"only a timeout", `{timeout: 5m}`, "targets[0] (a).offload", "set command"},
		{"empty argv", `{command: []}`, "targets[0] (a).offload.command", "empty"},
		{"empty program", `{command: ["", "{path}"]}`, "targets[0] (a).offload.command", "empty"},
		{"program is a placeholder", `{command: ["{path}"]}`, "targets[0] (a).offload.command", "must not be a placeholder"},
		{"unknown placeholder", `{command: [rclone, copyto, "{path}", "remote:{bucket}/{name}"]}`, "targets[0] (a).offload.command[3]", "unknown placeholder {bucket}"},
		{"no checkpoint named", `{command: [rclone, sync, /data, "remote:{target}"]}`, "targets[0] (a).offload.command", "neither {path} nor {name}"},
		{"program not found", `{command: [no-such-offload-tool, "{path}"]}`, "targets[0] (a).offload.command", "not found"},
		{"zero timeout", `{command: [sh, "{path}"], timeout: 0s}`, "targets[0] (a).offload.timeout", "positive"},
		{"concurrency too high", `{command: [sh, "{path}"], concurrency: 1000}`, "targets[0] (a).offload.concurrency", "between 1 and"},
		{"negative concurrency", `{command: [sh, "{path}"], concurrency: -1}`, "targets[0] (a).offload.concurrency", "between 1 and"},
		{"marker with a slash", `{require_marker: sub/.synced}`, "targets[0] (a).offload.require_marker", "plain file name"},
		{"marker dot-dot", `{require_marker: ..}`, "targets[0] (a).offload.require_marker", "plain file name"},
		{"marker with timeout", `{require_marker: .synced, timeout: 5m}`, "targets[0] (a).offload", "apply to command"},
		{"unknown key", `{commands: [sh, "{path}"]}`, "", "field commands not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeConfig(t, target+tt.offload+"\n")
			_, err := Load(p)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("offload %s: error %v, want a *config.Error", tt.offload, err)
			}
			if ce.Key != tt.key || !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("offload %s: key=%q reason=%q; want key=%q reason containing %q", tt.offload, ce.Key, ce.Reason, tt.key, tt.reason)
			}
		})
	}
}
