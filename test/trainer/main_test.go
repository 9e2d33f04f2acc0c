package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

func trainer(t *testing.T, args ...string) (summary, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	var sum summary
	if code == 0 {
		if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
			t.Fatalf("summary %q: %v", stdout.String(), err)
		}
	}
	return sum, stderr.String(), code
}

func TestTrainerSaves(t *testing.T) {
	for _, tc := range []struct {
		layout string
		want   []string
	}{
		{"keras", []string{"checkpoint_step_100.keras", "checkpoint_step_200.keras", "checkpoint_step_300.keras"}},
		{"hf", []string{"checkpoint-100", "checkpoint-200", "checkpoint-300"}},
	} {
		t.Run(tc.layout, func(t *testing.T) {
			dir := t.TempDir()
			sum, log, code := trainer(t, "--dir="+dir, "--layout="+tc.layout, "--size=64KiB", "--interval=10ms", "--saves=3")
			if code != 0 || sum.Saves != 3 || sum.Failed != 0 || sum.LastStep != 300 {
				t.Fatalf("exit %d, summary %+v\n%s", code, sum, log)
			}
			if got := names(t, dir); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("wrote %v, want %v", got, tc.want)
			}
			if n := strings.Count(log, ": saved 65536 bytes"); n != 3 {
				t.Errorf("%d save lines:\n%s", n, log)
			}
		})
	}
}

// On a full disk the job goes on and counts ENOSPC, as the end-to-end
// test's control run needs.
func TestTrainerCountsENOSPC(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "small")
	testenv.MountTmpfs(t, dir, "1m")
	sum, log, code := trainer(t, "--dir="+dir, "--size=400KiB", "--interval=1ms", "--saves=4")
	if code != 0 || sum.Saves != 4 || sum.Failed < 2 || sum.ENOSPC != sum.Failed || len(sum.Errors) != sum.Failed {
		t.Fatalf("exit %d, summary %+v\n%s", code, sum, log)
	}
	if !strings.Contains(log, "save FAILED") {
		t.Errorf("no failure logged:\n%s", log)
	}
}

func TestTrainerRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--dir=x", "--layout=orbax"},
		{"--dir=x", "--size=lots"},
		{"--dir=x", "--layout=hf", "--size=1KiB"},
		{"--dir=x", "--interval=0s"},
		{"--dir=x", "--step-every=0"},
	} {
		if _, log, code := trainer(t, args...); code != 2 || log == "" {
			t.Errorf("%q: exit %d, %q", args, code, log)
		}
	}
}
