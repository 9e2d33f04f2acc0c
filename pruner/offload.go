package pruner

import (
	"context"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// Confirmer tells which checkpoints of a snapshot are confirmed offloaded
// (copied elsewhere by the target's offload command, or marked by the
// operator's own sync job). It may read the disk, so it runs before planning
// and never under the prune's lock; the lookup it returns must not.
type Confirmer interface {
	Confirmed(ctx context.Context, snap *checkpoint.Snapshot) func(checkpoint.Checkpoint) bool
}

// PolicyFor is t's policy for planning a prune of snap: with offload
// configured, a checkpoint not confirmed offloaded is kept ("not offloaded"),
// so a prune's goal counts only confirmed candidates.
func (t Target) PolicyFor(ctx context.Context, snap *checkpoint.Snapshot) Policy {
	p := t.Policy
	if t.Offload != nil {
		p.Offloaded = t.Offload.Confirmed(ctx, snap)
	}
	return p
}
