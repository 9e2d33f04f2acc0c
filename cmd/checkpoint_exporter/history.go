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
	"unicode"
	"unicode/utf8"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/checkpoint-exporter/checkpoint_exporter/history"
)

// historyFlags are the deletion history's flags, shared by serve, prune
// and history.
type historyFlags struct {
	file     string
	maxBytes units.Base2Bytes
}

func addHistoryFlags(cmd *kingpin.CmdClause, h *historyFlags) {
	cmd.Flag("prune.history-file", "Deletion history file (JSON Lines, appended and fsynced per prune, read back at start); without it serve keeps the history in memory only.").PlaceHolder("FILE").StringVar(&h.file)
	cmd.Flag("prune.history-max-bytes", "Size past which the history file is rotated to FILE.1 (one rotated file is kept).").Default("10MiB").BytesVar(&h.maxBytes)
}

// open returns the history store: the file's, or one in memory without a
// file.
func (h *historyFlags) open(logger log.Logger) (*history.Store, error) {
	opts := history.Options{MaxBytes: int64(h.maxBytes), Logger: logger}
	if h.file == "" {
		return history.New(opts), nil
	}
	s, err := history.Open(h.file, opts)
	if err != nil {
		return nil, fmt.Errorf("--prune.history-file: %w", err)
	}
	return s, nil
}

type historyCmd struct {
	*common
	cmd     *kingpin.CmdClause
	flags   historyFlags
	target  string
	since   time.Duration
	output  string
	nowFunc func() time.Time
}

func addHistory(app *kingpin.Application, c *common) *historyCmd {
	h := &historyCmd{common: c, nowFunc: time.Now}
	h.cmd = app.Command("history", "Print the deletion history: every prune run, what asked for it, and each checkpoint it deleted or skipped.")
	addHistoryFlags(h.cmd, &h.flags)
	h.cmd.Flag("target", "Only this target.").StringVar(&h.target)
	h.cmd.Flag("since", "Only runs of the last DURATION (e.g. 24h; 0: all).").Default("0").DurationVar(&h.since)
	h.cmd.Flag("output", "Output format: table or json.").Short('o').Default("table").EnumVar(&h.output, "table", "json")
	return h
}

func (h *historyCmd) run(_ context.Context) int {
	logger, _ := h.logger()
	if h.flags.file == "" {
		fmt.Fprintln(h.stderr, "history: --prune.history-file is required (without one the server keeps its history in memory only: see /api/v1/status)")
		return exitUsage
	}
	runs, err := history.ReadFile(h.flags.file, func(err error) {
		level.Warn(logger).Log("msg", "history: skipping a line that cannot be read", "err", err)
	})
	if err != nil {
		fmt.Fprintln(h.stderr, err)
		return exitError
	}
	var out []history.Run
	for _, r := range runs {
		if (h.target == "" || r.Target == h.target) && (h.since <= 0 || !r.Time.Before(h.nowFunc().Add(-h.since))) {
			out = append(out, r)
		}
	}
	if h.output == "json" {
		if out == nil {
			out = []history.Run{}
		}
		enc := json.NewEncoder(h.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return exitError
		}
		return exitOK
	}
	printHistory(h.stdout, out)
	return exitOK
}

// printHistory writes runs as a table: a line per run, then a line per
// checkpoint it deleted (or would have, in a dry run) or skipped.
func printHistory(w io.Writer, runs []history.Run) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "no prunes recorded")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTARGET\tTRIGGER\tRESULT\tNAME\tSTEP\tSIZE\tWHY")
	for _, r := range runs {
		trigger := r.Trigger
		if names := r.AlertNames(); len(names) > 0 {
			trigger += " (" + strings.Join(names, ", ")
			if r.AlertsOmitted > 0 {
				trigger += fmt.Sprintf(" and %d more", r.AlertsOmitted)
			}
			trigger += ")"
		}
		summary := fmt.Sprintf("%d deleted, freed %s", len(r.Deleted), formatBytes(r.FreedBytes))
		switch {
		case r.DryRun():
			summary = fmt.Sprintf("would delete %d (%s)", len(r.Deleted), formatBytes(int64(r.PlannedBytes)))
		case r.Error != "":
			summary += "; error: " + r.Error
		}
		if len(r.Skipped) > 0 {
			summary += fmt.Sprintf(", %d skipped", len(r.Skipped))
		}
		if r.ShortBytes > 0 {
			summary += fmt.Sprintf(", %s short of the goal", formatBytes(int64(r.ShortBytes)))
		}
		result := r.Result
		if result == "" {
			result = "unknown (record cut short)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\t\t\t%s\n", r.Time.Local().Format(time.RFC3339), r.Target, printable(trigger), result, printable(summary))
		verb := "deleted"
		if r.DryRun() {
			verb = "would delete"
		}
		for _, it := range r.Deleted {
			fmt.Fprintf(tw, "\t\t\t%s\t%s\t%d\t%s\t%s\n", verb, printable(it.Name), it.Step, formatBytes(it.Bytes), printable(it.Reason))
		}
		for _, it := range r.Skipped {
			fmt.Fprintf(tw, "\t\t\tskipped\t%s\t%d\t\t%s: %s\n", printable(it.Name), it.Step, it.Cause, printable(it.Reason))
		}
	}
	tw.Flush()
}

// printable is s for a terminal: quoted (Go syntax) when it is not valid
// UTF-8 or holds control characters, which a name on disk may.
func printable(s string) string {
	if !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
