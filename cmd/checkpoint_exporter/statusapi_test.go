package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The fields of /api/v1/status as README.md documents them: decoding
// rejects any other, so the document and the answer cannot drift apart.
type apiStatus struct {
	Version     string      `json:"version"`
	GeneratedAt time.Time   `json:"generated_at"`
	HistoryFile string      `json:"history_file"`
	Targets     []apiTarget `json:"targets"`
}

type apiTarget struct {
	Name       string    `json:"name"`
	Path       string    `json:"path"`
	PathBase64 string    `json:"path_base64"`
	Up         bool      `json:"up"`
	Scanned    bool      `json:"scanned"`
	Error      string    `json:"error"`
	ScannedAt  time.Time `json:"scanned_at"`
	Layout     string    `json:"layout"`
	Series     string    `json:"series"`
	Framework  string    `json:"framework"`
	// A layout no rule names: the pattern: that settles it, or each
	// candidate series' (issue #27).
	SuggestedPattern string   `json:"suggested_pattern"`
	Candidates       []string `json:"candidates"`
	Policy           struct {
		KeepLast      int    `json:"keep_last"`
		HighWatermark string `json:"high_watermark"`
		LowWatermark  string `json:"low_watermark"`
		Headroom      string `json:"headroom"`
		MaxBytes      uint64 `json:"max_bytes"`
		Execute       bool   `json:"execute"`
		Offload       bool   `json:"offload"`
	} `json:"policy"`
	Filesystem *struct {
		Mountpoint    string  `json:"mountpoint"`
		Device        string  `json:"device"`
		FSType        string  `json:"fstype"`
		SizeBytes     uint64  `json:"size_bytes"`
		AvailBytes    uint64  `json:"avail_bytes"`
		UsedBytes     uint64  `json:"used_bytes"`
		UsedRatio     float64 `json:"used_ratio"`
		ReadOnly      bool    `json:"readonly"`
		HighUsedBytes uint64  `json:"high_watermark_used_bytes"`
		LowUsedBytes  uint64  `json:"low_watermark_used_bytes"`
		HighReached   bool    `json:"high_watermark_reached"`
	} `json:"filesystem"`
	CheckpointBytes int64 `json:"checkpoint_bytes"`
	Counts          struct {
		Keep       int `json:"keep"`
		Prunable   int `json:"prunable"`
		Incomplete int `json:"incomplete"`
		Torn       int `json:"torn"`
	} `json:"counts"`
	SaveIntervalSeconds float64          `json:"save_interval_seconds"`
	WriteBytesPerSecond float64          `json:"write_bytes_per_second"`
	SavesUntilFull      *int64           `json:"saves_until_full"`
	SecondsUntilFull    *float64         `json:"seconds_until_full"`
	Checkpoints         []apiCheckpoint  `json:"checkpoints"`
	NextPrune           *apiNextPrune    `json:"next_prune"`
	Offload             map[string]int   `json:"offload"`
	Runs                []apiRun         `json:"runs"`
	Usage               []apiUsageSample `json:"usage"`
}

type apiReason struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

type apiCheckpoint struct {
	Name       string    `json:"name"`
	NameBase64 string    `json:"name_base64"`
	Step       int64     `json:"step"`
	Bytes      int64     `json:"bytes"`
	ModTime    time.Time `json:"mtime"`
	Status     string    `json:"status"`
	Torn       bool      `json:"torn"`
	TornReason string    `json:"torn_reason"`
	Reason     apiReason `json:"reason"`
	Text       string    `json:"text"`
	Offload    *struct {
		State  string    `json:"state"`
		Time   time.Time `json:"time"`
		Detail string    `json:"detail"`
	} `json:"offload"`
}

type apiPlanned struct {
	Name       string    `json:"name"`
	NameBase64 string    `json:"name_base64"`
	Step       int64     `json:"step"`
	Bytes      int64     `json:"bytes"`
	Reason     apiReason `json:"reason"`
	Text       string    `json:"text"`
}

