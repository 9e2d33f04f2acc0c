package alertmanager

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Message is Alertmanager's webhook payload, version 4.
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Message.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// DecodeAlerts parses and checks a webhook body from r, handing each alert
// to each as soon as it is decoded instead of keeping them: a request's
// memory is bounded by its largest alert, not by how many it carries. The
// returned message has every field but Alerts. each may stop the decoding by
// returning an error.
func DecodeAlerts(r io.Reader, each func(Alert) error) (*Message, error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	// Fields other than alerts are small: they are gathered and decoded
	// with the standard rules at the end.
	rest := map[string]json.RawMessage{}
	seenAlerts := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("malformed JSON: %w", err)
		}
		key, _ := tok.(string)
		if !strings.EqualFold(key, "alerts") {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, fmt.Errorf("malformed JSON: %w", err)
			}
			rest[key] = raw
			continue
		}
		if seenAlerts {
			return nil, errors.New("malformed JSON: alerts given twice")
		}
		seenAlerts = true
		if err := decodeAlertList(dec, each); err != nil {
			return nil, err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("malformed JSON: trailing data after the message")
	}
	head, err := json.Marshal(rest)
	if err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	var m Message
	if err := json.Unmarshal(head, &m); err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	if m.Version != "4" {
		return nil, fmt.Errorf("unsupported webhook version %q (want \"4\")", m.Version)
	}
	return &m, nil
}

// decodeAlertList decodes the value of "alerts": null or an array of alerts.
func decodeAlertList(dec *json.Decoder, each func(Alert) error) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("malformed JSON: alerts is %v, not an array", tok)
	}
	for i := 0; dec.More(); i++ {
		var a Alert
		if err := dec.Decode(&a); err != nil {
			return fmt.Errorf("malformed JSON: alerts[%d]: %w", i, err)
		}
		if a.Status != "firing" && a.Status != "resolved" {
			return fmt.Errorf("alerts[%d]: status %q is neither firing nor resolved", i, a.Status)
		}
		if err := each(a); err != nil {
			return err
		}
	}
	return expectDelim(dec, ']')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("malformed JSON: got %v, want %v", tok, want)
	}
	return nil
}

// Match is what the webhook makes of one alert.
type Match struct {
	Fingerprint string   `json:"fingerprint,omitempty"`
	Status      string   `json:"status"`
	Targets     []string `json:"targets"`
	// Ignored says why the alert selects nothing, if it does not.
	Ignored string `json:"ignored,omitempty"`
	// Count is how many alerts of a request this entry stands for, when the
	// webhook's answer groups equal ones (Fingerprint is then the first's).
	Count int `json:"count,omitempty"`
}

// Matcher selects the targets an alert is about.
type Matcher struct {
	// Targets are the configured target names.
	Targets []string
	// Mountpoints maps a mount point to the targets on it.
	Mountpoints map[string][]string
	// Instance, if set, ignores alerts whose instance label differs.
	Instance string
	// Labels, if set, ignore alerts that carry one of these labels with
	// another value: routing by a label the operator controls (node, pod),
	// where instance is whatever the scraper made of the address.
	Labels map[string]string
}

// foreign says why an alert is for another exporter: it carries the instance
// label or one of Labels with a value other than this exporter's. An alert
// without those labels is not foreign.
func (m Matcher) foreign(labels map[string]string) string {
	if v, ok := labels["instance"]; ok && m.Instance != "" && v != m.Instance {
		return fmt.Sprintf("instance %q is not this exporter (%q)", v, m.Instance)
	}
	for _, name := range slices.Sorted(maps.Keys(m.Labels)) {
		if v, ok := labels[name]; ok && v != m.Labels[name] {
			return fmt.Sprintf("label %s=%q is not this exporter's (%q)", name, v, m.Labels[name])
		}
	}
	return ""
}

// MatchAlert selects the targets alert a asks to prune: a resolved alert
// selects nothing; a firing alert selects the target its "target" label
// names, else every target on the filesystem its "mountpoint" label names,
// else nothing. It only ever returns configured targets.
func (m Matcher) MatchAlert(a Alert) Match {
	r := Match{Fingerprint: a.Fingerprint, Status: a.Status, Targets: []string{}}
	foreign := m.foreign(a.Labels)
	switch {
	case a.Status != "firing":
		r.Ignored = "resolved"
	case foreign != "":
		r.Ignored = foreign
	case a.Labels["target"] != "":
		name := a.Labels["target"]
		for _, t := range m.Targets {
			if t == name {
				r.Targets = append(r.Targets, t)
			}
		}
		if len(r.Targets) == 0 {
			r.Ignored = fmt.Sprintf("unknown target %q", name)
		}
	case a.Labels["mountpoint"] != "":
		mp := a.Labels["mountpoint"]
		r.Targets = append(r.Targets, m.Mountpoints[mp]...)
		if len(r.Targets) == 0 {
			r.Ignored = fmt.Sprintf("no target on mountpoint %q", mp)
		}
	default:
		r.Ignored = "no target or mountpoint label"
	}
	return r
}
