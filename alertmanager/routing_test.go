package alertmanager

import (
	"slices"
	"testing"
)

// Routing by an operator-controlled label: in Kubernetes the instance label
// is the pod's address, so a DaemonSet pod knows itself by its node name.
func TestMatchLabels(t *testing.T) {
	m := Matcher{
		Targets:     []string{"llama", "vit"},
		Mountpoints: map[string][]string{"/data": {"llama", "vit"}},
		Labels:      map[string]string{"node": "gpu01"},
	}
	for _, tc := range []struct {
		name        string
		labels      map[string]string
		matcher     func(Matcher) Matcher
		wantTargets []string
		wantIgnored string
	}{
		{name: "own node, target", labels: map[string]string{"node": "gpu01", "target": "llama"}, wantTargets: []string{"llama"}},
		{name: "own node, node_exporter mountpoint alert", labels: map[string]string{"alertname": "NodeFilesystemAlmostOutOfSpace", "node": "gpu01", "instance": "10.0.0.7:9100", "mountpoint": "/data"}, wantTargets: []string{"llama", "vit"}},
		{name: "other node", labels: map[string]string{"node": "gpu02", "target": "llama"}, wantIgnored: `label node="gpu02" is not this exporter's ("gpu01")`},
		{name: "other node, mountpoint alert", labels: map[string]string{"node": "gpu02", "mountpoint": "/data"}, wantIgnored: `label node="gpu02" is not this exporter's ("gpu01")`},
		{name: "no node label: not foreign", labels: map[string]string{"target": "vit"}, wantTargets: []string{"vit"}},
		{name: "empty node label is a value", labels: map[string]string{"node": "", "target": "vit"}, wantIgnored: `label node="" is not this exporter's ("gpu01")`},
		{name: "instance is not consulted without --webhook.instance", labels: map[string]string{"node": "gpu01", "instance": "10.1.2.3:9866", "target": "vit"}, wantTargets: []string{"vit"}},
		{
			name: "every label must agree", labels: map[string]string{"node": "gpu01", "cluster": "b", "target": "vit"},
			matcher:     func(m Matcher) Matcher { m.Labels = map[string]string{"node": "gpu01", "cluster": "a"}; return m },
			wantIgnored: `label cluster="b" is not this exporter's ("a")`,
		},
		{
			name: "instance and labels together", labels: map[string]string{"node": "gpu01", "instance": "gpu09:9866", "target": "vit"},
			matcher:     func(m Matcher) Matcher { m.Instance = "gpu01:9866"; return m },
			wantIgnored: `instance "gpu09:9866" is not this exporter ("gpu01:9866")`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mm := m
			if tc.matcher != nil {
				mm = tc.matcher(m)
			}
			got := matchAll(mm, &Message{Version: "4", Alerts: []Alert{{Status: "firing", Labels: tc.labels}}})[0]
			if !slices.Equal(got.Targets, append([]string{}, tc.wantTargets...)) || got.Ignored != tc.wantIgnored {
				t.Errorf("labels %v: got targets %v ignored %q, want targets %v ignored %q",
					tc.labels, got.Targets, got.Ignored, tc.wantTargets, tc.wantIgnored)
			}
		})
	}
}
