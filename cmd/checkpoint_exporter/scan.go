package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/offload"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
	"github.com/checkpoint-exporter/checkpoint_exporter/verdict"
)

type scanCmd struct {
	*common
	cmd    *kingpin.CmdClause
	output string
	target string
}

func addScan(app *kingpin.Application, c *common) *scanCmd {
	s := &scanCmd{common: c}
	s.cmd = app.Command("scan", "Scan the targets once and print every checkpoint with its step, size, age and status.")
	s.cmd.Flag("output", "Output format: table or json.").Short('o').Default("table").EnumVar(&s.output, "table", "json")
	s.cmd.Flag("target", "Only this target.").StringVar(&s.target)
	return s
}

// scanStatus is a checkpoint's status line in scan's output.
type scanStatus struct {
	Name string `json:"name"`
	// Step is null where the name carries a time, not a step: the time
	// orders the checkpoints and is never shown as a step.
	Step    *int64    `json:"step"`
	Bytes   int64     `json:"bytes"`
	Files   int64     `json:"files"`
	ModTime time.Time `json:"mtime"`
	Status  string    `json:"status"`
	Pinned  string    `json:"pinned,omitempty"`
	// Uncertain says why layout detection is not sure, and what settles it.
	Uncertain string `json:"uncertain,omitempty"`
	// Why says why an incomplete checkpoint is not complete, where known.
	Why string `json:"why,omitempty"`
	// Torn says why the save is known to be cut short; Suspect why it may be.
	Torn    string `json:"torn,omitempty"`
	Suspect string `json:"suspect,omitempty"`
	// Entries are the top-level names the checkpoint is made of.
	Entries []string `json:"entries"`
	// Offload is the checkpoint's offload state, when offload is configured.
	Offload *offload.Status `json:"offload,omitempty"`
}

type scanReport struct {
	Target    string `json:"target"`
	Path      string `json:"path"`
	Up        bool   `json:"up"`
	Error     string `json:"error,omitempty"`
	Layout    string `json:"layout,omitempty"`
	Framework string `json:"framework,omitempty"`
	Series    string `json:"series,omitempty"`
	// SuggestedPattern is the pattern: that makes the checkpoints of a
	// layout no rule names (layout unrecognised, all kept as uncertain)
	// prunable, read alike; Candidates, where the names read as several
	// series and none is counted, are each series' pattern.
	SuggestedPattern string             `json:"suggested_pattern,omitempty"`
	Candidates       []string           `json:"candidates,omitempty"`
	Evidence         []string           `json:"evidence"`
	Filesystem       *targetdir.FSStats `json:"filesystem,omitempty"`
	Bytes            int64              `json:"bytes"`
	Checkpoints      []scanStatus       `json:"checkpoints"`
	Ignored          []string           `json:"ignored"`
	Errors           uint64             `json:"errors"`
}

// statuses labels every checkpoint the way a prune by count would treat it.
func statuses(s *checkpoint.Snapshot, p pruner.Policy, now time.Time) []scanStatus {
	out := make([]scanStatus, 0, len(s.Checkpoints))
	for _, v := range verdict.Of(s, p, now) {
		c := v.Checkpoint
		st := scanStatus{Name: c.Name, Bytes: c.Bytes, Files: c.Files, ModTime: c.ModTime,
			Status: v.String(), Pinned: c.Pinned, Uncertain: c.Uncertain, Why: c.Why, Torn: c.Torn, Suspect: c.Suspect}
		if !c.NoStep {
			st.Step = &c.Step
		}
		for _, e := range c.Entries {
			st.Entries = append(st.Entries, e.Name)
		}
		out = append(out, st)
	}
	return out
}

