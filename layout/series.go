package layout

import (
	"regexp"
	"strconv"
	"strings"
)

// A name's step is read from its digit runs. Not every digit run can be a
// step: one inside a decimal number (val_loss 0.41, consumed_samples 64000.0)
// or the value of a metric key (acc=98) is a measurement, a shard index
// (00001-of-00004) or a version suffix (-v1) numbers a part, and a run right
// after a step key (step=, _steps, ba, iter_) is the step for sure.

// stepKeys mark the digit run they precede as the step, strongest first.
var stepKeys = [][]string{
	{"step=", "step_", "step-", "global_step", "step", "steps_"},
	{"-ba", "ba", "iter_", "iter", "it", "updates_", "batch=", "batch_"},
	{"epoch=", "epoch_", "epoch-", "epoch", "ep"},
}

// stepKeyWords are metric keys (key=value) whose value can be a step.
var stepKeyWords = map[string]bool{"step": true, "epoch": true, "global_step": true, "batch": true, "iter": true}

// digitRun is one run of digits in a stem and what it can be.
type digitRun struct {
	start, end int
	measure    bool // decimal, metric value, shard index or version: never a step
	strength   int  // 0: no key; higher: after a stronger step key
}

var (
	shardRe = regexp.MustCompile(`[0-9]+-of-[0-9]+`)
)

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// digitRunIndex is digitRuns.FindAllStringIndex without the regexp engine:
// classify runs it on every entry of every target at every scan.
func digitRunIndex(s string) [][2]int {
	var out [][2]int
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		out = append(out, [2]int{i, j})
		i = j
	}
	return out
}

