package helmtest

import (
	"strings"
	"testing"
)

// Values that cannot work are refused at render time, with a reason.
func TestChartRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name, values, want string
	}{
		{"unknown mode", "mode: cluster", "mode must be node-local or shared"},
		{"shared without a claim", "mode: shared\nconfig: {targets: [{name: a, path: /checkpoints/a}]}", "shared.existingClaim"},
		{"target outside the host paths", "config: {targets: [{name: a, path: /scratch/a}]}", "not under any of nodeLocal.hostPaths"},
		{"target outside the shared mount", sharedValues + "config: {targets: [{name: a, path: /data/a}]}", "not under shared.mountPath"},
		{"host path prefix is not a parent", "config: {targets: [{name: a, path: /data/checkpoints-old}]}", "not under any of nodeLocal.hostPaths"},
		{"watermark the rule cannot express", "config: {prune: {high_watermark: 10GiB}}", "needs a percentage"},
		{"unknown monitor kind", "monitor: {kind: Probe}", "monitor.kind must be"},
		{"unknown history volume", "history: {volume: pvc}", "history.volume must be emptyDir or hostPath"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := template(t, values(t, tc.values))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("values %q: error %v, want one saying %q", tc.values, err, tc.want)
			}
		})
	}
}
