package layout

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
)

// megatronLayout: iter_{step:07d}/ directories and
// latest_checkpointed_iteration.txt. Written from NVIDIA/Megatron-LM
// megatron/training/checkpointing.py (get_checkpoint_name,
// get_checkpoint_tracker_filename, the tracker written in iter_finalize_fn
// after all shards) and megatron/core/dist_checkpointing/serialization.py
// (torch_dist: metadata_finalize_fn writes metadata.json after the shards;
// legacy and torch_dcp checkpoints never have it, so it counts only where an
// older sibling has it).
type megatronLayout struct{}

func init() { register(megatronLayout{}, 10) }

var megatronRe = regexp.MustCompile(`^iter_([0-9]+)$`)

func (megatronLayout) Name() string { return "megatron" }

func (megatronLayout) Match(l *Listing) *Reading {
	r := dirsNamed(l, "megatron", "iter_{step}", megatronRe)
	r.markers = []string{"metadata.json", ".metadata"}
	r.framework = func(*Reading) string { return "Megatron-LM" }
	if s, ok := readIterationTracker(l); ok {
		trackerCut(r, s, fmt.Sprintf("iter_%07d", s), "latest_checkpointed_iteration.txt")
	}
	return r
}

// readIterationTracker reads Megatron-LM's and verl's tracker: the step of
// the newest finished save.
func readIterationTracker(l *Listing) (int64, bool) {
	data, _, err := l.ReadFile("latest_checkpointed_iteration.txt")
	if err != nil {
		return 0, false
	}
	s, err := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
	return s, err == nil
}
