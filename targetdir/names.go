package targetdir

import "strings"

// Every entry the exporter makes in a target directory starts with
// OwnPrefix, so that a scan can leave all of them out whatever a layout's
// rules would make of their names (a scan never counts such an entry, lists
// it as ignored or hands it to a layout):
//
//	.checkpoint_exporter.lock                 LockFile: flocked by a prune (flock mode)
//	.checkpoint_exporter.lockfile             LeaseFile: a prune's lock record (lockfile mode)
//	.checkpoint_exporter-spare.lockfile       SpareLeaseFile: made ahead of need, linked to LeaseFile on a full disk
//	.checkpoint_exporter-trash-<name>[.N]     TrashPrefix: an entry being removed
//	.checkpoint_exporter-deleting@<entry>     AnchorPrefix: a multi-entry checkpoint's first entry, renamed when its deletion begins
//	.checkpoint_exporter-deleting-<name>[.N]  DeletingPrefix: an intent record (earlier versions; names too long for an anchor)
//	…-deleting-<name>.<pid>.tmp               DeletingTmpSuffix: an intent record being written, which means nothing
//
// The offload state file (package offload) starts with OwnPrefix too. These
// names are read back by later versions (recovery of trash an older
// version left): they never change.

// OwnPrefix starts the name of every entry the exporter itself makes in a
// target directory.
const OwnPrefix = ".checkpoint_exporter"

// IsOwn reports whether name is one of the exporter's own entries.
func IsOwn(name string) bool { return strings.HasPrefix(name, OwnPrefix) }

// TrashPrefix starts the hidden name a checkpoint's entry is renamed to
// before it is removed.
const TrashPrefix = OwnPrefix + "-trash-"

// IsTrash reports whether name is a trash entry's.
func IsTrash(name string) bool { return strings.HasPrefix(name, TrashPrefix) }

// IsMark reports whether name is a deletion mark: an anchor or an intent
// record, complete or not.
func IsMark(name string) bool {
	_, anchor := IsAnchor(name)
	return anchor || strings.HasPrefix(name, DeletingPrefix)
}
