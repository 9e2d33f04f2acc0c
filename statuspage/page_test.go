package statuspage

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/history"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
	"github.com/checkpoint-exporter/checkpoint_exporter/targetdir"
)

var now = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// fixture is an exporter's state in memory: targets, their last scans,
// history and usage.
type fixture struct {
	targets []pruner.Target
	snaps   []*checkpoint.Snapshot
	hist    *history.Store
	usage   *Usage
	offload map[string]Offload // by checkpoint name
}

// addTarget adds a target of n checkpoints of size bytes saved a minute
// apart, the newest a minute old, on a filesystem used at ratio.
func (f *fixture) addTarget(name, path string, n int, names func(i int) string, ratio float64) {
	tg := checkpoint.Target{Name: name, Path: path, MinAge: 30 * time.Second}
	const size = 1 << 20
	snap := &checkpoint.Snapshot{Target: tg, Layout: "torch", Series: "ckpt_{step}.pt", Time: now,
		FS: &targetdir.FSStats{Mountpoint: "/data", Device: "/dev/nvme0n1", FSType: "ext4", SizeBytes: 1 << 40}}
	snap.FS.AvailBytes = uint64(float64(snap.FS.SizeBytes) * (1 - ratio))
	for i := range n {
		nm := names(i)
		snap.Checkpoints = append(snap.Checkpoints, checkpoint.Checkpoint{Name: nm, Step: int64(100 * (i + 1)), Bytes: size,
			ModTime: now.Add(-time.Duration(n-i) * time.Minute), Entries: []checkpoint.Entry{{Name: nm, Ino: uint64(i + 1)}}})
	}
	f.targets = append(f.targets, pruner.Target{Target: tg, Policy: pruner.Policy{KeepLast: 3,
		High: checkpoint.MustWatermark("85%"), Low: checkpoint.MustWatermark("70%"), Headroom: 10 * time.Minute, Execute: true}})
	f.snaps = append(f.snaps, snap)
	for i := range 3 {
		s := *snap
		s.Time = now.Add(-time.Duration(3-i) * time.Hour)
		f.usage.Add(&s)
	}
	f.usage.Add(snap)
}

func newFixture() *fixture {
	return &fixture{hist: history.New(history.Options{}), usage: NewUsage(time.Minute, 24*time.Hour), offload: map[string]Offload{}}
}

func stepNames(i int) string { return fmt.Sprintf("ckpt_%d.pt", 100*(i+1)) }

func (f *fixture) page(t testing.TB, opts Options) *Page {
	t.Helper()
	src := Sources{
		Snapshots: func() []*checkpoint.Snapshot { return f.snaps },
		Targets:   func() []pruner.Target { return f.targets },
		History:   f.hist,
		Usage:     f.usage,
		Now:       func() time.Time { return now },
		Offload: func(_ string, c checkpoint.Checkpoint) (Offload, bool) {
			o, ok := f.offload[c.Name]
			return o, ok
		},
	}
	opts.Version = "0.1.0-test"
	opts.WebhookPath = "/webhook"
	opts.Links = []Link{{Path: "/metrics", Key: "link.metrics"}, {Path: "/api/v1/status", Key: "link.api"}}
	p, err := New(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func getPage(t testing.TB, h http.Handler, url, acceptLanguage string) (string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, url, nil)
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, rec.Code, rec.Body)
	}
	return rec.Body.String(), rec.Header()
}

func webhookRun(target string, deleted ...history.Item) history.Run {
	return history.Run{Target: target, Trigger: history.TriggerWebhook, Result: "ok", Time: now.Add(-time.Hour),
		Alerts:  []history.Alert{{Name: "CheckpointDiskPruneNeeded", Fingerprint: "4c1d", Labels: map[string]string{"alertname": "CheckpointDiskPruneNeeded", "target": target, "severity": "warning"}}},
		Deleted: deleted, FreedBytes: 2 << 20}
}

