package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// The operator guide's example, used when a projection lacks a number.
const (
	guideSize  = "84MB"
	guideSteps = 25000
)

type planCmd struct {
	*common
	cmd       *kingpin.CmdClause
	saveEvery int64
	steps     int64
	keep      int64
	size      string
	maxBytes  string
	target    string
}

func addPlan(app *kingpin.Application, c *common) *planCmd {
	p := &planCmd{common: c}
	p.cmd = app.Command("plan", "Project the disk footprint of a checkpointing schedule, from flags (--save-every) or from what the targets show now.")
	p.cmd.Flag("save-every", "Steps between checkpoints.").Int64Var(&p.saveEvery)
	p.cmd.Flag("steps", "Training steps in the run (default 25000, the operator guide's run).").Int64Var(&p.steps)
	p.cmd.Flag("keep", "Checkpoints kept (0: all of them).").Int64Var(&p.keep)
	p.cmd.Flag("size", "Size of one checkpoint, e.g. 84MB (default: the target's newest checkpoint, else 84MB).").StringVar(&p.size)
	p.cmd.Flag("max-bytes", "Cap on the checkpoints' disk usage, e.g. 2TiB, as a target's max_bytes (default: the target's).").StringVar(&p.maxBytes)
	p.cmd.Flag("target", "Only this target (live projection).").StringVar(&p.target)
	return p
}

func (p *planCmd) run(ctx context.Context) int {
	if p.saveEvery < 0 || p.steps < 0 || p.keep < 0 {
		fmt.Fprintln(p.stderr, "--save-every, --steps and --keep must not be negative")
		return exitUsage
	}
	if p.saveEvery > 0 {
		return p.fromFlags()
	}
	return p.live(ctx)
}

func (p *planCmd) fromFlags() int {
	var notes []string
	steps := p.steps
	if steps == 0 {
		steps = guideSteps
		notes = append(notes, fmt.Sprintf("--steps not given: assuming %d", guideSteps))
	}
	sizeText := p.size
	if sizeText == "" {
		sizeText = guideSize
		notes = append(notes, "--size not given: assuming "+guideSize)
	}
	size, err := checkpoint.ParseBytes(sizeText)
	if err != nil {
		fmt.Fprintf(p.stderr, "--size: %v\n", err)
		return exitUsage
	}
	maxBytes, err := p.maxBytesFlag()
	if err != nil {
		fmt.Fprintln(p.stderr, err)
		return exitUsage
	}
	pr := pruner.Project(p.saveEvery, steps, p.keep, size, maxBytes)
	keep := "all"
	if p.keep > 0 {
		keep = fmt.Sprintf("the newest %d", p.keep)
	}
	if maxBytes > 0 {
		keep += " within max_bytes " + formatBytes(int64(maxBytes))
	}
	fmt.Fprintf(p.stdout, "saving every %d steps for %d steps, %s each, keeping %s:\n", p.saveEvery, steps, formatSI(size), keep)
	fmt.Fprintf(p.stdout, "  %d files, %s (%s)\n", pr.Files, formatSI(pr.Bytes), formatBytes(int64(pr.Bytes)))
	switch {
	case pr.CappedBy == "max_bytes" && maxBytes < size:
		fmt.Fprintln(p.stdout, "  max_bytes is smaller than one checkpoint: only the newest is kept, and it alone is over max_bytes")
	case pr.CappedBy == "max_bytes":
		fmt.Fprintf(p.stdout, "  max_bytes is the limit: it holds %d checkpoints of this size\n", pr.Files)
	}
	for _, n := range notes {
		fmt.Fprintf(p.stdout, "  (%s)\n", n)
	}
	return exitOK
}

// maxBytesFlag parses --max-bytes (0 when not given).
func (p *planCmd) maxBytesFlag() (uint64, error) {
	if p.maxBytes == "" {
		return 0, nil
	}
	n, err := checkpoint.ParseBytes(p.maxBytes)
	if err != nil {
		return 0, fmt.Errorf("--max-bytes: %w", err)
	}
	return n, nil
}

func (p *planCmd) live(ctx context.Context) int {
	logger, _ := p.logger()
	w, ok := p.load(logger, p.target)
	if !ok {
		return exitError
	}
	code := exitOK
	for _, snap := range w.inv.ScanAll(ctx) {
		if err := p.liveOne(snap, w.policy(snap.Target.Name)); err != nil {
			fmt.Fprintf(p.stderr, "target %s: %v\n", snap.Target.Name, err)
			code = exitError
		}
	}
	return code
}

