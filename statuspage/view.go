package statuspage

import (
	"fmt"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/checkpoint-exporter/checkpoint_exporter/history"
	"github.com/checkpoint-exporter/checkpoint_exporter/verdict"
)

// view is what the template renders: the status, the words of one
// language, and per target what the page lays out.
type view struct {
	L           catalog
	S           Status
	Only        string
	Targets     []*targetView
	Links       []Link
	WebhookPath string
	Refresh     int
	// Switch is the address of the page in the other language; Self the
	// page's own address (language kept if it was chosen with ?lang=).
	SwitchLang, SwitchURL string
	pinLang               bool
}

type targetView struct {
	Target
	// Head and Tail are the checkpoint rows shown (oldest steps, newest
	// steps); Hidden how many lie between them, left to the target's own
	// page.
	Head, Tail []Checkpoint
	Hidden     int
	// Plan are the next prune's deletions shown; PlanHidden how many more
	// it has, left to the target's own page.
	Plan       []Planned
	PlanHidden int
	// Open: the checkpoint table starts unfolded.
	Open  bool
	Bar   bar
	Chart chart
}

func (p *Page) view(st Status, lang, only string, pinLang bool) *view {
	v := &view{L: catalogFor(lang), S: st, Only: only, Links: p.opts.Links, WebhookPath: p.opts.WebhookPath,
		Refresh: int(p.opts.Refresh / time.Second), pinLang: pinLang}
	other := langZH
	if lang == langZH {
		other = langEN
	}
	v.SwitchLang, v.SwitchURL = other, pageURL(other, only, true)
	for _, t := range st.Targets {
		tv := &targetView{Target: t, Head: t.Checkpoints, Bar: makeBar(t), Chart: makeChart(t, st.GeneratedAt)}
		rows := p.opts.Rows
		if only != "" {
			rows = len(t.Checkpoints)
		}
		if n := len(t.Checkpoints); n > rows {
			// The oldest are next to go; the newest are what training
			// resumes from.
			tv.Head, tv.Tail, tv.Hidden = t.Checkpoints[:rows/2], t.Checkpoints[n-(rows-rows/2):], n-rows
		}
		if np := t.NextPrune; np != nil {
			tv.Plan = np.Delete
			if len(np.Delete) > rows {
				tv.Plan, tv.PlanHidden = np.Delete[:rows], len(np.Delete)-rows
			}
		}
		tv.Open = only != "" || len(t.Checkpoints) <= 20
		v.Targets = append(v.Targets, tv)
	}
	return v
}

// row is one checkpoint row with what it is rendered with.
type row struct {
	V *view
	T *targetView
	C *Checkpoint
}

// URL is the page's address for target ("" for all), in this language.
func (v *view) URL(target string) string { return pageURL(v.L.Lang(), target, v.pinLang) }

// Reason says a reason in the page's language.
func (v *view) Reason(e verdict.Explained) string {
	msg := v.L.T("reason." + e.Code)
	if strings.Contains(msg, "%s") {
		return fmt.Sprintf(msg, show(e.Detail))
	}
	if e.Detail != "" {
		return msg + " (" + show(e.Detail) + ")"
	}
	return msg
}

// Status says a checkpoint's status word.
func (v *view) Status(c *Checkpoint) string {
	if c.Torn {
		return v.L.T("status.torn") + " · " + v.L.T("status."+c.Status)
	}
	return v.L.T("status." + c.Status)
}

// Trigger says what asked for a run.
func (v *view) Trigger(r *history.Run) string { return v.L.T("trigger." + r.Trigger) }

// Result says a run's result.
func (v *view) Result(r *history.Run) string { return v.L.T("result." + r.Result) }

// ItemWord says what happened to a run's deleted checkpoints.
func (v *view) ItemWord(r *history.Run) string {
	if r.DryRun() {
		return v.L.T("item.would")
	}
	return v.L.T("item.deleted")
}

// Cause says why a deletion was skipped.
func (v *view) Cause(it *history.Item) string {
	if it.Cause == "" {
		return show(it.Reason)
	}
	return v.L.T("cause."+it.Cause) + ": " + show(it.Reason)
}

// Labels shows an alert's labels as {k="v", …}, sorted, alertname left out.
func (v *view) Labels(a *history.Alert) string {
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		if k != "alertname" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", show(k), show(a.Labels[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Until says when the filesystem is full at the write rate.
func (v *view) Until(t *Target) string {
	if t.SecondsUntilFull == nil {
		return v.L.T("untilfull.norate")
	}
	return v.L.T("untilfull.time", verdict.Age(time.Duration(*t.SecondsUntilFull*float64(time.Second))),
		bytesOf(int64(t.WriteBytesPerSecond)), verdict.Age(time.Duration(t.SaveIntervalSeconds*float64(time.Second))))
}

// funcs are the template's functions that need no language.
var funcs = template.FuncMap{
	"name": show,
	// patternLine is a pattern: setting as it goes into a target of the
	// configuration file (a YAML double-quoted string), as scan prints it.
	"patternLine": func(p string) string { return "pattern: " + strconv.Quote(p) },
	"bytes":       func(n any) string { return bytesAny(n) },
	"pct":         func(r float64) string { return fmt.Sprintf("%.1f%%", 100*r) },
	"time":        isoTime,
	"age": func(now, t time.Time) string {
		return verdict.Age(now.Sub(t))
	},
	"add": func(a, b int) int { return a + b },
	"int": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"rowOf": func(v *view, t *targetView, c *Checkpoint) row { return row{V: v, T: t, C: c} },
	"last": func(rs []history.Run) *history.Run {
		if len(rs) == 0 {
			return nil
		}
		return &rs[0]
	},
}

// show makes a name safe to show whatever its bytes: bytes that are not
// UTF-8, and control characters, are written as \xNN (U+FFFD would hide which
// bytes they were); html/template then escapes the rest.
func show(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsControl(r):
			for _, c := range []byte(s[i : i+size]) {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// isoTime writes t in ISO 8601 (RFC 3339), in the server's zone, to the
// second.
func isoTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Format("2006-01-02T15:04:05Z07:00")
}

func bytesAny(n any) string {
	switch x := n.(type) {
	case int64:
		return bytesOf(x)
	case uint64:
		if x > 1<<62 {
			return bytesOf(1 << 62)
		}
		return bytesOf(int64(x))
	case int:
		return bytesOf(int64(x))
	case float64:
		return bytesOf(int64(x))
	}
	return fmt.Sprint(n)
}

// bytesOf writes n in binary units with one decimal (8.0 KiB).
func bytesOf(n int64) string {
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	if n < 1024 {
		return fmt.Sprintf("%s%d B", sign, n)
	}
	f, units := float64(n)/1024, "KMGTPE"
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%s%.1f %ciB", sign, f, units[i])
}
