package checkpoint

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Pattern is a custom checkpoint name pattern: {step} stands for the step
// number and * for any run of characters. Entries whose names give the same
// step form one checkpoint.
type Pattern struct {
	text string
	re   *regexp.Regexp
}

// CompilePattern parses a custom pattern such as "checkpoint_step_{step}.keras".
// A * right before {step} takes as little as it can, so that the step is the
// whole digit run (rl_model_*{step}_steps.zip reads 10000, not 0).
func CompilePattern(p string) (*Pattern, error) {
	if strings.Count(p, "{step}") != 1 {
		return nil, fmt.Errorf("pattern %q must contain {step} exactly once", p)
	}
	if strings.Contains(p, "/") {
		return nil, fmt.Errorf("pattern %q must name entries of the target directory, not paths", p)
	}
	var b strings.Builder
	b.WriteString("^")
	for i, part := range strings.Split(p, "{step}") {
		if i > 0 {
			b.WriteString("([0-9]+)")
		}
		for j, lit := range strings.Split(part, "*") {
			if j > 0 {
				b.WriteString(".*?")
			}
			b.WriteString(regexp.QuoteMeta(lit))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", p, err)
	}
	return &Pattern{text: p, re: re}, nil
}

func (p *Pattern) match(d *listing) match {
	m := match{layout: LayoutPattern, series: p.text}
	byStep := map[int64]int{}
	for _, e := range d.entries {
		s, ok := p.step(e.name)
		if !ok {
			continue
		}
		if i, seen := byStep[s]; seen {
			m.found[i].entries = append(m.found[i].entries, e.name)
			continue
		}
		byStep[s] = len(m.found)
		m.found = append(m.found, found{name: e.name, step: s, entries: []string{e.name}, dir: e.kind == kindDir})
	}
	for i := range m.found {
		if len(m.found[i].entries) > 1 {
			m.found[i].dir = false
			sort.Strings(m.found[i].entries)
			m.found[i].name = groupName(m.found[i].entries, m.found[i].step)
		}
	}
	m.note("pattern %q", p.text)
	return m
}

// step reads the step from a name; the digit run must be whole (a * before
// {step} never takes digits of it).
func (p *Pattern) step(name string) (int64, bool) {
	idx := p.re.FindStringSubmatchIndex(name)
	if idx == nil || idx[2] > 0 && isDigit(name[idx[2]-1]) {
		return 0, false
	}
	return submatchStep(p.re, name)
}
