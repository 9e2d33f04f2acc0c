package pruner

import (
	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// Target is one checkpoint directory with its retention policy: the one value
// per configured target from which the scanner, the service, the webhook and
// the metrics each take what they need.
type Target struct {
	checkpoint.Target
	Policy Policy
	// Offload, when set, confirms which checkpoints are copied elsewhere:
	// only those are prunable.
	Offload Confirmer
}

// Names returns the targets' names, in order.
func Names(ts []Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}