type apiNextPrune struct {
	LowWatermark  string       `json:"low_watermark"`
	HeadroomBytes uint64       `json:"headroom_bytes"`
	NeedBytes     uint64       `json:"need_bytes"`
	OverBytes     uint64       `json:"over_bytes"`
	HighReached   bool         `json:"high_watermark_reached"`
	Noop          bool         `json:"noop"`
	Insufficient  bool         `json:"insufficient"`
	ShortBytes    uint64       `json:"short_bytes"`
	DryRun        bool         `json:"dry_run"`
	DeleteBytes   uint64       `json:"delete_bytes"`
	Delete        []apiPlanned `json:"delete"`
	NextInLine    []apiPlanned `json:"next_in_line"`
}

type apiItem struct {
	Name       string `json:"name"`
	NameBase64 string `json:"name_base64"`
	Step       int64  `json:"step"`
	Bytes      int64  `json:"bytes"`
	Reason     string `json:"reason"`
	Cause      string `json:"cause"`
}

type apiRun struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Target  string    `json:"target"`
	Trigger string    `json:"trigger"`
	Alerts  []struct {
		Name        string            `json:"name"`
		Fingerprint string            `json:"fingerprint"`
		Labels      map[string]string `json:"labels"`
	} `json:"alerts"`
	AlertsOmitted   int       `json:"alerts_omitted"`
	Result          string    `json:"result"`
	Error           string    `json:"error"`
	Deleted         []apiItem `json:"deleted"`
	Skipped         []apiItem `json:"skipped"`
	PlannedBytes    uint64    `json:"planned_bytes"`
	FreedBytes      int64     `json:"freed_bytes"`
	FreeSpaceChange int64     `json:"free_space_change_bytes"`
	ShortBytes      uint64    `json:"short_bytes"`
}

type apiUsageSample struct {
	Time            time.Time `json:"time"`
	UsedBytes       uint64    `json:"used_bytes"`
	SizeBytes       uint64    `json:"size_bytes"`
	CheckpointBytes int64     `json:"checkpoint_bytes"`
}

func getAPIStatus(t *testing.T, url string) apiStatus {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s\n%s", url, resp.StatusCode, resp.Header.Get("Content-Type"), buf.String())
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	var st apiStatus
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("/api/v1/status does not decode into the documented fields: %v", err)
	}
	return st
}

func TestStatusAPIDocumentedFields(t *testing.T) {
	cfg, tokenFile, train := statusSetup(t)
	base, _ := serve(t, "--config.file="+cfg, "--webhook.token-file="+tokenFile)
	scrapeUntil(t, base+"/", `<td class="name">checkpoint_step_1000.keras</td>`)
	st := getAPIStatus(t, base+"/api/v1/status")
	if len(st.Targets) != 2 || st.HistoryFile != "" || st.GeneratedAt.IsZero() {
		t.Fatalf("status: %+v", st)
	}
	tr := st.Targets[0]
	if tr.Name != "train" || tr.Path != train || !tr.Up || !tr.Scanned || tr.Layout != "keras" || tr.Filesystem == nil ||
		!tr.Filesystem.HighReached || tr.Policy.KeepLast != 3 || !tr.Policy.Execute || tr.Policy.HighWatermark != "2%" ||
		tr.CheckpointBytes <= 0 || tr.Counts.Keep != 3 || tr.Counts.Prunable != 7 || tr.SavesUntilFull == nil ||
		tr.SaveIntervalSeconds != 60 || tr.SecondsUntilFull == nil {
		t.Errorf("train: %+v", tr)
	}
	last, first := tr.Checkpoints[9], tr.Checkpoints[0]
	if len(tr.Checkpoints) != 10 || last.Name != "checkpoint_step_1000.keras" || last.Status != "keep" || last.Reason != (apiReason{"latest", "3"}) ||
		last.Text != "keep: latest 3" || first.Status != "prunable" || first.Reason.Code != "older_than_newest" {
		t.Errorf("checkpoints: %+v … %+v", first, last)
	}
	if np := tr.NextPrune; np == nil || np.Noop || !np.Insufficient || np.DryRun || len(np.Delete) != 7 || !np.HighReached ||
		np.Delete[0].Step != 100 || np.Delete[0].Reason.Code != "free_space" || np.LowWatermark != "1%" {
		t.Errorf("next_prune: %+v", tr.NextPrune)
	}
	if ev := st.Targets[1]; ev.Name != "eval" || ev.NextPrune == nil || !ev.NextPrune.DryRun {
		t.Errorf("eval: %+v", ev)
	}

	if code := postWebhook(t, base, "page-token", pruneAlert("train")); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}
	st = getAPIStatus(t, base+"/api/v1/status?target=train&runs=5")
	if len(st.Targets) != 1 || len(st.Targets[0].Runs) != 1 {
		t.Fatalf("after the prune: %+v", st.Targets)
	}
	r := st.Targets[0].Runs[0]
	if r.Trigger != "webhook" || r.Result != "insufficient" || len(r.Alerts) != 1 || r.Alerts[0].Name != "CheckpointDiskPruneNeeded" ||
		r.Alerts[0].Labels["target"] != "train" || len(r.Deleted) != 7 || r.Deleted[0].Name != "checkpoint_step_100.keras" ||
		r.Deleted[0].Reason != "oldest, to free space" || r.FreedBytes != 7*8192 || r.ID == "" {
		t.Errorf("run: %+v", r)
	}
	if resp, err := http.Get(base + "/api/v1/status?target=nope"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown target: %v %v", resp.StatusCode, err)
	}
}