// runsOf finds the digit runs of stem and classifies them.
func runsOf(stem string) []digitRun {
	idx := digitRunIndex(stem)
	runs := make([]digitRun, 0, len(idx))
	var shards [][]int
	if strings.Contains(stem, "-of-") {
		shards = shardRe.FindAllStringIndex(stem, -1)
	}
	for _, r := range idx {
		d := digitRun{start: r[0], end: r[1]}
		before, after := stem[:r[0]], stem[r[1]:]
		switch {
		case strings.HasPrefix(after, ".") && len(after) > 1 && isDigit(after[1]):
			d.measure = true // integer part of a decimal
		case strings.HasSuffix(before, ".") && len(before) > 1 && isDigit(before[len(before)-2]):
			d.measure = true // fraction of a decimal
		case strings.HasSuffix(before, "-v") && after == "":
			d.measure = true // Lightning's -v1 version suffix
		case strings.HasSuffix(before, "="):
			key := before[:len(before)-1]
			if i := strings.LastIndexAny(key, "-_ ."); i >= 0 && !strings.HasSuffix(key, "global_step") {
				key = key[i+1:]
			}
			if !stepKeyWords[strings.ToLower(strings.TrimPrefix(key, "global_"))] {
				d.measure = true // the value of a metric such as val_loss= or acc=
			}
		}
		for _, s := range shards {
			if r[0] >= s[0] && r[1] <= s[1] {
				d.measure = true
			}
		}
		if !d.measure {
			for i, keys := range stepKeys {
				for _, k := range keys {
					if hasSuffixFold(before, k) && (len(k) > 2 || len(before) == len(k) || !isLetter(before[len(before)-len(k)-1])) {
						d.strength = max(d.strength, len(stepKeys)-i)
					}
				}
			}
			if len(after) >= 6 && strings.EqualFold(after[:6], "_steps") {
				d.strength = len(stepKeys)
			}
		}
		runs = append(runs, d)
	}
	return runs
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// keepWords mark names a framework keeps by name (best, last, final, latest)
// or writes to before renaming (tmp); such a name is never part of a series.
var keepWords = map[string]bool{"best": true, "last": true, "latest": true, "final": true, "tmp": true, "temp": true}

func hasKeepWord(stem string) bool {
	for i := 0; i < len(stem); {
		if !isLetter(stem[i]) {
			i++
			continue
		}
		j := i
		for j < len(stem) && isLetter(stem[j]) {
			j++
		}
		if j-i <= 6 {
			var w [6]byte
			for k := i; k < j; k++ {
				w[k-i] = stem[k] | 0x20 // ASCII lower case
			}
			if keepWords[string(w[:j-i])] {
				return true
			}
		}
		i = j
	}
	return false
}

// hasSuffixFold is strings.HasSuffix ignoring ASCII case, for lower-case suffix.
func hasSuffixFold(s, suffix string) bool {
	if len(s) < len(suffix) {
		return false
	}
	for i := range len(suffix) {
		c := s[len(s)-len(suffix)+i]
		if isLetter(c) {
			c |= 0x20
		}
		if c != suffix[i] {
			return false
		}
	}
	return true
}

// parsedName is a free-form name split into series key and step.
type parsedName struct {
	key  string
	step int64
	// others are the values of the other candidate runs, for the series'
	// ambiguity check; certain is set when a step key or a single candidate
	// run leaves no doubt.
	others  []int64
	certain bool
}

// parseName splits a free-form name (one of exts, longest first; "" accepts
// a name without a dot) into its series key and step.
func parseName(name string, exts []string) (parsedName, bool) {
	ext, found := "", false
	for _, e := range exts {
		if e == "*" {
			found = true // the whole name is the stem
			continue
		}
		if e == "" {
			if !strings.Contains(name, ".") {
				found = true
			}
			continue
		}
		if strings.HasSuffix(name, e) && len(name) > len(e) && len(e) > len(ext) {
			ext, found = e, true
		}
	}
	if !found {
		return parsedName{}, false
	}
	stem := strings.TrimSuffix(name, ext)
	if hasKeepWord(stem) {
		return parsedName{}, false
	}
	runs := runsOf(stem)
	stepRun, candidates := -1, 0
	for i, r := range runs {
		if r.measure {
			continue
		}
		candidates++
		if stepRun < 0 || r.strength > runs[stepRun].strength || r.strength == runs[stepRun].strength && r.strength == 0 {
			stepRun = i // the strongest key wins; without keys the last run
		}
	}
	if stepRun < 0 {
		return parsedName{}, false
	}
	s, err := strconv.ParseInt(stem[runs[stepRun].start:runs[stepRun].end], 10, 64)
	if err != nil {
		return parsedName{}, false
	}
	p := parsedName{step: s, certain: candidates == 1 || runs[stepRun].strength > 0}
	var b strings.Builder
	last := 0
	for i, r := range runs {
		b.WriteString(stem[last:r.start])
		switch {
		case i == stepRun:
			b.WriteString("{step}")
		case r.measure:
			b.WriteString("{n}")
		default:
			b.WriteString("{n}")
			v, _ := strconv.ParseInt(stem[r.start:r.end], 10, 64)
			p.others = append(p.others, v)
		}
		last = r.end
	}
	b.WriteString(stem[last:])
	b.WriteString(ext)
	p.key = b.String()
	return p, true
}

// seriesOf splits a free-form name into its series key and step.
func seriesOf(name string, exts []string) (key string, step int64, ok bool) {
	p, ok := parseName(name, exts)
	return p.key, p.step, ok
}

// timestampRe matches names that are dates or times (mmengine's
// 20241128_090000 run dirs, NeMo's 2024-05-01_12-00-00 versions): never steps.
var timestampRe = regexp.MustCompile(`(^|[^0-9])(19|20)[0-9]{2}-?[01][0-9]-?[0-3][0-9]([_T-]|$)`)

func isTimestamp(name string) bool { return timestampRe.MatchString(name) }

func submatchStep(re *regexp.Regexp, s string) (int64, bool) {
	// classify runs every layout's expressions on every entry at every scan:
	// most names fail on the literal prefix, without the regexp engine.
	if prefix, _ := re.LiteralPrefix(); !strings.HasPrefix(s, prefix) {
		return 0, false
	}
	sm := re.FindStringSubmatch(s)
	if sm == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(sm[1], 10, 64)
	return n, err == nil
}
