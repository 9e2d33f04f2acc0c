package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	"github.com/checkpoint-exporter/checkpoint_exporter/config"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// checkConfigCmd validates a configuration file for GitOps pipelines: the
// same checks and messages as start-up, without scanning the target
// directories (they are on the training nodes, not in CI). Nested targets
// are refused as start-up refuses them: by name anywhere, and through
// symlinks and bind mounts where the paths exist, as on the node itself.
type checkConfigCmd struct {
	*common
	cmd *kingpin.CmdClause
}

func addCheckConfig(app *kingpin.Application, c *common) *checkConfigCmd {
	k := &checkConfigCmd{common: c}
	k.cmd = app.Command("check-config", "Check --config.file and exit: 0 if start-up would accept it, 1 if not (with start-up's message). "+
		"The target directories are not scanned: a path that is a file is only found at start-up. "+
		"Nested targets are refused, through symlinks and bind mounts where the paths exist on this machine.")
	return k
}

func (k *checkConfigCmd) run(context.Context) int {
	if k.configFile == "" {
		fmt.Fprintf(k.stderr, "%s: error: check-config needs --config.file\n", program)
		return exitUsage
	}
	cfg, err := config.Parse(k.configFile)
	if err != nil {
		fmt.Fprintln(k.stderr, err)
		return exitError
	}
	// Nesting is refused here too: it needs no scan, only the paths (and,
	// where they exist, the mounts they lie in).
	if err := cfg.CheckOverlap(k.configFile); err != nil {
		fmt.Fprintln(k.stderr, err)
		return exitError
	}
	// So is a lock file on a filesystem that lists from a cache, where the
	// path exists here.
	if err := cfg.CheckLocks(k.configFile); err != nil {
		fmt.Fprintln(k.stderr, err)
		return exitError
	}
	targets, err := selectTargets(cfg, "")
	if err != nil {
		fmt.Fprintln(k.stderr, err)
		return exitError
	}
	fmt.Fprintf(k.stdout, "%s: valid; %d targets: %s\n", k.configFile, len(targets), strings.Join(pruner.Names(targets), ", "))
	return exitOK
}