func (p *planCmd) liveOne(snap *checkpoint.Snapshot, pol pruner.Policy) error {
	if snap.Err != nil {
		return snap.Err
	}
	out := p.stdout
	fmt.Fprintf(out, "target %s: %s\n", snap.Target.Name, snap.Target.Path)
	latest := snap.Latest()
	if latest == nil || latest.Bytes == 0 || snap.FS == nil {
		fmt.Fprintln(out, "  no complete checkpoint yet: nothing to project from")
		return nil
	}
	fs := snap.FS
	size := uint64(latest.Bytes)
	if p.size != "" {
		s, err := checkpoint.ParseBytes(p.size)
		if err != nil {
			return fmt.Errorf("--size: %w", err)
		}
		size = s
	}
	fits := fs.AvailBytes / size
	fmt.Fprintf(out, "  %d checkpoints use %s; newest (%s) is %s\n", len(snap.Complete()), formatBytes(snap.Bytes()), newestWords(*latest), formatBytes(int64(size)))
	fmt.Fprintf(out, "  filesystem %s: %s available of %s (%.1f%% used): %d more saves fit\n", fs.Mountpoint,
		formatBytes(int64(fs.AvailBytes)), formatBytes(int64(fs.SizeBytes)), 100*fs.UsedRatio(), fits)
	if iv, ok := snap.SaveInterval(); ok {
		full := time.Duration(fits) * iv
		fmt.Fprintf(out, "  one save every %s: the disk is full in about %s, at %s\n", iv.Round(time.Second), full.Round(time.Second),
			time.Now().Add(full).Format(time.RFC3339))
	} else {
		fmt.Fprintln(out, "  fewer than two saves: save cadence unknown")
	}
	fmt.Fprintf(out, "  keep_last %d holds the checkpoints at about %s\n", pol.KeepLast, formatBytes(int64(uint64(pol.KeepLast)*size)))
	// Room for checkpoints below the high watermark: what they use now plus
	// what is available, less the free space the watermark asks for.
	reserve := pol.High.Free
	if !pol.High.IsBytes() {
		reserve = uint64(math.Ceil((1 - pol.High.Ratio) * float64(fs.SizeBytes)))
	}
	room := int64(uint64(snap.Bytes())+fs.AvailBytes) - int64(reserve)
	if room < 0 {
		room = 0
	}
	fmt.Fprintf(out, "  the largest keep_last that stays under the high watermark %s is %d\n", pol.High, room/int64(size))
	return p.liveMaxBytes(snap, pol, size)
}

// liveMaxBytes projects the target's max_bytes (or --max-bytes).
func (p *planCmd) liveMaxBytes(snap *checkpoint.Snapshot, pol pruner.Policy, size uint64) error {
	limit := snap.Target.MaxBytes
	if p.maxBytes != "" {
		n, err := p.maxBytesFlag()
		if err != nil {
			return err
		}
		limit = n
	}
	if limit == 0 {
		fmt.Fprintln(p.stdout, "  no max_bytes")
		return nil
	}
	used := uint64(snap.Bytes())
	fmt.Fprintf(p.stdout, "  max_bytes %s: the checkpoints use %.1f%% of it and it holds %d checkpoints of the newest's size\n",
		formatBytes(int64(limit)), 100*float64(used)/float64(limit), limit/size)
	if used > limit {
		fmt.Fprintf(p.stdout, "  over max_bytes by %s: the next prune deletes the oldest prunable checkpoints\n", formatBytes(int64(used-limit)))
	}
	if need := uint64(pol.KeepLast) * size; need > limit {
		fmt.Fprintf(p.stdout, "  keep_last %d needs about %s, more than max_bytes: those are kept and usage stays over it\n",
			pol.KeepLast, formatBytes(int64(need)))
	}
	return nil
}

// newestWords names the newest checkpoint in the live projection: by its
// step, or by its name where that carries a time and no step.
func newestWords(c checkpoint.Checkpoint) string {
	if c.NoStep {
		return c.Name
	}
	return fmt.Sprintf("step %d", c.Step)
}
