package alertmanager

import (
	"sort"
	"strings"

	"github.com/checkpoint-exporter/checkpoint_exporter/pruner"
)

// maxAlertGroups bounds the distinct ignored-alert groups a request's answer
// lists: alerts that select a target are always kept, ignored ones beyond
// this are only counted (Response.AlertsOmitted).
const maxAlertGroups = 50

// alertSummary is what the webhook keeps of a request's alerts: equal
// matches grouped with a count, so neither memory, the answer nor the log
// grows with the number of alerts.
type alertSummary struct {
	groups  []Match
	index   map[string]int // group key → position in groups
	total   int
	firing  int
	omitted map[string]int // ignored alerts not listed, by status
	// asked are, per selected target, the alerts that asked for its prune
	// (at most MaxAsked kept each).
	asked map[string]*pruner.Asked
}

func newAlertSummary() *alertSummary {
	return &alertSummary{index: map[string]int{}, omitted: map[string]int{}, asked: map[string]*pruner.Asked{}}
}

// add counts alert a, which the matcher made m of.
func (s *alertSummary) add(a Alert, m Match) {
	for _, t := range m.Targets {
		k := s.asked[t]
		if k == nil {
			k = &pruner.Asked{}
			s.asked[t] = k
		}
		k.Add(pruner.AlertRef{Name: a.Labels["alertname"], Fingerprint: a.Fingerprint, Labels: a.Labels})
	}
	s.total++
	if m.Status == "firing" {
		s.firing++
	}
	key := m.Status + "\x00" + m.Ignored + "\x00" + strings.Join(m.Targets, "\x00")
	if i, ok := s.index[key]; ok {
		s.groups[i].Count++
		return
	}
	if len(m.Targets) == 0 && len(s.groups) >= maxAlertGroups {
		s.omitted[m.Status]++
		return
	}
	m.Count = 1
	s.index[key] = len(s.groups)
	s.groups = append(s.groups, m)
}

// targets are the distinct targets selected, sorted.
func (s *alertSummary) targets() []string {
	seen := map[string]bool{}
	var out []string
	for _, g := range s.groups {
		for _, t := range g.Targets {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	sort.Strings(out)
	return out
}

// askedFor is, per selected target, the alerts that asked for its prune.
func (s *alertSummary) askedFor() map[string]pruner.Asked {
	out := make(map[string]pruner.Asked, len(s.asked))
	for t, k := range s.asked {
		out[t] = *k
	}
	return out
}

// ignored is the number of alerts that select nothing.
func (s *alertSummary) ignored() int {
	n := 0
	for _, g := range s.groups {
		if len(g.Targets) == 0 {
			n += g.Count
		}
	}
	for _, c := range s.omitted {
		n += c
	}
	return n
}

// omittedTotal is the number of ignored alerts not listed.
func (s *alertSummary) omittedTotal() int {
	n := 0
	for _, c := range s.omitted {
		n += c
	}
	return n
}

// reasons are up to max distinct reasons for ignoring alerts, for the log.
func (s *alertSummary) reasons(max int) string {
	var out []string
	for _, g := range s.groups {
		if g.Ignored != "" && len(out) < max {
			out = append(out, g.Ignored)
		}
	}
	return strings.Join(out, "; ")
}
