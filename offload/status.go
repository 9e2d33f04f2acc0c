package offload

import (
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// States of a checkpoint's offload, as scan shows them.
const (
	StateOffloaded    = "offloaded"
	StateNotOffloaded = "not offloaded"
	StateRunning      = "running"
	StateFailed       = "failed"
	// StateChanged: offloaded once, but the checkpoint changed since (it is
	// offloaded again, never deleted on the strength of the old copy).
	StateChanged = "changed since offload"
)

// Status is one checkpoint's offload state.
type Status struct {
	State string `json:"state"`
	// Time is when it was offloaded (or, with a marker, the marker's mtime).
	Time   time.Time `json:"time,omitzero"`
	Detail string    `json:"detail,omitempty"`
}

// Status says where c stands. It reads what the last Confirmed or Scanned
// call learnt; it never touches the disk.
func (o *Offloader) Status(c checkpoint.Checkpoint) Status {
	k := key(c)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cfg.Marker != "" {
		m, ok := o.markers[k]
		switch {
		case !ok:
			return Status{State: StateNotOffloaded}
		case m.ok:
			return Status{State: StateOffloaded, Time: time.Unix(0, m.marker.mtime), Detail: "marker " + m.marker.path}
		}
		return Status{State: StateNotOffloaded, Detail: m.detail}
	}
	r, recorded := o.records[k]
	switch {
	case o.running[k]:
		return Status{State: StateRunning}
	case recorded && r.sameCommand(o.cfg.Command) && r.matches(c):
		return Status{State: StateOffloaded, Time: r.Offloaded}
	}
	if f, ok := o.failures[k]; ok {
		return Status{State: StateFailed, Detail: f.err}
	}
	switch {
	case recorded && !r.sameCommand(o.cfg.Command):
		return Status{State: StateNotOffloaded, Detail: "offloaded with another command"}
	case recorded:
		return Status{State: StateChanged, Time: r.Offloaded, Detail: "rewritten since its offload: it is offloaded again"}
	}
	return Status{State: StateNotOffloaded}
}
