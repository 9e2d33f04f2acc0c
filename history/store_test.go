package history

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// sample is a run with everything a record can carry.
func sample(target string, at time.Time) Run {
	return Run{
		Time: at, Target: target, Trigger: TriggerWebhook, Result: "ok",
		Alerts: []Alert{{Name: "CheckpointDiskPruneNeeded", Fingerprint: "3f2a9c", Labels: map[string]string{
			"alertname": "CheckpointDiskPruneNeeded", "target": target, "note": `<script>alert("x")</script>`}}},
		Deleted: []Item{
			{Name: "checkpoint_step_100.keras", Step: 100, Bytes: 8192, Reason: "oldest, to free space"},
			{Name: "bad\xff\xfename", Step: 200, Bytes: 4096, Reason: "oldest, to free space"},
			{Name: strings.Repeat("n", 255), Step: 300, Bytes: 1, Reason: "oldest, to free space"},
		},
		Skipped:      []Item{{Name: "checkpoint_step_400.keras", Step: 400, Cause: "changed", Reason: "modified since the scan"}},
		PlannedBytes: 20000, FreedBytes: 12289, FreeSpaceChange: -5, ShortBytes: 7,
	}
}

func TestRecordAndReadBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)
	want := []Run{sample("a", at), sample("b", at.Add(time.Second)),
		{Time: at.Add(2 * time.Second), Target: "a", Trigger: TriggerCLI, Result: "dry_run",
			Deleted: []Item{{Name: "x", Step: 0, Bytes: 0, Reason: "older than the newest 3"}}}}
	for _, r := range want {
		if err := s.Record(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var warnings []error
	got, err := ReadFile(path, func(err error) { warnings = append(warnings, err) })
	if err != nil || len(warnings) > 0 {
		t.Fatalf("ReadFile: %v, warnings %v", err, warnings)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d runs, want %d", len(got), len(want))
	}
	for i := range want {
		w := want[i]
		w.ID = got[i].ID
		if got[i].ID == "" || !got[i].Time.Equal(w.Time) {
			t.Errorf("run %d: ID %q, time %v, want an ID and %v", i, got[i].ID, got[i].Time, w.Time)
		}
		w.Time = got[i].Time
		if !reflect.DeepEqual(got[i], w) {
			t.Errorf("run %d:\ngot  %+v\nwant %+v", i, got[i], w)
		}
	}
	// The file's records, as documented.
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 5+5+2 {
		t.Fatalf("%d lines, want 12:\n%s", len(lines), data)
	}
	for _, want := range []string{`"kind":"run"`, `"trigger":"webhook"`, `"result":"ok"`, `"labels":{`, `"deleted":3`, `"freed_bytes":12289`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("run record lacks %s: %s", want, lines[0])
		}
	}
	for _, want := range []string{`"kind":"checkpoint"`, `"result":"deleted"`, `"name":"checkpoint_step_100.keras"`, `"step":100`, `"bytes":8192`,
		`"alerts":[{"name":"CheckpointDiskPruneNeeded","fingerprint":"3f2a9c"}]`, `"reason":"oldest, to free space"`} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("checkpoint record lacks %s: %s", want, lines[1])
		}
	}
	if !strings.Contains(lines[2], `"name_base64":"YmFk//5uYW1l"`) || !strings.Contains(lines[4], `"result":"skipped","name":"checkpoint_step_400.keras"`) ||
		!strings.Contains(lines[11], `"result":"would_delete"`) {
		t.Errorf("records:\n%s", data)
	}

	// Open again: the runs are back in memory, newest first.
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rs := s.Runs("a", 10); len(rs) != 2 || rs[0].Trigger != TriggerCLI || rs[1].Deleted[1].Name != "bad\xff\xfename" {
		t.Errorf("Runs(a) after reopening = %+v", rs)
	}
	if rs := s.Runs("", 10); len(rs) != 3 || rs[1].Target != "b" {
		t.Errorf("Runs(\"\") after reopening = %+v", rs)
	}
}

