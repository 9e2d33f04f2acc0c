package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/alecthomas/kingpin/v2"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

type pruneCmd struct {
	*common
	cmd        *kingpin.CmdClause
	target     string
	keep       int
	freeTarget string
	execute    bool
	history    historyFlags
}

func addPrune(app *kingpin.Application, c *common) *pruneCmd {
	p := &pruneCmd{common: c}
	p.cmd = app.Command("prune", "Delete old checkpoints: preview by default, delete only with --execute. "+
		"Exit code 3 when the goal cannot be reached.")
	p.cmd.Flag("target", "Only this target (default: every target).").StringVar(&p.target)
	p.cmd.Flag("keep", "Keep only the newest N complete checkpoints (default: the target's keep_last, unless --free-target is given).").IntVar(&p.keep)
	p.cmd.Flag("free-target", "Delete oldest first until this much of the filesystem is free: a share (20%) or a size (10GiB).").PlaceHolder("20%").StringVar(&p.freeTarget)
	p.cmd.Flag("execute", "Really delete (without it, only show what would be deleted).").BoolVar(&p.execute)
	addHistoryFlags(p.cmd, &p.history)
	return p
}

func (p *pruneCmd) run(ctx context.Context) int {
	logger, _ := p.logger()
	if p.keep < 0 {
		fmt.Fprintln(p.stderr, "--keep must be at least 1")
		return exitUsage
	}
	free, err := checkpoint.ParseFreeGoal(p.freeTarget)
	if err != nil {
		fmt.Fprintln(p.stderr, "--free-target:", err)
		return exitUsage
	}
	w, ok := p.load(logger, p.target)
	if !ok {
		return exitError
	}
	svc := pruner.NewService(logger, w.inv, w.targets, &pruner.Executor{Logger: logger, LockWait: p.lockWait}, nil)
	if p.history.file != "" {
		// Each run is in the file before it is printed.
		hist, err := p.history.open(logger)
		if err != nil {
			fmt.Fprintln(p.stderr, err)
			return exitError
		}
		defer hist.Close()
		svc.RecordTo(hist.PruneRecorder())
	}
	mode := pruner.ModeDryRun
	if p.execute {
		mode = pruner.ModeExecute
	}
	code := exitOK
	for _, t := range w.targets {
		keep := p.keep
		if keep == 0 && free.IsZero() {
			keep = t.Policy.KeepLast
		}
		if p.execute {
			// Made while there is room, for a later prune of a full disk;
			// on a full disk this one manages without (see pruner.Provision).
			targetdir.Provision(t.Path, t.Policy.Lock)
			// Trash left by an interrupted prune goes first, even when
			// nothing is to be deleted now; what cannot be removed is logged
			// and the prune goes on.
			if _, err := pruner.RecoverTrash(ctx, logger, t, p.lockWait); err != nil {
				fmt.Fprintf(p.stderr, "target %s: could not finish an interrupted prune: %v\n", t.Name, err)
			}
		}
		run, err := svc.Prune(ctx, pruner.Request{Target: t.Name, Trigger: pruner.TriggerCLI, Mode: mode, Keep: keep, Free: free})
		planned := run.Snapshot.Up()
		if planned {
			printPlan(p.stdout, run.Snapshot, run.Plan)
		}
		plan, res := run.Plan, run.Result
		switch {
		case err != nil:
			fmt.Fprintf(p.stderr, "target %s: %v\n", t.Name, err)
			code = exitError
		case !p.execute:
			fmt.Fprintf(p.stdout, "dry run: would delete %d checkpoints (%s); run again with --execute to delete them\n",
				len(plan.Delete), formatBytes(int64(plan.DeleteBytes)))
		default:
			fmt.Fprintf(p.stdout, "deleted %d checkpoints, freed %s (their disk usage); available space changed by %s meanwhile\n",
				len(res.Deleted), formatBytes(res.FreedBytes), signedBytes(res.FreeSpaceChange))
			for _, sk := range res.Skipped {
				fmt.Fprintf(p.stdout, "skipped %s: %s\n", sk.Name, sk.Reason)
			}
			for _, name := range res.TrashLeft {
				fmt.Fprintf(p.stdout, "could not remove trash %s (see the log); it takes space until removed by hand\n", name)
			}
			if res.Stopped != "" {
				fmt.Fprintf(p.stdout, "stopped: %s\n", res.Stopped)
			}
		}
		switch {
		case !planned || code != exitOK || (!plan.Insufficient && res.Outcome != pruner.ResultInsufficient):
		case res.Stopped != "":
			fmt.Fprintf(p.stdout, "goal not reached: the filesystem reports %s more to free, and its free space does not show deletions\n",
				formatBytes(int64(res.ShortBytes)))
			code = exitInsufficient
		default:
			fmt.Fprintf(p.stdout, "goal not reachable: %s more must be freed, but everything left is kept\n",
				formatBytes(int64(max(plan.ShortBytes, res.ShortBytes))))
			code = exitInsufficient
		}
	}
	return code
}

func printPlan(out io.Writer, snap *checkpoint.Snapshot, plan pruner.Plan) {
	goal := fmt.Sprintf("keep the newest %d", plan.Goal.Keep)
	if plan.Goal.Kind == pruner.GoalWatermark {
		goal = "free space to the low watermark " + plan.Free.String()
	} else if !plan.Free.IsZero() {
		goal += ", then check " + plan.Free.String()
	}
	fmt.Fprintf(out, "target %s: %s (layout %s, series %q)\ngoal: %s\n", snap.Target.Name, snap.Target.Path, snap.Layout, snap.Series, goal)
	if snap.FS != nil && !plan.Free.IsZero() {
		fmt.Fprintf(out, "filesystem %s: %s available, %.1f%% used; %s must be freed\n", snap.FS.Mountpoint,
			formatBytes(int64(snap.FS.AvailBytes)), 100*snap.FS.UsedRatio(), formatBytes(int64(plan.NeedBytes)))
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tNAME\tSTEP\tSIZE\tWHY")
	for _, it := range plan.Delete {
		c := it.Checkpoint
		fmt.Fprintf(tw, "delete\t%s\t%s\t%s\t%s\n", c.Name, stepCell(c), formatBytes(c.Bytes), it.Reason)
	}
	for _, it := range plan.Keep {
		c := it.Checkpoint
		fmt.Fprintf(tw, "keep\t%s\t%s\t%s\t%s\n", c.Name, stepCell(c), formatBytes(c.Bytes), it.Reason)
	}
	tw.Flush()
	if len(snap.Ignored) > 0 {
		fmt.Fprintf(out, "not checkpoints (never deleted): %s\n", strings.Join(snap.Ignored, ", "))
	}
}
