// Package pruner decides which checkpoints may go and deletes them safely.
//
// Plan is a pure function from a target's snapshot, its retention policy and
// a goal to an ordered list of deletions, with a reason for everything kept.
// Execute carries a plan out under the target's lock, re-checking every
// checkpoint just before it goes and moving it to a hidden trash name first,
// so that a crash never leaves a half-deleted checkpoint that looks valid.
// Service is the one way every prune goes (the CLI, the Alertmanager
// adapter, the autonomous guard): it re-measures, plans and executes, one
// prune per filesystem at a time.
//
// Locks, trash names, deletion marks and the filesystem judgements it acts
// on are targetdir's. It imports checkpoint (targets and snapshots) and
// targetdir, and must not import the collector, the Alertmanager adapter or
// cmd.
package pruner
