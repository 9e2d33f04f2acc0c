package history

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"
)

// The file format: JSON Lines, one object per line, appended in order. A
// run is written as one "run" record followed by one "checkpoint" record
// per checkpoint it deleted, would have deleted or skipped, all in one write
// and fsynced together. Every record has:
//
//	time     RFC 3339 time the run finished
//	kind     "run" or "checkpoint"
//	run      the run's ID, shared by its records
//	target   the target's name
//	trigger  cli, webhook or autonomous
//	alerts   the alerts that asked (name, fingerprint; labels on the run record only)
//	result   run: ok, dry_run, noop, insufficient, error;
//	         checkpoint: deleted, would_delete (dry run), skipped
//
// A run record also has deleted and skipped (counts), planned_bytes,
// freed_bytes, free_space_change_bytes, short_bytes, alerts_omitted and
// error; a checkpoint record has name, step, bytes, reason and, when
// skipped, cause. A name that is not valid UTF-8 is also given exactly, as
// name_base64 (JSON text cannot hold it: name has U+FFFD in its place).
// Readers skip lines they cannot parse (a line cut short by a crash).

// Record kinds and checkpoint results in the file.
const (
	kindRun         = "run"
	kindCheckpoint  = "checkpoint"
	itemDeleted     = "deleted"
	itemWouldDelete = "would_delete"
	itemSkipped     = "skipped"
)

