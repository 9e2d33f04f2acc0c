package checkpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// LayoutAuto tries every built-in layout and keeps the one that recognises
// the most checkpoints.
const LayoutAuto = "auto"

// LayoutPattern is reported for targets that use a custom pattern.
const LayoutPattern = "pattern"

// Layouts lists the built-in layouts in the order auto prefers them on a tie:
// the layouts with the most specific names first.
var layouts = []layout{
	megatronLayout{},
	deepspeedLayout{},
	hfLayout{},
	tensorflowLayout{},
	orbaxLayout{},
	lightningLayout{},
	kerasLayout{},
}

// LayoutNames returns the names accepted for a target's layout.
func LayoutNames() []string {
	names := []string{LayoutAuto}
	for _, l := range layouts {
		names = append(names, l.name())
	}
	return names
}

// layout recognises the checkpoints one framework writes into a directory.
type layout interface {
	name() string
	match(d *listing) match
}

// found is a checkpoint as a layout recognised it, before it is sized.
type found struct {
	name       string
	step       int64
	entries    []string
	incomplete bool
	pinned     string
}

// match is what one layout made of a directory.
type match struct {
	layout string
	series string
	found  []found
}

// classify applies the target's layout (or pattern, or auto) to a listing.
func classify(d *listing, layoutName, pattern string) (match, error) {
	var m match
	switch {
	case pattern != "":
		p, err := CompilePattern(pattern)
		if err != nil {
			return match{}, err
		}
		m = p.match(d)
	case layoutName == "" || layoutName == LayoutAuto:
		for _, l := range layouts {
			c := l.match(d)
			if len(c.found) > len(m.found) {
				m = c
			}
		}
	default:
		for _, l := range layouts {
			if l.name() == layoutName {
				m = l.match(d)
			}
		}
		if m.layout == "" {
			return match{}, fmt.Errorf("unknown layout %q", layoutName)
		}
	}
	markUnfinished(d, m.found)
	sort.Slice(m.found, func(i, j int) bool {
		if m.found[i].step != m.found[j].step {
			return m.found[i].step < m.found[j].step
		}
		return m.found[i].name < m.found[j].name
	})
	return m, nil
}

// markUnfinished marks checkpoints that have a NeMo/Megatron style
// "<name>-unfinished" marker beside them as incomplete.
func markUnfinished(d *listing, fs []found) {
	for i := range fs {
		stem := fs[i].name
		if ext := path.Ext(stem); ext != "" {
			stem = strings.TrimSuffix(stem, ext)
		}
		if d.has(fs[i].name+"-unfinished") || d.has(stem+"-unfinished") {
			fs[i].incomplete = true
		}
	}
}

var digitRuns = regexp.MustCompile(`[0-9]+`)

// seriesOf splits a free-form name into its series key and step. The
// extension (one of exts, longest first) is kept, every digit run of the
// stem is replaced so that epochs and metrics may vary within a series, and
// the step is the run after "step=" if there is one, else the last run.
func seriesOf(name string, exts []string) (key string, step int64, ok bool) {
	var ext string
	for _, e := range exts {
		if strings.HasSuffix(name, e) && len(name) > len(e) && len(e) > len(ext) {
			ext = e
		}
	}
	if ext == "" {
		return "", 0, false
	}
	stem := strings.TrimSuffix(name, ext)
	runs := digitRuns.FindAllStringIndex(stem, -1)
	if len(runs) == 0 {
		return "", 0, false
	}
	stepRun := len(runs) - 1
	for i, r := range runs {
		if strings.HasSuffix(stem[:r[0]], "step=") || strings.HasSuffix(stem[:r[0]], "step_") {
			stepRun = i
		}
	}
	s, err := strconv.ParseInt(stem[runs[stepRun][0]:runs[stepRun][1]], 10, 64)
	if err != nil {
		return "", 0, false
	}
	var b strings.Builder
	last := 0
	for i, r := range runs {
		b.WriteString(stem[last:r[0]])
		if i == stepRun {
			b.WriteString("{step}")
		} else {
			b.WriteString("{n}")
		}
		last = r[1]
	}
	b.WriteString(stem[last:])
	b.WriteString(ext)
	return b.String(), s, true
}

