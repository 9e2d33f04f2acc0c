// Package checkpoint knows what a machine-learning checkpoint directory holds:
// which entries are checkpoints of which framework layout, their steps, whether
// they are complete or pinned by the framework's own state files, how much disk
// they use, and how full the filesystem under them is. It keeps the latest scan
// of every target in an Inventory that readers consult without touching the
// filesystem. It has no Prometheus and no HTTP in it.
package checkpoint