// line is one record of the file, either kind.
type line struct {
	Time    string  `json:"time"`
	Kind    string  `json:"kind"`
	Run     string  `json:"run"`
	Target  string  `json:"target"`
	Trigger string  `json:"trigger"`
	Alerts  []Alert `json:"alerts,omitempty"`
	Result  string  `json:"result"`

	// kind run
	Deleted         *int    `json:"deleted,omitempty"`
	Skipped         *int    `json:"skipped,omitempty"`
	PlannedBytes    *uint64 `json:"planned_bytes,omitempty"`
	FreedBytes      *int64  `json:"freed_bytes,omitempty"`
	FreeSpaceChange *int64  `json:"free_space_change_bytes,omitempty"`
	ShortBytes      uint64  `json:"short_bytes,omitempty"`
	AlertsOmitted   int     `json:"alerts_omitted,omitempty"`
	Error           string  `json:"error,omitempty"`

	// kind checkpoint
	Name       string `json:"name,omitempty"`
	NameBase64 string `json:"name_base64,omitempty"`
	Step       *int64 `json:"step,omitempty"`
	Bytes      *int64 `json:"bytes,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Cause      string `json:"cause,omitempty"`
}

const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// encode appends r's records to buf, each ending in a newline.
func encode(buf *bytes.Buffer, r Run) error {
	head := line{Time: r.Time.UTC().Format(timeFormat), Kind: kindRun, Run: r.ID, Target: r.Target, Trigger: r.Trigger,
		Alerts: r.Alerts, Result: r.Result, AlertsOmitted: r.AlertsOmitted, Error: r.Error, ShortBytes: r.ShortBytes}
	nd, ns := len(r.Deleted), len(r.Skipped)
	head.Deleted, head.Skipped = &nd, &ns
	head.PlannedBytes, head.FreedBytes, head.FreeSpaceChange = &r.PlannedBytes, &r.FreedBytes, &r.FreeSpaceChange
	enc := json.NewEncoder(buf)
	if err := enc.Encode(head); err != nil {
		return err
	}
	// Checkpoint records name the alerts without their labels: the run
	// record has them once.
	var short []Alert
	for _, a := range r.Alerts {
		short = append(short, Alert{Name: a.Name, Fingerprint: a.Fingerprint})
	}
	item := func(it Item, result string) error {
		l := line{Time: head.Time, Kind: kindCheckpoint, Run: r.ID, Target: r.Target, Trigger: r.Trigger, Alerts: short,
			Result: result, Name: it.Name, Step: &it.Step, Bytes: &it.Bytes, Reason: it.Reason, Cause: it.Cause}
		if !utf8.ValidString(it.Name) {
			l.NameBase64 = base64.StdEncoding.EncodeToString([]byte(it.Name))
		}
		return enc.Encode(l)
	}
	deleted := itemDeleted
	if r.DryRun() {
		deleted = itemWouldDelete
	}
	for _, it := range r.Deleted {
		if err := item(it, deleted); err != nil {
			return err
		}
	}
	for _, it := range r.Skipped {
		if err := item(it, itemSkipped); err != nil {
			return err
		}
	}
	return nil
}

// LineError is a line of a history file that could not be read; it is
// skipped.
type LineError struct {
	File string
	Line int
	// Last: the file's last line (a crash cut it short, most likely).
	Last bool
	Err  error
}

func (e *LineError) Error() string {
	what := "line"
	if e.Last {
		what = "last line"
	}
	return fmt.Sprintf("%s: %s %d skipped: %v", e.File, what, e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// ReadFile reads the runs of a history file: the rotated FILE.1 first,
// then FILE, oldest first. Missing files are no error. Lines that cannot be
// parsed are skipped and handed to warn (a *LineError). The error is for a
// file that exists but cannot be read.
func ReadFile(path string, warn func(error)) ([]Run, error) {
	var rd reader
	for _, p := range []string{rotated(path), path} {
		if err := rd.readFile(p, warn); err != nil {
			return nil, err
		}
	}
	return rd.runs(), nil
}

// rotated is the name the file is rotated to.
func rotated(path string) string { return path + ".1" }

// reader gathers the records of one or more files into runs.
type reader struct {
	order []string
	byID  map[string]*Run
}

func (rd *reader) readFile(path string, warn func(error)) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	defer f.Close()
	return rd.read(f, path, warn)
}

func (rd *reader) read(r io.Reader, name string, warn func(error)) error {
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		text, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(text)) > 0 {
			if perr := rd.add(text); perr != nil && warn != nil {
				warn(&LineError{File: name, Line: n, Last: err == io.EOF || peekEOF(br), Err: perr})
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read history %s: %w", name, err)
		}
	}
}

func peekEOF(br *bufio.Reader) bool {
	_, err := br.Peek(1)
	return err == io.EOF
}

func (rd *reader) add(text []byte) error {
	var l line
	dec := json.NewDecoder(bytes.NewReader(text))
	if err := dec.Decode(&l); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one record on the line")
	}
	if l.Run == "" || (l.Kind != kindRun && l.Kind != kindCheckpoint) {
		return fmt.Errorf("not a history record (kind %q, run %q)", l.Kind, l.Run)
	}
	t, err := timeOf(l.Time)
	if err != nil {
		return err
	}
	if rd.byID == nil {
		rd.byID = map[string]*Run{}
	}
	r := rd.byID[l.Run]
	if r == nil {
		r = &Run{ID: l.Run, Time: t, Target: l.Target, Trigger: l.Trigger, Deleted: []Item{}}
		rd.byID[l.Run] = r
		rd.order = append(rd.order, l.Run)
	}
	if l.Kind == kindRun {
		r.Alerts, r.AlertsOmitted, r.Result, r.Error = l.Alerts, l.AlertsOmitted, l.Result, l.Error
		r.PlannedBytes, r.FreedBytes, r.FreeSpaceChange = deref(l.PlannedBytes), deref(l.FreedBytes), deref(l.FreeSpaceChange)
		r.ShortBytes = l.ShortBytes
		return nil
	}
	if len(r.Alerts) == 0 {
		r.Alerts = l.Alerts // the run record is missing (cut short): better than none
	}
	it := Item{Name: l.Name, Step: deref(l.Step), Bytes: deref(l.Bytes), Reason: l.Reason, Cause: l.Cause}
	if l.NameBase64 != "" {
		if b, err := base64.StdEncoding.DecodeString(l.NameBase64); err == nil {
			it.Name = string(b)
		}
	}
	switch l.Result {
	case itemSkipped:
		r.Skipped = append(r.Skipped, it)
	default:
		r.Deleted = append(r.Deleted, it)
	}
	return nil
}

func timeOf(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, fmt.Errorf("bad time %q", s)
	}
	return t, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// runs are the runs read, in the order of their first record.
func (rd *reader) runs() []Run {
	out := make([]Run, 0, len(rd.order))
	for _, id := range rd.order {
		out = append(out, *rd.byID[id])
	}
	return out
}