// largestSeries groups candidates by series key and keeps the largest group;
// ties go to the series with the highest step, then the smaller key.
func largestSeries(layoutName string, cands map[string][]found) match {
	best := match{layout: layoutName}
	var bestMax int64 = -1
	keys := make([]string, 0, len(cands))
	for k := range cands {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fs := cands[k]
		var mx int64 = -1
		for _, f := range fs {
			mx = max(mx, f.step)
		}
		if len(fs) > len(best.found) || (len(fs) == len(best.found) && mx > bestMax) {
			best = match{layout: layoutName, series: k, found: fs}
			bestMax = mx
		}
	}
	return best
}

// kerasLayout: the largest series of .keras / .weights.h5 / .h5 files.
type kerasLayout struct{}

var kerasExts = []string{".keras", ".weights.h5", ".h5"}

func (kerasLayout) name() string { return "keras" }

func (kerasLayout) match(d *listing) match {
	cands := map[string][]found{}
	for _, e := range d.entries {
		if e.kind == kindDir {
			continue
		}
		key, step, ok := seriesOf(e.name, kerasExts)
		if !ok {
			continue
		}
		cands[key] = append(cands[key], found{name: e.name, step: step, entries: []string{e.name}})
	}
	return largestSeries("keras", cands)
}

// lightningLayout: the largest series of *.ckpt files (or DeepSpeed-strategy
// .ckpt directories); last*.ckpt is not a step checkpoint, but a last.ckpt
// symlink pins the checkpoint it points to.
type lightningLayout struct{}

func (lightningLayout) name() string { return "lightning" }

func (lightningLayout) match(d *listing) match {
	cands := map[string][]found{}
	for _, e := range d.entries {
		if strings.HasPrefix(e.name, "last") {
			continue
		}
		key, step, ok := seriesOf(e.name, []string{".ckpt"})
		if !ok {
			continue
		}
		cands[key] = append(cands[key], found{name: e.name, step: step, entries: []string{e.name}})
	}
	m := largestSeries("lightning", cands)
	if e, ok := d.get("last.ckpt"); ok && e.kind == kindSymlink {
		if dest, err := d.readlink("last.ckpt"); err == nil && !strings.Contains(strings.TrimPrefix(dest, "./"), "/") {
			pin(m.found, path.Base(dest), "last.ckpt")
		}
	}
	return m
}

func pin(fs []found, name, why string) {
	for i := range fs {
		if fs[i].name == name {
			fs[i].pinned = why
		}
	}
}

// hfLayout: Hugging Face transformers' checkpoint-N/ directories.
type hfLayout struct{}

var (
	hfRe    = regexp.MustCompile(`^checkpoint-([0-9]+)$`)
	hfTmpRe = regexp.MustCompile(`^tmp-checkpoint-([0-9]+)$`)
)

func (hfLayout) name() string { return "hf" }

func (hfLayout) match(d *listing) match {
	m := match{layout: "hf", series: "checkpoint-{step}"}
	for _, e := range d.entries {
		if e.kind != kindDir {
			continue
		}
		if s, ok := submatchStep(hfRe, e.name); ok {
			m.found = append(m.found, found{name: e.name, step: s, entries: []string{e.name}})
		} else if s, ok := submatchStep(hfTmpRe, e.name); ok {
			m.found = append(m.found, found{name: e.name, step: s, entries: []string{e.name}, incomplete: true})
		}
	}
	// The best checkpoint is named in trainer_state.json; the newest one
	// (in the newest checkpoint, or the output directory itself) is current.
	var newest *found
	for i := range m.found {
		if !m.found[i].incomplete && (newest == nil || m.found[i].step > newest.step) {
			newest = &m.found[i]
		}
	}
	var states []string
	if newest != nil {
		states = append(states, newest.name+"/trainer_state.json")
	}
	if d.has("trainer_state.json") {
		states = append(states, "trainer_state.json")
	}
	var bestMtime int64 = -1
	var best string
	for _, st := range states {
		data, mtime, err := d.readSmall(st)
		if err != nil || mtime <= bestMtime {
			continue
		}
		var state struct {
			Best *string `json:"best_model_checkpoint"`
		}
		if json.Unmarshal(data, &state) == nil {
			bestMtime = mtime
			best = ""
			if state.Best != nil {
				best = path.Base(*state.Best)
			}
		}
	}
	if best != "" {
		pin(m.found, best, "best_model_checkpoint")
	}
	return m
}