func (s *scanCmd) run(ctx context.Context) int {
	logger, _ := s.logger()
	w, ok := s.load(logger, s.target)
	if !ok {
		return exitError
	}
	now := time.Now()
	code := exitOK
	var reports []scanReport
	for _, snap := range w.inv.ScanAll(ctx) {
		r := scanReport{Target: snap.Target.Name, Path: snap.Target.Path, Up: snap.Up(), Layout: snap.Layout, Series: snap.Series, Framework: snap.Framework,
			SuggestedPattern: snap.Suggested, Candidates: snap.Candidates,
			Filesystem: snap.FS, Ignored: snap.Ignored, Errors: snap.Errors, Checkpoints: []scanStatus{}, Evidence: snap.Evidence}
		if r.Evidence == nil {
			r.Evidence = []string{}
		}
		if r.Ignored == nil {
			r.Ignored = []string{}
		}
		if snap.Err != nil {
			r.Error = snap.Err.Error()
			code = exitError
		} else {
			r.Bytes = snap.Bytes()
			r.Checkpoints = statuses(snap, w.planPolicy(ctx, snap), now)
			for i, c := range snap.Checkpoints {
				if st, ok := w.offloads.Status(snap.Target.Name, c); ok {
					r.Checkpoints[i].Offload = &st
				}
			}
		}
		reports = append(reports, r)
	}
	if s.output == "json" {
		enc := json.NewEncoder(s.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			return exitError
		}
		return code
	}
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(s.stdout)
		}
		printScan(s.stdout, r, now)
	}
	return code
}

func printScan(out io.Writer, r scanReport, now time.Time) {
	fmt.Fprintf(out, "target %s: %s\n", r.Target, r.Path)
	if fs := r.Filesystem; fs != nil {
		fmt.Fprintf(out, "filesystem %s (%s %s): %s available of %s, %.1f%% used\n", fs.Mountpoint, fs.FSType, fs.Device,
			formatBytes(int64(fs.AvailBytes)), formatBytes(int64(fs.SizeBytes)), 100*fs.UsedRatio())
	}
	if !r.Up {
		fmt.Fprintf(out, "DOWN: %s\n", r.Error)
		return
	}
	layout := r.Layout
	if r.Framework != "" {
		layout += " (" + r.Framework + ")"
	}
	fmt.Fprintf(out, "layout %s, series %q: %d checkpoints, %s\n", layout, r.Series, len(r.Checkpoints), formatBytes(r.Bytes))
	torn := 0
	for _, c := range r.Checkpoints {
		if c.Torn != "" {
			torn++
		}
	}
	if torn > 0 {
		fmt.Fprintf(out, "%d torn saves (cut short: not checkpoints, never kept as the newest; deleted first once nothing writes to them)\n", torn)
	}
	for _, e := range r.Evidence {
		fmt.Fprintf(out, "  evidence: %s\n", e)
	}
	if r.Errors > 0 {
		fmt.Fprintf(out, "%d entries could not be read\n", r.Errors)
	}
	if len(r.Checkpoints) > 0 {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
		offloading := r.Checkpoints[0].Offload != nil
		head := "NAME\tSTEP\tSIZE\tAGE\t\tSTATUS\t"
		if offloading {
			head += "\tOFFLOAD\t"
		}
		fmt.Fprintln(tw, head)
		for _, c := range r.Checkpoints {
			step := "-" // a time orders it: no step
			if c.Step != nil {
				step = strconv.FormatInt(*c.Step, 10)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\t%s\t", c.Name, step, formatBytes(c.Bytes), verdict.Age(now.Sub(c.ModTime)), c.Status)
			if offloading {
				fmt.Fprintf(tw, "\t%s\t", offloadCell(c.Offload, now))
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}
	seen := map[string]bool{}
	for _, c := range r.Checkpoints {
		if c.Uncertain != "" && !seen[c.Uncertain] {
			seen[c.Uncertain] = true
			fmt.Fprintf(out, "uncertain (kept, never pruned): %s\n", c.Uncertain)
		}
	}
	printSuggestion(out, r)
	if len(r.Ignored) > 0 {
		fmt.Fprintf(out, "ignored (not checkpoints of this series, never deleted): %s\n", strings.Join(r.Ignored, ", "))
	}
}

// printSuggestion tells, where no layout's rule names the checkpoints, the
// pattern: that makes them prunable, as a line to paste into the target's
// configuration; where the names read as several series, each one's.
func printSuggestion(out io.Writer, r scanReport) {
	switch {
	case r.SuggestedPattern != "":
		fmt.Fprintf(out, "no rule for this layout: its %d checkpoints are counted, never pruned; to make them prunable, add to the target's configuration:\n    %s\n",
			len(r.Checkpoints), patternLine(r.SuggestedPattern))
	case len(r.Candidates) > 0:
		fmt.Fprintf(out, "no rule for this layout, and the names read as %d series: none is counted; add the one that holds the checkpoints to the target's configuration:\n", len(r.Candidates))
		for _, p := range r.Candidates {
			fmt.Fprintf(out, "    %s\n", patternLine(p))
		}
	}
}