func TestPageShowsTargetsCheckpointsPreviewAndRuns(t *testing.T) {
	f := newFixture()
	f.addTarget("train", "/data/train", 8, stepNames, 0.90)
	f.addTarget("eval", "/data/eval", 4, stepNames, 0.40)
	f.hist.Record(context.Background(), webhookRun("train", history.Item{Name: "ckpt_50.pt", Step: 50, Bytes: 1 << 20, Reason: "oldest, to free space"}))
	body, h := getPage(t, f.page(t, Options{}), "/", "")
	for _, want := range []string{
		`<html lang="en">`,
		`id="t-train"`, `id="t-eval"`, `/data/train`,
		// the checkpoint table: a row with its status and reason
		`<td class="name">ckpt_800.pt</td>`, `<td class="status">keep</td><td>latest 3</td>`,
		`<td class="status">prunable</td><td>older than the newest 3</td>`,
		// the next prune of the target past its high watermark, and of the one below
		`A prune now would delete`, `<tr class="planned"><td class="name">ckpt_100.pt</td>`, `oldest, to free space`,
		`Nothing to delete now`, `First in line once a prune is needed:`,
		// the run, with its alert and what it deleted
		`<strong class="alertname">CheckpointDiskPruneNeeded</strong>`, `severity=&#34;warning&#34;`,
		`<span class="verb">deleted</span> <span class="name">ckpt_50.pt</span> · step 50 · 1.0 MiB`, `freed 2.0 MiB`,
		// the chart, the bar and the links
		`<polyline points="`, `class="mark-high"`, `href="/metrics"`, `href="/api/v1/status"`, `POST /webhook`,
		`at or past the high watermark`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'sha256-") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	assertOnlyShows(t, body)
}

// assertOnlyShows fails if the page offers anything that acts: a form, a
// button, a link or request to anything but the exporter's own pages.
func assertOnlyShows(t *testing.T, body string) {
	t.Helper()
	lower := strings.ToLower(body)
	for _, bad := range []string{"<form", "<button", "method=", "http://", "https://", "src=", "@import", "url("} {
		if strings.Contains(lower, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
}

func TestHostileNamesAreEscapedAndIntact(t *testing.T) {
	long := strings.Repeat("é", 127) + "x" // 255 bytes
	hostile := []string{`<script>alert("ckpt")</script>_1.pt`, `quote"'&amp;_2.pt`, "latin1_\xe9t\xe9_3.pt", long, "ctl\x1b[31m_5.pt"}
	f := newFixture()
	f.addTarget("t1", `/data/<script>alert(1)</script>/"q"`, len(hostile), func(i int) string { return hostile[i] }, 0.5)
	f.hist.Record(context.Background(), history.Run{Target: "t1", Trigger: history.TriggerWebhook, Result: "ok", Time: now,
		Alerts:  []history.Alert{{Name: `<script>x</script>`, Labels: map[string]string{"alertname": "<b>", "x": `"><img src=x>`}}},
		Deleted: []history.Item{{Name: "del\xff<i>.pt", Step: 1, Bytes: 1}}})
	body, _ := getPage(t, f.page(t, Options{}), "/", "")
	if n := strings.Count(body, "<script"); n != 1 {
		t.Errorf("%d <script elements, want only the page's own", n)
	}
	for _, bad := range []string{`<script>alert`, `<img`, `<i>.pt`, "\xe9t", "\x1b"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q unescaped", bad)
		}
	}
	for _, want := range []string{
		`&lt;script&gt;alert(&#34;ckpt&#34;)&lt;/script&gt;_1.pt`, `quote&#34;&#39;&amp;amp;_2.pt`, `latin1_\xe9t\xe9_3.pt`,
		long, `ctl\x1b[31m_5.pt`, `/data/&lt;script&gt;alert(1)&lt;/script&gt;/&#34;q&#34;`,
		`&lt;script&gt;x&lt;/script&gt;`, `x=&#34;\&#34;&gt;&lt;img src=x&gt;&#34;`, `del\xff&lt;i&gt;.pt`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// The API gives the exact bytes of a name that is not UTF-8.
	var st Status
	apiGet(t, f.page(t, Options{}), "/api/v1/status", &st)
	c := st.Targets[0].Checkpoints
	if c[2].NameBase64 != "bGF0aW4xX+l06V8zLnB0" || c[3].Name != long || c[0].Name != hostile[0] {
		t.Errorf("API names: %+v", c)
	}
}

func TestChinese(t *testing.T) {
	f := newFixture()
	f.addTarget("train", "/data/train", 5, stepNames, 0.9)
	f.hist.Record(context.Background(), webhookRun("train", history.Item{Name: "ckpt_50.pt", Step: 50, Bytes: 1, Reason: "oldest, to free space"}))
	p := f.page(t, Options{})
	for _, tc := range []struct{ url, accept, lang string }{
		{"/", "zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"},
		{"/", "zh-TW", "zh-CN"},
		{"/", "en-US,en;q=0.9,zh-CN;q=0.8", "en"},
		{"/", "fr-FR, zh;q=0.5", "zh-CN"},
		{"/?lang=zh-CN", "en", "zh-CN"},
		{"/?lang=en", "zh-CN", "en"},
	} {
		t.Run(tc.url+" "+tc.accept, func(t *testing.T) {
			body, h := getPage(t, p, tc.url, tc.accept)
			zh := strings.Contains(body, "最近的清理") && strings.Contains(body, "最新的 3 个之一") && strings.Contains(body, "现在清理将删除")
			if !strings.Contains(body, `<html lang="`+tc.lang+`">`) || h.Get("Content-Language") != tc.lang || zh != (tc.lang == "zh-CN") {
				t.Errorf("want the %s page; Content-Language %q, Chinese words: %v", tc.lang, h.Get("Content-Language"), zh)
			}
		})
	}
	body, _ := getPage(t, p, "/?lang=zh-CN&target=train", "")
	if !strings.Contains(body, `href="/?lang=en&amp;target=train"`) {
		t.Error("the language switch does not keep the target")
	}
}

func TestChooseLang(t *testing.T) {
	for _, tc := range []struct{ query, header, want string }{
		{"", "", "en"},
		{"", "zh-CN", "zh-CN"},
		{"", "zh-Hans-CN;q=0.9, en;q=0.3", "zh-CN"},
		{"", "en;q=0.3, zh;q=0.9", "zh-CN"},
		{"", "zh;q=0, en", "en"},
		{"", "de, *;q=0.1", "en"},
		{"", "de", "en"},
		{"", "zh;q=bogus, en;q=0.1", "en"},
		{"ZH-cn", "en", "zh-CN"},
		{"fr", "zh", "zh-CN"},
	} {
		if got := chooseLang(tc.query, tc.header); got != tc.want {
			t.Errorf("chooseLang(%q, %q) = %q, want %q", tc.query, tc.header, got, tc.want)
		}
	}
}

func TestLargeTargetsAreCollapsed(t *testing.T) {
	f := newFixture()
	f.addTarget("big", "/data/big", 1000, stepNames, 0.5)
	p := f.page(t, Options{Rows: 40})
	body, _ := getPage(t, p, "/", "")
	if n := strings.Count(body, `<tr class="ckpt `); n != 40 {
		t.Errorf("overview shows %d rows, want 40", n)
	}
	if !strings.Contains(body, `<details class="checkpoints" id="cp-big">`) || !strings.Contains(body, "… 960 more") ||
		!strings.Contains(body, `<td class="name">ckpt_100000.pt</td>`) || !strings.Contains(body, `<td class="name">ckpt_100.pt</td>`) {
		t.Error("the large table is not collapsed to its oldest and newest rows")
	}
	one, _ := getPage(t, p, "/?target=big", "")
	if n := strings.Count(one, `<tr class="ckpt `); n != 1000 {
		t.Errorf("the target's own page shows %d rows, want 1000", n)
	}
}

func apiGet(t testing.TB, p *Page, url string, into any) {
	t.Helper()
	rec := httptest.NewRecorder()
	p.API().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d", url, rec.Code)
	}
	data, _ := io.ReadAll(rec.Body)
	if err := json.Unmarshal(data, into); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkRender50x1000 renders the page of 50 targets of 1000
// checkpoints each (BENCHMARKS.md).
func BenchmarkRender50x1000(b *testing.B) {
	f := newFixture()
	for i := range 50 {
		f.addTarget(fmt.Sprintf("target%02d", i), fmt.Sprintf("/data/run%02d", i), 1000, stepNames, 0.5+float64(i%5)/10)
		for j := range 10 {
			f.hist.Record(context.Background(), webhookRun(fmt.Sprintf("target%02d", i), history.Item{Name: stepNames(j), Step: int64(j), Bytes: 1, Reason: "oldest, to free space"}))
		}
	}
	p := f.page(b, Options{})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "page-bytes")
}

// BenchmarkAPI50x1000 is the JSON of the same state.
func BenchmarkAPI50x1000(b *testing.B) {
	f := newFixture()
	for i := range 50 {
		f.addTarget(fmt.Sprintf("target%02d", i), fmt.Sprintf("/data/run%02d", i), 1000, stepNames, 0.5)
	}
	p := f.page(b, Options{})
	req := httptest.NewRequest(http.MethodGet, "/api/v1/status", nil)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		rec := httptest.NewRecorder()
		p.API().ServeHTTP(rec, req)
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "json-bytes")
}

// The Content-Security-Policy names the page's inline style and script by
// hash: they must be exactly what the page holds, or the browser refuses
// them.
func TestCSPHashesMatchThePage(t *testing.T) {
	f := newFixture()
	f.addTarget("train", "/data/train", 3, stepNames, 0.5)
	body, h := getPage(t, f.page(t, Options{}), "/", "")
	csp := h.Get("Content-Security-Policy")
	for _, tag := range []string{"style", "script"} {
		_, rest, ok := strings.Cut(body, "<"+tag+">")
		inline, _, ok2 := strings.Cut(rest, "</"+tag+">")
		if !ok || !ok2 {
			t.Fatalf("no <%s> in the page", tag)
		}
		if want := tag + "-src " + hash(inline); !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %s (the page's <%s> as served)", csp, want, tag)
		}
	}
}

// Both languages have every message, with the same verbs.
func TestCatalogsAgree(t *testing.T) {
	verbs := regexp.MustCompile(`%(\[\d\])?[sd]`)
	count := func(s string) int { return len(verbs.FindAllString(s, -1)) }
	for key, en := range messages[langEN] {
		zh, ok := messages[langZH][key]
		if !ok {
			t.Errorf("%s: no Chinese", key)
			continue
		}
		if count(en) != count(zh) {
			t.Errorf("%s: %q and %q take different arguments", key, en, zh)
		}
	}
	for key := range messages[langZH] {
		if _, ok := messages[langEN][key]; !ok {
			t.Errorf("%s: Chinese only", key)
		}
	}
}

// No message is ever missing or given the wrong arguments on a page.
func TestNoFormatErrors(t *testing.T) {
	f := newFixture()
	f.addTarget("full", "/data/full", 8, stepNames, 0.90)
	f.addTarget("half", "/data/half", 8, stepNames, 0.75)
	f.addTarget("low", "/data/low", 8, stepNames, 0.10)
	f.targets[1].Policy.Execute, f.targets[1].MaxBytes, f.snaps[1].Target.MaxBytes = false, 1<<20, 1<<20
	f.hist.Record(context.Background(), webhookRun("full", history.Item{Name: "a", Step: 1, Bytes: 1, Reason: "oldest, to free space"}))
	f.hist.Record(context.Background(), history.Run{Target: "half", Trigger: history.TriggerCLI, Result: "dry_run", Time: now,
		Deleted: []history.Item{{Name: "b", Reason: "older than the newest 3"}}, PlannedBytes: 5,
		Skipped: []history.Item{{Name: "c", Cause: "changed", Reason: "modified since the scan"}}})
	f.hist.Record(context.Background(), history.Run{Target: "low", Trigger: history.TriggerAutonomous, Result: "error", Error: "lock held", Time: now, AlertsOmitted: 3,
		Alerts: []history.Alert{{Name: "X"}}})
	p := f.page(t, Options{})
	for _, lang := range languages {
		body, _ := getPage(t, p, "/?lang="+lang, "")
		if i := strings.Index(body, "%!"); i >= 0 {
			t.Errorf("%s page: a format error: %s", lang, body[max(0, i-80):min(len(body), i+80)])
		}
		for _, key := range []string{"next.notyet", "trigger.autonomous", "cause.changed", "runs.omitted", "item.would", "next.over"} {
			if want := strings.SplitN(messages[lang][key], "%", 2)[0]; !strings.Contains(body, template.HTMLEscapeString(want)) {
				t.Errorf("%s page lacks %s (%q)", lang, key, want)
			}
		}
	}
}

// Issue #27: a target whose layout no rule names shows its checkpoints as
// kept (uncertain, no rule for this layout), a time in their names as no
// step, and the pattern: that makes them prunable, ready to paste, in both
// languages and in the API; where the names read as several series, each
// one's pattern.
func TestPageSuggestsThePatternForAnUnrecognisedLayout(t *testing.T) {
	f := newFixture()
	f.addTarget("jax", "/data/jax", 4, func(i int) string { return fmt.Sprintf("snapshot-%d", 1704110400+3600*i) }, 0.5)
	f.addTarget("mixed", "/data/mixed", 0, stepNames, 0.5)
	snap := f.snaps[0]
	snap.Layout, snap.Series, snap.Suggested = "unrecognised", "snapshot-{time}", "snapshot-{step}"
	for i := range snap.Checkpoints {
		c := &snap.Checkpoints[i]
		c.Step, c.NoStep, c.Unrecognised = int64(1704110400+3600*i), true, true
		c.Uncertain = `no rule for this layout: names read as the series snapshot-{time}; pattern: "snapshot-{step}" makes them prunable`
	}
	f.snaps[1].Layout, f.snaps[1].Series, f.snaps[1].Candidates = "none", "", []string{"model_{step}.npz", "weights_{step}.npz"}
	p := f.page(t, Options{})
	for _, tc := range []struct {
		lang string
		want []string
	}{
		{"en", []string{"No rule for this layout: its 4 checkpoints are counted but never pruned.",
			`<td class="status">keep</td><td>uncertain (no rule for this layout)</td>`,
			"the names read as 2 series: none is counted"}},
		{"zh-CN", []string{"没有识别此布局的规则：其 4 个检查点会被统计", "不确定（没有识别此布局的规则）", "可读作 2 个序列"}},
	} {
		body, _ := getPage(t, p, "/?lang="+tc.lang, "")
		for _, want := range append(tc.want,
			`<pre><code>pattern: &#34;snapshot-{step}&#34;</code></pre>`,
			`<td class="name">snapshot-1704110400</td><td class="num">—</td>`,
			"<pre><code>pattern: &#34;model_{step}.npz&#34;\npattern: &#34;weights_{step}.npz&#34;\n</code></pre>") {
			if !strings.Contains(body, want) {
				t.Errorf("the %s page lacks %s", tc.lang, want)
			}
		}
		if strings.Contains(body, ">1704110400<") || strings.Contains(body, "prunable</td>") {
			t.Errorf("the %s page shows a time as a step, or an unrecognised checkpoint as prunable", tc.lang)
		}
	}
	var st struct {
		Targets []struct {
			SuggestedPattern string   `json:"suggested_pattern"`
			Candidates       []string `json:"candidates"`
			Checkpoints      []struct {
				Step   *int64 `json:"step"`
				Reason struct {
					Code string `json:"code"`
				} `json:"reason"`
			} `json:"checkpoints"`
		} `json:"targets"`
	}
	apiGet(t, p, "/api/v1/status", &st)
	jax := st.Targets[0]
	if jax.SuggestedPattern != "snapshot-{step}" || len(jax.Checkpoints) != 4 || jax.Checkpoints[3].Step != nil || jax.Checkpoints[3].Reason.Code != "no_rule" ||
		len(st.Targets[1].Candidates) != 2 {
		t.Errorf("API: %+v", st.Targets)
	}
}
