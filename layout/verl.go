package layout

import (
	"fmt"
	"regexp"
)

// verlLayout: global_step_{N}/ directories (actor/, critic/, data.pt) and
// the same tracker file as Megatron-LM. Written from volcengine/verl
// verl/trainer/ppo/ray_trainer.py (_save_checkpoint: data.pt after actor and
// critic, then latest_checkpointed_iteration.txt "for atomic usage").
type verlLayout struct{}

func init() { register(verlLayout{}, 30) }

var verlRe = regexp.MustCompile(`^global_step_([0-9]+)$`)

func (verlLayout) Name() string { return "verl" }

func (verlLayout) Match(l *Listing) *Reading {
	r := dirsNamed(l, "verl", "global_step_{step}", verlRe)
	r.markers = []string{"data.pt"}
	r.framework = func(*Reading) string { return "verl" }
	if s, ok := readIterationTracker(l); ok {
		trackerCut(r, s, fmt.Sprintf("global_step_%d", s), "latest_checkpointed_iteration.txt")
	}
	return r
}
