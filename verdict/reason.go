package verdict

import (
	"strings"

	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// Reason codes: what a pruner reason means, without its words, so that a
// page can say it in another language. The codes are part of the status
// API (/api/v1/status); new reasons get new codes.
const (
	CodeIncomplete = "incomplete"
	CodeUncertain  = "uncertain"
	// CodeNoRule: no layout's rule names it; a pattern: would.
	CodeNoRule       = "no_rule"
	CodePinned       = "pinned"
	CodeProtected    = "protected"
	CodeTornYoung    = "torn_young"
	CodeNotOffloaded = "not_offloaded"
	CodeSuspect      = "suspect"
	CodeTooYoung     = "too_young"
	CodeLatest       = "latest"
	CodeKeepWithin   = "keep_within"
	CodeKeepEvery    = "keep_every"
	CodeNotNeeded    = "not_needed"
	// Deletion reasons.
	CodeTorn      = "torn"
	CodeOlderThan = "older_than_newest"
	CodeFreeSpace = "free_space"
	CodeMaxBytes  = "max_bytes"
	// CodeOther is a reason this package does not know (its words stand).
	CodeOther = "other"
)

// Explained is a pruner reason split into a code and the part of its words
// that names things (the N of "latest 3", what pins a checkpoint, why a save
// is suspect), which stays as it is in any language.
type Explained struct {
	Code   string `json:"code"`
	Detail string `json:"detail,omitempty"`
}

// reasons maps the pruner's fixed reasons and reason prefixes to codes; the
// rest of a prefixed reason is its detail. Order matters: longer prefixes
// of the same start come first.
var reasons = []struct{ prefix, code string }{
	{pruner.ReasonIncomplete, CodeIncomplete},
	{pruner.ReasonNoRule, CodeNoRule},
	{pruner.ReasonUncertain, CodeUncertain},
	{pruner.ReasonPinned, CodePinned},
	{pruner.ReasonProtected, CodeProtected},
	{pruner.ReasonTornYoung, CodeTornYoung},
	{pruner.ReasonNotOffloaded, CodeNotOffloaded},
	{pruner.ReasonSuspect, CodeSuspect},
	{pruner.ReasonTooYoung, CodeTooYoung},
	{pruner.ReasonLatest, CodeLatest},
	{pruner.ReasonKeepWithin, CodeKeepWithin},
	{pruner.ReasonKeepEvery, CodeKeepEvery},
	{pruner.ReasonNotNeeded, CodeNotNeeded},
	{"torn save", CodeTorn},
	{"older than the newest", CodeOlderThan},
	{"oldest, to free space", CodeFreeSpace},
	{"oldest, over max_bytes", CodeMaxBytes},
}

// Explain splits a reason from a pruner plan into its code and detail:
// "latest 3" → latest, "3"; "pinned (trainer_state.json …)" → pinned,
// "trainer_state.json …"; "torn save: zip end record missing" → torn, "zip
// end record missing". An unknown reason is CodeOther with the reason as its
// detail.
func Explain(reason string) Explained {
	for _, r := range reasons {
		rest, ok := strings.CutPrefix(reason, r.prefix)
		if !ok || (rest != "" && !strings.ContainsAny(rest[:1], " :(")) {
			continue
		}
		rest = strings.TrimSpace(strings.TrimLeft(rest, ":"))
		rest = strings.TrimSpace(rest)
		if strings.HasPrefix(rest, "(") && strings.HasSuffix(rest, ")") {
			rest = rest[1 : len(rest)-1]
		}
		return Explained{Code: r.code, Detail: rest}
	}
	return Explained{Code: CodeOther, Detail: reason}
}
