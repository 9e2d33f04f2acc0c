package alertmanager

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// Alert outcomes, as in checkpoint_webhook_alerts_total{outcome}.
const (
	OutcomePruned  = "pruned"
	OutcomeDryRun  = "dry_run"
	OutcomeNoop    = "noop"
	OutcomeIgnored = "ignored"
	OutcomeError   = "error"
)

// Pruning is what the webhook needs from the pruning service: the targets it
// prunes and a way to trigger prunes, saying which alerts asked.
type Pruning interface {
	Names() []string
	TriggerFor(trigger string, asked map[string]pruner.Asked) map[string]*pruner.QueuedRun
}

// Options configure the webhook.
type Options struct {
	// TokenFile holds the bearer token Alertmanager must send; it is read
	// for every request, so a rotation takes effect at once. Empty: no token
	// is required.
	TokenFile string
	// MaxBodyBytes limits the request body (default 1 MiB).
	MaxBodyBytes int64
	// Timeout is how long a request waits for its prunes before answering
	// 202 (default 5s).
	Timeout time.Duration
	// Instance, if set, ignores alerts for another instance.
	Instance string
	// Guard, if set, is asked before every prune a request would start; an
	// error refuses the request with 503 (Alertmanager retries it) and
	// deletes nothing. The exporter sets AuthGuard.Allow: it refuses to
	// delete once the web config no longer authenticates the webhook.
	Guard func() error
	// MatchLabels, if set, ignore alerts whose value of one of these labels
	// differs (see Matcher.Labels).
	MatchLabels map[string]string
}

// Webhook is the Alertmanager receiver: an http.Handler.
type Webhook struct {
	logger    log.Logger
	pruning   Pruning
	snapshots func() []*checkpoint.Snapshot
	metrics   *metrics
	opts      Options
}

