// Package statuspage is the exporter's status page at / and its JSON twin
// at /api/v1/status: per target the filesystem with its watermarks, how many
// saves and how long until it is full, every checkpoint with the status a
// prune gives it and why, what the next prune would delete and why, the
// offload state, the recent prunes from the deletion history and a 24-hour
// usage chart from samples kept in memory. The page is rendered on the
// server with html/template in English or Chinese, needs no asset from
// anywhere (it works on an air-gapped node), reads without JavaScript, and
// refreshes itself with a few lines of it. It only shows: nothing on it
// deletes, and building it reads memory only, never a target's disk.
//
// It imports checkpoint, pruner, verdict, history and targetdir, and must
// not import alertmanager, offload or cmd: what it shows of them comes
// through Sources.
package statuspage

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/history"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// History is what the page needs of the deletion history.
type History interface {
	Runs(target string, n int) []history.Run
	Path() string
}

// Sources are where the page reads the exporter's state; all of it in
// memory.
type Sources struct {
	// Snapshots are the targets' last scans (checkpoint.Inventory).
	Snapshots func() []*checkpoint.Snapshot
	// Targets are the configured targets with their policies, in order.
	Targets func() []pruner.Target
	// Offload, if set, tells a checkpoint's offload state as the target's
	// offloader last saw it; ok is false for a target without offload.
	Offload func(target string, c checkpoint.Checkpoint) (o Offload, ok bool)
	History History
	Usage   *Usage
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Link is a link of the landing page.
type Link struct {
	Path string
	// Key names it in the message catalogue (link.metrics…).
	Key string
}

// Options shape the page.
type Options struct {
	Version     string
	WebhookPath string
	// Links are the exporter's other endpoints, listed at the top.
	Links []Link
	// Rows is how many checkpoint rows a target shows on the overview
	// before the rest is left to its own page (0: DefaultRows).
	Rows int
	// Runs is how many recent prunes a target shows (0: DefaultRuns).
	Runs int
	// Refresh is how often the page refreshes itself (0: DefaultRefresh).
	Refresh time.Duration
}

// Defaults of Options.
const (
	DefaultRows    = 40
	DefaultRuns    = 10
	DefaultRefresh = 15 * time.Second
)

// chartWindow is how far back the usage chart looks.
const chartWindow = 24 * time.Hour

// Page serves the status page (ServeHTTP) and the API (API).
type Page struct {
	src  Sources
	opts Options
	tmpl *template.Template
	csp  string
}

//go:embed page.html.tmpl
var pageTemplate string

//go:embed style.css
var styleCSS string

// refreshJS refreshes the page in place every data-seconds, keeping which
// tables are unfolded; the page reads the same without it. It has no
// comments: html/template would take them out of the page, and the hash in
// the Content-Security-Policy would no longer match.
//
//go:embed refresh.js
var refreshJS string

// New returns the page over src.
func New(src Sources, opts Options) (*Page, error) {
	if opts.Rows <= 0 {
		opts.Rows = DefaultRows
	}
	if opts.Runs <= 0 {
		opts.Runs = DefaultRuns
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultRefresh
	}
	if src.Now == nil {
		src.Now = time.Now
	}
	// The style and the script are fixed text, placed as they are so the
	// Content-Security-Policy can name them by hash: nothing else runs,
	// and nothing is fetched from anywhere.
	text := strings.NewReplacer("/*STYLE*/", styleCSS, "/*SCRIPT*/", refreshJS).Replace(pageTemplate)
	tmpl, err := template.New("page").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("status page template: %w", err)
	}
	csp := "default-src 'none'; style-src " + hash(styleCSS) + "; script-src " + hash(refreshJS) +
		"; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return &Page{src: src, opts: opts, tmpl: tmpl, csp: csp}, nil
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// Status builds the state of every target (only the one named only, if
// set); runs is how many recent prunes each gets.
func (p *Page) Status(only string, runs int) Status {
	now := p.src.Now()
	snaps := map[string]*checkpoint.Snapshot{}
	for _, s := range p.src.Snapshots() {
		snaps[s.Target.Name] = s
	}
	st := Status{Version: p.opts.Version, GeneratedAt: now, Targets: []Target{}}
	if p.src.History != nil {
		st.HistoryFile = p.src.History.Path()
	}
	for _, t := range p.src.Targets() {
		if only != "" && t.Name != only {
			continue
		}
		in := inputs{target: t, snap: snaps[t.Name], now: now}
		if snap := in.snap; snap != nil && snap.Target.Path != t.Path {
			in.snap = nil // scanned before a reload changed the target
		}
		if p.src.Offload != nil && t.Offload != nil {
			name := t.Name
			in.offload = func(c checkpoint.Checkpoint) (Offload, bool) { return p.src.Offload(name, c) }
		}
		if p.src.History != nil {
			in.runs = p.src.History.Runs(t.Name, runs)
		}
		if p.src.Usage != nil {
			in.usage = p.src.Usage.Samples(t.Name, now.Add(-chartWindow))
		}
		st.Targets = append(st.Targets, buildTarget(in))
	}
	return st
}

// ServeHTTP serves the page at "/" (404 for any other path): ?lang=en or
// zh-CN overrides Accept-Language; ?target=NAME shows one target with all
// its checkpoints.
func (p *Page) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(rw, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		rw.Header().Set("Allow", "GET, HEAD")
		http.Error(rw, "the status page only shows: GET it", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	lang := chooseLang(q.Get("lang"), r.Header.Get("Accept-Language"))
	only := q.Get("target")
	v := p.view(p.Status(only, p.opts.Runs), lang, only, q.Has("lang"))
	h := rw.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", lang)
	h.Set("Vary", "Accept-Language")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", p.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if err := p.tmpl.Execute(rw, v); err != nil {
		// The header is gone; the page ends where it failed.
		fmt.Fprintf(rw, "\n<!-- render failed: %s -->", template.HTMLEscapeString(err.Error()))
	}
}

// API serves /api/v1/status: the page's data as JSON (?target=NAME for
// one target, ?runs=N for more or fewer recent prunes).
func (p *Page) API() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			rw.Header().Set("Allow", "GET, HEAD")
			http.Error(rw, "GET the status", http.StatusMethodNotAllowed)
			return
		}
		q := r.URL.Query()
		runs := p.opts.Runs
		if n, err := parseCount(q.Get("runs")); err == nil {
			runs = n
		}
		st := p.Status(q.Get("target"), runs)
		if only := q.Get("target"); only != "" && len(st.Targets) == 0 {
			http.Error(rw, "no target "+only, http.StatusNotFound)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.Header().Set("Cache-Control", "no-store")
		// Compact: 50 targets of 1000 checkpoints are megabytes already
		// (pipe it through jq to read it).
		_ = json.NewEncoder(rw).Encode(st)
	})
}

func parseCount(s string) (int, error) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 0 {
		return 0, fmt.Errorf("not a count: %q", s)
	}
	return min(n, 1000), nil
}

// pageURL is the page's address with the given query values.
func pageURL(lang, target string, pinLang bool) string {
	q := url.Values{}
	if pinLang {
		q.Set("lang", lang)
	}
	if target != "" {
		q.Set("target", target)
	}
	if len(q) == 0 {
		return "/"
	}
	return "/?" + q.Encode()
}
