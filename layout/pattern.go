package layout

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Pattern is a custom checkpoint name pattern. {step} and {epoch} are the
// numbers that order the checkpoints (with both, by epoch and then by step;
// the step shown is {step}, else {epoch}); any other {name} is the value of
// the metric name (0.41, -1.2e-03, nan, inf); * is any run of characters.
// Entries whose names give the same epoch and step form one checkpoint.
type Pattern struct {
	text string
	re   *regexp.Regexp
	// fields name the expression's groups, in order: placeStep,
	// placeEpoch or a metric's name.
	fields []string
}

// The placeholders that order a pattern's checkpoints.
const (
	placeStep  = "step"
	placeEpoch = "epoch"
)

// placeholderRe finds a pattern's placeholders: {name}, or {name:spec}
// with a Python format spec, so that a Keras ModelCheckpoint filepath
// ("weights.{epoch:02d}-{val_loss:.2f}.keras") is a pattern as it stands
// (keras/src/callbacks/model_checkpoint.py, _get_file_path, fills it with
// str.format). The spec only says how the number was written; any width
// and precision read. Braces around anything else are literal text.
var placeholderRe = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(?::[^{}]*)?\}`)

// numberExpr is what a metric placeholder reads: a decimal number as
// Python's str.format writes a float or an int (:.2f, :.4e, :d, no spec),
// or its nan and inf.
const numberExpr = `[-+]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?(?i:inf(?:inity)?)|(?i:nan)`

// CompilePattern parses a custom pattern such as "checkpoint_step_{step}.keras"
// or "weights.{epoch}-{val_loss}.keras". A * right before a number takes as
// little as it can, so that the number is the whole digit run
// (rl_model_*{step}_steps.zip reads 10000, not 0).
func CompilePattern(p string) (*Pattern, error) {
	if strings.Contains(p, "/") {
		return nil, fmt.Errorf("pattern %q must name entries of the target directory, not paths", p)
	}
	var b strings.Builder
	var fields []string
	b.WriteString("^")
	literal := func(s string) {
		for j, lit := range strings.Split(s, "*") {
			if j > 0 {
				b.WriteString(".*?")
			}
			b.WriteString(regexp.QuoteMeta(lit))
		}
	}
	last := 0
	for _, m := range placeholderRe.FindAllStringSubmatchIndex(p, -1) {
		name := p[m[2]:m[3]]
		if slices.Contains(fields, name) {
			return nil, fmt.Errorf("pattern %q must contain {%s} once, not twice", p, name)
		}
		if m[0] == last && len(fields) > 0 {
			return nil, fmt.Errorf("pattern %q: {%s} and {%s} must be separated by other text: a run of digits could be split between them anywhere", p, fields[len(fields)-1], name)
		}
		literal(p[last:m[0]])
		if name == placeStep || name == placeEpoch {
			b.WriteString("([0-9]+)")
		} else {
			b.WriteString("(" + numberExpr + ")")
		}
		fields = append(fields, name)
		last = m[1]
	}
	literal(p[last:])
	b.WriteString("$")
	if !slices.Contains(fields, placeStep) && !slices.Contains(fields, placeEpoch) {
		return nil, fmt.Errorf("pattern %q has neither {step} nor {epoch}: one of them must order the checkpoints", p)
	}
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", p, err)
	}
	return &Pattern{text: p, re: re, fields: fields}, nil
}

// patternName is what a pattern reads from one name.
type patternName struct {
	epoch, step int64
	metrics     Metrics
}

// Match reads the entries of l that the pattern names.
func (p *Pattern) Match(l *Listing) *Reading {
	r := &Reading{Layout: PatternLayout, Series: p.text}
	type key struct{ epoch, step int64 }
	byKey := map[key]int{}
	var conflicts []int
	for _, e := range l.Entries() {
		n, ok := p.read(e.Name)
		if !ok {
			continue
		}
		k := key{n.epoch, n.step}
		if i, seen := byKey[k]; seen {
			f := &r.Found[i]
			f.Entries = append(f.Entries, e.Name)
			if f.Metrics.merge(n.metrics) {
				conflicts = append(conflicts, i)
			}
			continue
		}
		byKey[k] = len(r.Found)
		r.Found = append(r.Found, Found{Name: e.Name, Step: n.step, Epoch: n.epoch, Entries: []string{e.Name},
			Metrics: n.metrics, dir: e.Kind == KindDir})
	}
	for i := range r.Found {
		if len(r.Found[i].Entries) > 1 {
			r.Found[i].dir = false
			sort.Strings(r.Found[i].Entries)
			r.Found[i].Name = groupName(r.Found[i].Entries, r.Found[i].Step)
		}
	}
	// Entries of one epoch and step that disagree on a metric are saves the
	// pattern cannot tell apart (Keras' {batch} left out of it, say): one
	// checkpoint made of several saves is not one to delete by its number.
	for _, i := range slices.Compact(conflicts) {
		f := &r.Found[i]
		f.Uncertain = fmt.Sprintf("%s carry different metric values for one %s: the pattern does not tell these saves apart; a pattern: with the number that does settles it",
			list(f.Entries, 3), p.orderWords())
	}
	r.note("pattern %q", p.text)
	return r
}

func (p *Pattern) orderWords() string {
	if slices.Contains(p.fields, placeStep) && slices.Contains(p.fields, placeEpoch) {
		return "epoch and step"
	}
	if slices.Contains(p.fields, placeStep) {
		return "step"
	}
	return "epoch"
}

// read reads the ordering numbers and the metrics from a name. Each number
// must be whole: a * before it never takes digits of it, nor the sign,
// integer part or decimal point of a metric.
func (p *Pattern) read(name string) (patternName, bool) {
	// Most names fail on the literal prefix, without the regexp engine.
	if prefix, _ := p.re.LiteralPrefix(); !strings.HasPrefix(name, prefix) {
		return patternName{}, false
	}
	idx := p.re.FindStringSubmatchIndex(name)
	if idx == nil {
		return patternName{}, false
	}
	var n patternName
	hasStep := false
	for i, field := range p.fields {
		start, end := idx[2+2*i], idx[3+2*i]
		if start > 0 && (isDigit(name[start-1]) || field != placeStep && field != placeEpoch && name[start-1] == '.') {
			return patternName{}, false
		}
		text := name[start:end]
		switch field {
		case placeStep, placeEpoch:
			v, err := strconv.ParseInt(text, 10, 64)
			if err != nil {
				return patternName{}, false
			}
			if field == placeStep {
				n.step, hasStep = v, true
			} else {
				n.epoch = v
			}
		default:
			v, err := parseMetric(text)
			if err != nil {
				return patternName{}, false
			}
			if n.metrics == nil {
				n.metrics = Metrics{}
			}
			n.metrics[field] = v
		}
	}
	if !hasStep {
		n.step = n.epoch // an {epoch}-only pattern: the epoch is the step shown
	}
	return n, true
}