// NewWebhook returns the handler, its counters registered with reg.
// snapshots supplies the latest scans, used to find the targets on a mount
// point.
func NewWebhook(logger log.Logger, p Pruning, snapshots func() []*checkpoint.Snapshot, reg prometheus.Registerer, opts Options) (*Webhook, error) {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	w := &Webhook{logger: logger, pruning: p, snapshots: snapshots, metrics: newMetrics(reg), opts: opts}
	if opts.TokenFile != "" {
		if _, err := readToken(w.opts.TokenFile); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Response is the webhook's JSON answer.
type Response struct {
	// Status is "done" when every prune finished in time, "accepted" when
	// some go on in the background, or "error" (a bad request, a refusal, or
	// a prune that failed: the results say which).
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Alerts are the request's alerts, equal ones grouped (Match.Count);
	// AlertsOmitted counts ignored alerts past the listed groups.
	Alerts        []Match         `json:"alerts,omitempty"`
	AlertsOmitted int             `json:"alerts_omitted,omitempty"`
	Results       []pruner.Result `json:"results,omitempty"`
}

func (w *Webhook) reply(rw http.ResponseWriter, code int, resp Response) {
	w.metrics.request(code)
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	_ = json.NewEncoder(rw).Encode(resp)
}

func (w *Webhook) fail(rw http.ResponseWriter, r *http.Request, code int, msg string) {
	level.Warn(w.logger).Log("msg", "webhook request refused", "code", code, "remote", r.RemoteAddr, "reason", msg)
	w.reply(rw, code, Response{Status: "error", Error: msg})
}

// refuse fails a request whose body is not (all) read, and drops the
// connection instead of reading the rest: a refused client, above all one
// without credentials, must not keep a connection open by sending its body
// slowly.
func (w *Webhook) refuse(rw http.ResponseWriter, r *http.Request, code int, msg string) {
	rw.Header().Set("Connection", "close")
	_ = http.NewResponseController(rw).SetReadDeadline(time.Now())
	w.fail(rw, r, code, msg)
}

func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		w.refuse(rw, r, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: POST Alertmanager's webhook payload")
		return
	}
	if w.opts.TokenFile != "" {
		tok, err := readToken(w.opts.TokenFile)
		if err != nil {
			level.Error(w.logger).Log("msg", "cannot read webhook token", "err", err)
			w.refuse(rw, r, http.StatusInternalServerError, "webhook token unavailable")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), tok) != 1 {
			rw.Header().Set("WWW-Authenticate", `Bearer realm="checkpoint_exporter webhook"`)
			w.refuse(rw, r, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		w.refuse(rw, r, http.StatusUnsupportedMediaType, "content type must be application/json")
		return
	}
	// Alerts are matched as they are decoded and only their summary is kept:
	// the body is never held whole, however many alerts it carries.
	matcher := w.matcher()
	sum := newAlertSummary()
	msg, err := DecodeAlerts(http.MaxBytesReader(rw, r.Body, w.opts.MaxBodyBytes), func(a Alert) error {
		sum.add(a, matcher.MatchAlert(a))
		return nil
	})
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			w.refuse(rw, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", w.opts.MaxBodyBytes))
			return
		}
		w.fail(rw, r, http.StatusBadRequest, err.Error())
		return
	}
	w.handle(r.Context(), rw, msg, sum)
}

func (w *Webhook) matcher() Matcher {
	m := Matcher{Targets: w.pruning.Names(), Mountpoints: map[string][]string{}, Instance: w.opts.Instance, Labels: w.opts.MatchLabels}
	for _, s := range w.snapshots() {
		if s.FS != nil && s.FS.Mountpoint != "" {
			m.Mountpoints[s.FS.Mountpoint] = append(m.Mountpoints[s.FS.Mountpoint], s.Target.Name)
		}
	}
	return m
}

func (w *Webhook) handle(ctx context.Context, rw http.ResponseWriter, msg *Message, sum *alertSummary) {
	targets := sum.targets()
	level.Info(w.logger).Log("msg", "webhook request", "receiver", msg.Receiver, "group_key", msg.GroupKey,
		"alerts", sum.total, "firing", sum.firing, "ignored", sum.ignored(), "targets", strings.Join(targets, ","),
		"ignored_because", sum.reasons(3))
	if len(targets) > 0 && w.opts.Guard != nil {
		if err := w.opts.Guard(); err != nil {
			level.Error(w.logger).Log("msg", "webhook refuses to prune", "err", err)
			w.reply(rw, http.StatusServiceUnavailable, Response{Status: "error", Error: err.Error(), Alerts: sum.groups, AlertsOmitted: sum.omittedTotal()})
			return
		}
	}
	flights := map[string]*pruner.QueuedRun{}
	if len(targets) > 0 {
		flights = w.pruning.TriggerFor(pruner.TriggerWebhook, sum.askedFor())
	}
	timer := time.NewTimer(w.opts.Timeout)
	defer timer.Stop()
	inTime := true
wait:
	for _, f := range flights {
		select {
		case <-f.Done():
		case <-timer.C:
			inTime = false
			break wait
		case <-ctx.Done():
			inTime = false
			break wait
		}
	}
	if !inTime {
		go func() {
			for _, f := range flights {
				<-f.Done()
			}
			w.countAlerts(sum, flights)
		}()
		w.reply(rw, http.StatusAccepted, Response{Status: "accepted", Alerts: sum.groups, AlertsOmitted: sum.omittedTotal()})
		return
	}
	results := make([]pruner.Result, 0, len(targets))
	for _, t := range targets {
		if f, ok := flights[t]; ok {
			if r, ok := f.Result(t); ok {
				results = append(results, r)
			}
		}
	}
	w.countAlerts(sum, flights)
	// A prune that failed answers 500, so Alertmanager retries the
	// notification; one that could not reach its goal (insufficient) did all
	// it may and answers 200: a retry would not do more.
	code, status := http.StatusOK, "done"
	for _, r := range results {
		if r.Outcome == pruner.ResultError {
			code, status = http.StatusInternalServerError, "error"
		}
	}
	w.reply(rw, code, Response{Status: status, Alerts: sum.groups, AlertsOmitted: sum.omittedTotal(), Results: results})
}

// countAlerts counts every alert once, by the outcome of its prunes.
func (w *Webhook) countAlerts(sum *alertSummary, flights map[string]*pruner.QueuedRun) {
	for _, m := range sum.groups {
		outcome := OutcomeIgnored
		if len(m.Targets) > 0 {
			outcome = OutcomeNoop
			for _, t := range m.Targets {
				f, ok := flights[t]
				if !ok {
					continue
				}
				r, _ := f.Result(t)
				outcome = strongerOutcome(outcome, outcomeOf(r))
			}
		}
		w.metrics.alert(m.Status, outcome, m.Count)
	}
	for status, n := range sum.omitted {
		w.metrics.alert(status, OutcomeIgnored, n)
	}
}

func outcomeOf(r pruner.Result) string {
	switch {
	case r.Outcome == pruner.ResultDryRun:
		return OutcomeDryRun
	case len(r.Deleted) > 0:
		return OutcomePruned
	case r.Outcome == pruner.ResultError:
		return OutcomeError
	}
	return OutcomeNoop
}

func strongerOutcome(a, b string) string {
	rank := map[string]int{OutcomeIgnored: 0, OutcomeNoop: 1, OutcomeDryRun: 2, OutcomeError: 3, OutcomePruned: 4}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