func submatchStep(re *regexp.Regexp, s string) (int64, bool) {
	sm := re.FindStringSubmatch(s)
	if sm == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(sm[1], 10, 64)
	return n, err == nil
}

// tensorflowLayout: {prefix}-{step}.index plus {prefix}-{step}.data-I-of-N
// shards, grouped into one checkpoint; the "checkpoint" state file pins its
// model_checkpoint_path.
type tensorflowLayout struct{}

var (
	tfRe     = regexp.MustCompile(`^(.+)-([0-9]+)\.(index|data-([0-9]+)-of-([0-9]+))$`)
	tfTempRe = regexp.MustCompile(`^(.+)-([0-9]+)(\.(index|data-[0-9]+-of-[0-9]+)\.tempstate[0-9]*|_temp.*)$`)
	tfPathRe = regexp.MustCompile(`(?m)^model_checkpoint_path:\s*"(.*)"\s*$`)
)

func (tensorflowLayout) name() string { return "tensorflow" }

func (tensorflowLayout) match(d *listing) match {
	type group struct {
		found
		index      bool
		shards     map[int]bool
		shardCount int
	}
	groups := map[string]*group{}
	prefixOf := map[string]string{}
	get := func(prefix, stepStr string) *group {
		name := prefix + "-" + stepStr
		g := groups[name]
		if g == nil {
			step, _ := strconv.ParseInt(stepStr, 10, 64)
			g = &group{found: found{name: name, step: step}, shards: map[int]bool{}}
			groups[name] = g
			prefixOf[name] = prefix
		}
		return g
	}
	for _, e := range d.entries {
		if sm := tfTempRe.FindStringSubmatch(e.name); sm != nil {
			g := get(sm[1], sm[2])
			g.entries = append(g.entries, e.name)
			g.incomplete = true
			continue
		}
		sm := tfRe.FindStringSubmatch(e.name)
		if sm == nil || e.kind == kindDir {
			continue
		}
		g := get(sm[1], sm[2])
		g.entries = append(g.entries, e.name)
		if sm[3] == "index" {
			g.index = true
		} else {
			i, _ := strconv.Atoi(sm[4])
			n, _ := strconv.Atoi(sm[5])
			g.shards[i] = true
			g.shardCount = max(g.shardCount, n)
		}
	}
	cands := map[string][]found{}
	for name, g := range groups {
		if !g.index || g.shardCount == 0 || len(g.shards) < g.shardCount {
			g.incomplete = true
		}
		sort.Strings(g.entries)
		key := prefixOf[name] + "-{step}"
		cands[key] = append(cands[key], g.found)
	}
	m := largestSeries("tensorflow", cands)
	if data, _, err := d.readSmall("checkpoint"); err == nil {
		if sm := tfPathRe.FindSubmatch(data); sm != nil {
			pin(m.found, path.Base(string(sm[1])), "checkpoint file")
		}
	}
	return m
}

// orbaxLayout: {step}/ or {prefix}_{step}/ directories; tmp directories and,
// where committed directories carry commit_success.txt, those without it are
// incomplete.
type orbaxLayout struct{}

var (
	orbaxRe    = regexp.MustCompile(`^(?:(.*)_)?([0-9]+)$`)
	orbaxTmpRe = regexp.MustCompile(`^(?:(.*)_)?([0-9]+)\.orbax-checkpoint-tmp-[0-9]+$`)
)

func (orbaxLayout) name() string { return "orbax" }