// Names are shown escaped and whole, whatever their bytes: markup, quotes,
// bytes that are not UTF-8 (a Latin-1 name), 255-byte names; the path too.
// (Target names are [a-zA-Z0-9_.-]+: the configuration refuses others.)
func TestHostileNamesOnThePage(t *testing.T) {
	// A name cannot hold "/", so no closing tag: an opening one is enough.
	dir := filepath.Join(t.TempDir(), `<script>alert("dir")`)
	must(t, os.Mkdir(dir, 0o755))
	long := strings.Repeat("é", 120) + "_400.keras" // 240 + 10 = 250 bytes
	long = strings.Repeat("x", 255-len(long)) + long
	names := []string{`<script>alert(1)_100.keras`, `q"'&amp;_200.keras`, "caf\xe9_300.keras", long, "n_500.keras", "n_600.keras", "n_700.keras"}
	for i, n := range names {
		p := filepath.Join(dir, n)
		must(t, os.WriteFile(p, make([]byte, 4096), 0o644))
		mt := time.Now().Add(-time.Hour + time.Duration(i)*time.Minute)
		must(t, os.Chtimes(p, mt, mt))
	}
	if len(long) != 255 {
		t.Fatalf("long name has %d bytes", len(long))
	}
	cfg := filepath.Join(t.TempDir(), "c.yml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf("targets:\n  - name: odd\n    path: '%s'\n    pattern: '*_{step}.keras'\n    min_age: 1s\n", dir)), 0o644))
	base, _ := serve(t, "--config.file="+cfg)
	page := scrapeUntil(t, base+"/", `n_700.keras`)
	if n := strings.Count(page, "<script"); n != 1 {
		t.Errorf("%d <script elements on the page, want only its own", n)
	}
	for _, want := range []string{
		`&lt;script&gt;alert(1)_100.keras`, `q&#34;&#39;&amp;amp;_200.keras`, `caf\xe9_300.keras`, `<td class="name">` + long + `</td>`,
		`&lt;script&gt;alert(&#34;dir&#34;)`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	st := getAPIStatus(t, base+"/api/v1/status")
	byStep := map[int64]apiCheckpoint{}
	for _, c := range st.Targets[0].Checkpoints {
		byStep[c.Step] = c
	}
	if byStep[100].Name != names[0] || byStep[200].Name != names[1] || byStep[300].NameBase64 != "Y2Fm6V8zMDAua2VyYXM=" || byStep[400].Name != long {
		t.Errorf("API names: %+v", st.Targets[0].Checkpoints)
	}

	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Header.Set("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.8")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if zh := buf.String(); !strings.Contains(zh, `<html lang="zh-CN">`) || !strings.Contains(zh, "检查点") || !strings.Contains(zh, "最新的 3 个之一") {
		t.Errorf("Accept-Language: zh-CN did not give the Chinese page:\n%.2000s", zh)
	}
}
