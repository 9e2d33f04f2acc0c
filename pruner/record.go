package pruner

import (
	"context"
	"time"

	"github.com/go-kit/log/level"
)

// AlertRef names an Alertmanager alert that asked for a prune.
type AlertRef struct {
	Name        string
	Fingerprint string
	Labels      map[string]string
}

// Asked are the alerts that asked for a prune of one target. A request may
// carry thousands of alerts: the first MaxAsked distinct ones are kept and
// the rest counted in Omitted.
type Asked struct {
	Alerts  []AlertRef
	Omitted int
}

// MaxAsked is how many alerts a prune keeps of those that asked for it.
const MaxAsked = 20

// Add joins a to the alerts that asked, once per fingerprint.
func (k *Asked) Add(a AlertRef) {
	for _, have := range k.Alerts {
		if have.Fingerprint == a.Fingerprint && have.Name == a.Name && a.Fingerprint != "" {
			return
		}
	}
	if len(k.Alerts) >= MaxAsked {
		k.Omitted++
		return
	}
	k.Alerts = append(k.Alerts, a)
}

// merge joins what other asked.
func (k *Asked) merge(other Asked) {
	for _, a := range other.Alerts {
		k.Add(a)
	}
	k.Omitted += other.Omitted
}

// Report is one finished prune as the history keeps it: when it ended,
// what asked for it and what it did.
type Report struct {
	Time    time.Time
	Trigger string
	Asked   Asked
	Result  Result
}

// Recorder keeps the history of prunes (the exporter passes its history
// store). Record is called once a prune has finished and before it is
// reported (the CLI's output, the webhook's answer); an error is logged and
// the prune stands: history never holds up or undoes a prune.
type Recorder interface {
	Record(ctx context.Context, r Report) error
}

// RecordTo makes the service hand every prune worth keeping to r.
func (s *Service) RecordTo(r Recorder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recorder = r
}

// record hands a finished prune to the recorder. The autonomous guard's dry
// runs and no-ops are left out: the guard runs after every scan while the
// disk is past its high watermark, so they would repeat every few seconds
// and bury the runs that did something (the status page previews what they
// would delete; the metrics count them).
func (s *Service) record(ctx context.Context, trigger string, asked Asked, res Result) {
	s.mu.Lock()
	rec := s.recorder
	s.mu.Unlock()
	if rec == nil || (trigger == TriggerAutonomous && (res.Outcome == ResultDryRun || res.Outcome == ResultNoop)) {
		return
	}
	// A prune that happened is recorded even if its caller has gone.
	err := rec.Record(context.WithoutCancel(ctx), Report{Time: s.now(), Trigger: trigger, Asked: asked, Result: res})
	if err != nil {
		level.Warn(s.logger).Log("msg", "prune not written to the history file; it is kept in memory", "target", res.Target, "err", err)
	}
}