func (orbaxLayout) match(d *listing) match {
	cands := map[string][]found{}
	for _, e := range d.entries {
		if e.kind != kindDir {
			continue
		}
		re, incomplete := orbaxRe, false
		if orbaxTmpRe.MatchString(e.name) {
			re, incomplete = orbaxTmpRe, true
		}
		sm := re.FindStringSubmatch(e.name)
		if sm == nil {
			continue
		}
		step, err := strconv.ParseInt(sm[2], 10, 64)
		if err != nil {
			continue
		}
		key := "{step}"
		if sm[1] != "" {
			key = sm[1] + "_{step}"
		}
		cands[key] = append(cands[key], found{name: e.name, step: step, entries: []string{e.name}, incomplete: incomplete})
	}
	m := largestSeries("orbax", cands)
	committed := make([]bool, len(m.found))
	anyCommitted := false
	for i, f := range m.found {
		if !f.incomplete && d.exists(f.name+"/commit_success.txt") {
			committed[i], anyCommitted = true, true
		}
	}
	if anyCommitted {
		for i := range m.found {
			if !committed[i] {
				m.found[i].incomplete = true
			}
		}
	}
	return m
}

// deepspeedLayout: global_step{N}/ directories; the tag in "latest" pins its
// checkpoint and anything newer is still being written.
type deepspeedLayout struct{}

var dsRe = regexp.MustCompile(`^global_step([0-9]+)$`)

func (deepspeedLayout) name() string { return "deepspeed" }

func (deepspeedLayout) match(d *listing) match {
	m := match{layout: "deepspeed", series: "global_step{step}"}
	for _, e := range d.entries {
		if s, ok := submatchStep(dsRe, e.name); ok && e.kind == kindDir {
			m.found = append(m.found, found{name: e.name, step: s, entries: []string{e.name}})
		}
	}
	if data, _, err := d.readSmall("latest"); err == nil {
		tag := string(bytes.TrimSpace(data))
		if s, ok := submatchStep(dsRe, tag); ok {
			trackerCut(m.found, s, tag, "latest")
		} else {
			pin(m.found, tag, "latest")
		}
	}
	return m
}

// trackerCut pins the checkpoint a tracker file names and marks every newer
// one incomplete: the framework writes the tracker only after the save.
func trackerCut(fs []found, step int64, name, why string) {
	for i := range fs {
		switch {
		case fs[i].step > step:
			fs[i].incomplete = true
		case fs[i].name == name || fs[i].step == step:
			fs[i].pinned = why
		}
	}
}

// megatronLayout: iter_{step:07d}/ directories and the
// latest_checkpointed_iteration.txt tracker.
type megatronLayout struct{}

var megatronRe = regexp.MustCompile(`^iter_([0-9]+)$`)

func (megatronLayout) name() string { return "megatron" }

func (megatronLayout) match(d *listing) match {
	m := match{layout: "megatron", series: "iter_{step}"}
	for _, e := range d.entries {
		if s, ok := submatchStep(megatronRe, e.name); ok && e.kind == kindDir {
			m.found = append(m.found, found{name: e.name, step: s, entries: []string{e.name}})
		}
	}
	if data, _, err := d.readSmall("latest_checkpointed_iteration.txt"); err == nil {
		if s, err := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64); err == nil {
			trackerCut(m.found, s, fmt.Sprintf("iter_%07d", s), "latest_checkpointed_iteration.txt")
		}
	}
	return m
}

// Pattern is a custom checkpoint name pattern: {step} stands for the step
// number and * for any run of characters. Entries whose names give the same
// step form one checkpoint.
type Pattern struct {
	text string
	re   *regexp.Regexp
}

// CompilePattern parses a custom pattern such as "checkpoint_step_{step}.keras".
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
				b.WriteString(".*")
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
		s, ok := submatchStep(p.re, e.name)
		if !ok {
			continue
		}
		if i, seen := byStep[s]; seen {
			m.found[i].entries = append(m.found[i].entries, e.name)
			continue
		}
		byStep[s] = len(m.found)
		m.found = append(m.found, found{name: e.name, step: s, entries: []string{e.name}})
	}
	for i := range m.found {
		if len(m.found[i].entries) > 1 {
			sort.Strings(m.found[i].entries)
			m.found[i].name = commonPrefix(m.found[i].entries)
		}
	}
	return m
}

func commonPrefix(names []string) string {
	p := names[0]
	for _, n := range names[1:] {
		for !strings.HasPrefix(n, p) {
			p = p[:len(p)-1]
		}
	}
	return strings.TrimRight(p, "._-")
}
