// Package offload copies checkpoints elsewhere before the pruner may delete
// them, and says which ones are safely copied. A target's offload is either a
// command (an argv such as rclone copyto, run per settled checkpoint by a
// small worker pool, ahead of any need to prune) or a marker file written by
// the operator's own sync job. What was offloaded is kept in a state file in
// the target directory, so that a restart or a second exporter sees it; a
// record is trusted only while the checkpoint keeps the identity (inodes,
// times, size) it had when it was copied, so a checkpoint rewritten in place
// is offloaded again rather than deleted.
//
// It imports checkpoint; the pruner asks it through pruner.Confirmer and
// it must not import pruner, collector or anything above them.
package offload
