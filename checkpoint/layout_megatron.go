package checkpoint

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
)

// Layouts whose trainers name the finished checkpoint in a tracker file
// written after every rank's shards: a checkpoint newer than the tracker's is
// still being written (or was abandoned), and the tracker's one is kept.

// deepspeedLayout: global_step{N}/ directories and the "latest" tag file.
// Written from microsoft/DeepSpeed deepspeed/runtime/engine.py
// (save_checkpoint: tag global_step{N}, rank 0 writes latest after commit).
type deepspeedLayout struct{}

var dsRe = regexp.MustCompile(`^global_step([0-9]+)$`)

func (deepspeedLayout) name() string { return "deepspeed" }

func (deepspeedLayout) match(d *listing) match {
	m := dirsNamed(d, "deepspeed", "global_step{step}", dsRe)
	if data, _, err := d.readSmall("latest"); err == nil {
		tag := string(bytes.TrimSpace(data))
		m.seen = append(m.seen, "latest")
		if s, ok := submatchStep(dsRe, tag); ok {
			trackerCut(&m, s, tag, "latest")
		} else if pin(m.found, tag, "latest") {
			m.note("latest names %s", tag)
		}
	}
	return m
}

// megatronLayout: iter_{step:07d}/ directories and
// latest_checkpointed_iteration.txt. Written from NVIDIA/Megatron-LM
// megatron/training/checkpointing.py (get_checkpoint_name,
// get_checkpoint_tracker_filename, the tracker written in iter_finalize_fn
// after all shards and metadata.json).
type megatronLayout struct{}

var megatronRe = regexp.MustCompile(`^iter_([0-9]+)$`)

func (megatronLayout) name() string { return "megatron" }

func (megatronLayout) match(d *listing) match {
	m := dirsNamed(d, "megatron", "iter_{step}", megatronRe)
	// torch_dist checkpoints (megatron/core/dist_checkpointing/serialization.py
	// save: metadata_finalize_fn writes metadata.json after the shards);
	// legacy and torch_dcp ones never have it, so it counts only where an
	// older sibling has it.
	m.markers = []string{"metadata.json", ".metadata"}
	if s, ok := readTracker(d); ok {
		trackerCut(&m, s, fmt.Sprintf("iter_%07d", s), "latest_checkpointed_iteration.txt")
	}
	return m
}

// verlLayout: global_step_{N}/ directories (actor/, critic/, data.pt) and the
// same tracker file. Written from volcengine/verl
// verl/trainer/ppo/ray_trainer.py (_save_checkpoint: data.pt after actor and
// critic, then latest_checkpointed_iteration.txt "for atomic usage").
type verlLayout struct{}

var verlRe = regexp.MustCompile(`^global_step_([0-9]+)$`)

func (verlLayout) name() string { return "verl" }

func (verlLayout) match(d *listing) match {
	m := dirsNamed(d, "verl", "global_step_{step}", verlRe)
	m.markers = []string{"data.pt"}
	if s, ok := readTracker(d); ok {
		trackerCut(&m, s, fmt.Sprintf("global_step_%d", s), "latest_checkpointed_iteration.txt")
	}
	return m
}

func dirsNamed(d *listing, layout, series string, re *regexp.Regexp) match {
	m := match{layout: layout, series: series}
	for _, e := range d.entries {
		if s, ok := submatchStep(re, e.name); ok && e.kind == kindDir {
			m.found = append(m.found, found{name: e.name, step: s, entries: []string{e.name}, dir: true})
		}
	}
	return m
}

func readTracker(d *listing) (int64, bool) {
	data, _, err := d.readSmall("latest_checkpointed_iteration.txt")
	if err != nil {
		return 0, false
	}
	s, err := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
	return s, err == nil
}
