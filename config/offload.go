package config

import (
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Offload defaults, documented in the README.
const (
	DefaultOffloadTimeout     = time.Hour
	DefaultOffloadConcurrency = 1
	// MaxOffloadConcurrency bounds the copies run at once per target: each
	// one reads a whole checkpoint from the disk the training job writes to.
	MaxOffloadConcurrency = 64
)

// OffloadPlaceholders are the names a command's arguments may use in braces.
var OffloadPlaceholders = []string{"path", "name", "step", "target"}

// Offload says how a target's checkpoints are copied elsewhere before the
// pruner may delete them: either a command run per checkpoint, or a marker
// file that the operator's own sync job writes.
type Offload struct {
	// Command is an argv (no shell) with placeholders {path}, {name},
	// {step} and {target}.
	Command     []string        `yaml:"command"`
	Timeout     *model.Duration `yaml:"timeout"`
	Concurrency int             `yaml:"concurrency"`
	// RequireMarker is the name of a file inside (or beside, as
	// <name><marker>) a checkpoint that says it is copied.
	RequireMarker string `yaml:"require_marker"`
}

var placeholderRe = regexp.MustCompile(`\{[^{}]*\}`)

// validate applies the offload defaults and checks the offload section.
func (o *Offload) validate() error {
	if o == nil {
		return nil
	}
	switch {
	case len(o.Command) > 0 && o.RequireMarker != "":
		return failf("offload", "set either command or require_marker, not both")
	case o.Command == nil && o.RequireMarker == "":
		return failf("offload", "set command (an argv such as [rclone, copyto, \"{path}\", \"remote:bucket/{target}/{name}\"]) or require_marker")
	case o.RequireMarker != "":
		return o.validateMarker()
	}
	if len(o.Command) == 0 || strings.TrimSpace(o.Command[0]) == "" {
		return failf("offload.command", "empty: the first element must be the program to run")
	}
	if placeholderRe.MatchString(o.Command[0]) {
		return failf("offload.command", "the program %q must not be a placeholder", o.Command[0])
	}
	names := false
	for i, arg := range o.Command {
		for _, ph := range placeholderRe.FindAllString(arg, -1) {
			name := strings.Trim(ph, "{}")
			if !slices.Contains(OffloadPlaceholders, name) {
				return failf(fmt.Sprintf("offload.command[%d]", i), "unknown placeholder %s (want {%s})", ph, strings.Join(OffloadPlaceholders, "}, {"))
			}
			names = names || name == "path" || name == "name"
		}
	}
	if !names {
		return failf("offload.command", "uses neither {path} nor {name}: it could not know which checkpoint to copy")
	}
	if _, err := exec.LookPath(o.Command[0]); err != nil {
		return failf("offload.command", "program %q: %v", o.Command[0], err)
	}
	if o.Timeout == nil {
		d := model.Duration(DefaultOffloadTimeout)
		o.Timeout = &d
	}
	if *o.Timeout <= 0 {
		return failf("offload.timeout", "must be positive")
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultOffloadConcurrency
	}
	if o.Concurrency < 1 || o.Concurrency > MaxOffloadConcurrency {
		return failf("offload.concurrency", "must be between 1 and %d, got %d", MaxOffloadConcurrency, o.Concurrency)
	}
	return nil
}

func (o *Offload) validateMarker() error {
	m := o.RequireMarker
	if strings.ContainsAny(m, "/\x00") || m == "." || m == ".." || strings.TrimSpace(m) != m {
		return failf("offload.require_marker", "%q must be a plain file name such as .synced", m)
	}
	if o.Timeout != nil || o.Concurrency != 0 {
		return failf("offload", "timeout and concurrency apply to command, not to require_marker")
	}
	return nil
}
