// Package checkpoint reads target directories: a Scanner lists a target's
// top level through its targetdir.Dir, has layout recognise the
// checkpoints (layout is pure: this package implements its Dir interface,
// with caches, over the open directory), has sizing measure them, and
// returns a Snapshot (Checkpoint: name, step, entries, bytes, status; the
// filesystem's figures). An Inventory keeps the latest snapshot of every
// target, rescans in the background, marks a target whose scan stopped
// making progress down, and lets readers (the collector, the status page,
// the webhook) consult memory only. It also holds the policy units shared
// by the configuration and the pruner (Watermark, byte sizes).
//
// It has no Prometheus and no HTTP in it. It imports layout, sizing and
// targetdir, and must not import pruner, collector or anything above them.
package checkpoint
