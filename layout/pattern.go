package layout

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

// Match reads the entries of l that the pattern names.
func (p *Pattern) Match(l *Listing) *Reading {
	r := &Reading{Layout: PatternLayout, Series: p.text}
	byStep := map[int64]int{}
	for _, e := range l.Entries() {
		s, ok := p.step(e.Name)
		if !ok {
			continue
		}
		if i, seen := byStep[s]; seen {
			r.Found[i].Entries = append(r.Found[i].Entries, e.Name)
			continue
		}
		byStep[s] = len(r.Found)
		r.Found = append(r.Found, Found{Name: e.Name, Step: s, Entries: []string{e.Name}, dir: e.Kind == KindDir})
	}
	for i := range r.Found {
		if len(r.Found[i].Entries) > 1 {
			r.Found[i].dir = false
			sort.Strings(r.Found[i].Entries)
			r.Found[i].Name = groupName(r.Found[i].Entries, r.Found[i].Step)
		}
	}
	r.note("pattern %q", p.text)
	return r
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
