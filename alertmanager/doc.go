// Package alertmanager is the exporter's Alertmanager adapter: it decodes
// Alertmanager's webhook payload (version 4) as a stream, matches each
// firing alert to the targets it asks to prune (by its target label, or by
// the mount point node_exporter's filesystem alerts carry), checks the
// bearer token, and serves the webhook: it triggers the pruner's prunes,
// waits for them a bounded time and answers with what they did. AuthGuard is
// the rule that a webhook able to delete is authenticated.
//
// It never decides what to delete: the pruner re-measures and plans.
// Dependencies point one way: it imports pruner and checkpoint; pruner
// must not import it.
package alertmanager