func TestDamagedLinesAreSkipped(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  func(good []byte) []byte
		runs    int
		last    bool
		warning string
	}{
		{"truncated last line", func(g []byte) []byte { return append(g, g[:len(g)/3]...) }, 2, true, "last line 6"},
		{"corrupt last line", func(g []byte) []byte { return append(g, "\x00\x01garbage\n"...) }, 2, true, "last line 5"},
		{"corrupt line in the middle", func(g []byte) []byte {
			i := bytes.IndexByte(g, '\n')
			return append(append(append([]byte{}, g[:i+1]...), "{\"time\":\"no\n"...), g[i+1:]...)
		}, 2, false, "line 2"},
		{"not a record", func(g []byte) []byte { return append(g, "{\"hello\":1}\n"...) }, 2, true, "not a history record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "h.jsonl")
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			at := time.Now()
			for _, tg := range []string{"a", "b"} {
				r := sample(tg, at)
				r.Deleted, r.Skipped = r.Deleted[:1], nil
				r.Alerts = nil
				if err := s.Record(context.Background(), r); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			good, _ := os.ReadFile(path)
			os.WriteFile(path, tc.damage(good), 0o644)
			var warnings []error
			got, err := ReadFile(path, func(err error) { warnings = append(warnings, err) })
			if err != nil {
				t.Fatal(err)
			}
			var le *LineError
			if len(got) != tc.runs || len(warnings) != 1 || !errors.As(warnings[0], &le) || le.Last != tc.last ||
				!strings.Contains(warnings[0].Error(), tc.warning) {
				t.Fatalf("got %d runs, warnings %v; want %d runs and one warning with %q", len(got), warnings, tc.runs, tc.warning)
			}
			// Opening it goes on where the damage ends: a new run is read back
			// whole, on its own line.
			s, err = Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Record(context.Background(), sample("c", at)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			got, _ = ReadFile(path, func(error) {})
			if len(got) != tc.runs+1 || got[len(got)-1].Target != "c" || len(got[len(got)-1].Deleted) != 3 {
				t.Errorf("after appending: %+v", got)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.jsonl")
	s, err := Open(path, Options{MaxBytes: 10000, Keep: 5})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	for i := range 20 {
		if err := s.Record(context.Background(), sample("a", at.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	for _, p := range []string{path, path + ".1"} {
		st, err := os.Stat(p)
		if err != nil || st.Size() > 10000 || st.Size() == 0 {
			t.Errorf("%s: %v, size %d; want at most 10000 bytes", p, err, st.Size())
		}
	}
	if _, err := os.Stat(path + ".2"); err == nil {
		t.Error("more than one rotated file kept")
	}
	got, _ := ReadFile(path, nil)
	if len(got) == 0 || len(got) >= 20 || !got[len(got)-1].Time.Equal(at.Add(19*time.Second)) {
		t.Errorf("read back %d runs, the last at %v", len(got), got[len(got)-1].Time)
	}
	s, _ = Open(path, Options{Keep: 5})
	defer s.Close()
	if rs := s.Runs("a", -1); len(rs) != 5 || !rs[0].Time.Equal(at.Add(19*time.Second)) {
		t.Errorf("in memory: %d runs, want the last 5", len(rs))
	}
}

func TestMemoryOnly(t *testing.T) {
	s := New(Options{Keep: 3})
	for i := range 5 {
		if err := s.Record(context.Background(), Run{Target: "a", Result: "ok", Time: time.Unix(int64(i), 0)}); err != nil {
			t.Fatal(err)
		}
	}
	rs := s.Runs("a", 2)
	if len(rs) != 2 || rs[0].Time.Unix() != 4 || rs[1].Time.Unix() != 3 || rs[0].ID == rs[1].ID || rs[0].Deleted == nil {
		t.Errorf("Runs = %+v", rs)
	}
}

// A write that does not finish (a hung filesystem) never holds up the run:
// Record gives up after WriteTimeout and the run stays in memory.
func TestStuckWriteKeepsRunInMemory(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "h.jsonl"), Options{WriteTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.slot <- struct{}{} // a write that never ends
	err = s.Record(context.Background(), sample("a", time.Now()))
	if err == nil || !strings.Contains(err.Error(), "has not finished") {
		t.Errorf("Record = %v, want an error naming the write that has not finished", err)
	}
	if len(s.Runs("a", 1)) != 1 {
		t.Error("the run is not kept in memory")
	}
	// Shutting down does not wait for it either.
	if err := s.Close(); err == nil {
		t.Error("Close returned nil while a write hangs")
	}
	<-s.slot
	if err := s.Close(); err != nil {
		t.Errorf("Close once the write ended: %v", err)
	}
}

func TestOpenRefusesWhatCannotWork(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "missing", "h.jsonl"), dir} {
		if _, err := Open(p, Options{}); err == nil {
			t.Errorf("Open(%s) succeeded", p)
		}
	}
}

// On a full filesystem the history cannot grow: the store says so, keeps
// the run in memory, and writes again once there is room.
func TestFullFilesystem(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fs")
	testenv.MountTmpfs(t, dir, "64k")
	path := filepath.Join(dir, "h.jsonl")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Record(context.Background(), sample("a", time.Now())); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	f, _ := os.Create(filler)
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	f.Close()
	var last error
	for i := range 8 { // the page the file ends in may have room for one run
		last = s.Record(context.Background(), sample("b", time.Now().Add(time.Duration(i))))
		if last != nil {
			break
		}
	}
	if !full(last) {
		t.Fatalf("Record on a full filesystem = %v, want ENOSPC", last)
	}
	if len(s.Runs("b", -1)) == 0 {
		t.Error("runs not kept in memory")
	}
	os.Remove(filler)
	if err := s.Record(context.Background(), sample("c", time.Now())); err != nil {
		t.Fatalf("Record after space came back: %v", err)
	}
	var warnings []error
	got, _ := ReadFile(path, func(err error) { warnings = append(warnings, err) })
	if len(warnings) > 0 || got[0].Target != "a" || got[len(got)-1].Target != "c" {
		t.Errorf("file after the full disk: %d runs, warnings %v", len(got), warnings)
	}
}
