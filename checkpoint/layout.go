package checkpoint

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// LayoutAuto tries every built-in layout and keeps the one that recognises
// the most checkpoints.
const LayoutAuto = "auto"

// LayoutPattern is reported for targets that use a custom pattern.
const LayoutPattern = "pattern"

// layouts lists the built-in layouts in the order auto prefers them on a tie:
// the layouts with the most specific names first. Each lives in its own file
// with the framework sources its rules are written from.
var layouts = []layout{
	megatronLayout{},
	deepspeedLayout{},
	verlLayout{},
	hfLayout{},
	tensorflowLayout{},
	dcpLayout{},
	orbaxLayout{},
	lightningLayout{},
	torchLayout{},
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

// layout recognises the checkpoints one framework family writes into a
// directory, from names alone; what needs a look inside a checkpoint
// directory is settled after sizing (see match.settle).
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
	// why says why it is incomplete, where a marker, a tracker or its
	// siblings tell.
	why    string
	pinned string
	// torn and suspect say what the checkpoint's files show (see judge).
	torn, suspect string
	// uncertain says why auto is not sure of this reading: counted, never pruned.
	uncertain string
	// dir: a single directory whose top-level contents settle looks at.
	dir bool
	// drop: settle found it is no checkpoint after all.
	drop bool
}

// match is what one layout made of a directory.
type match struct {
	layout string
	series string
	found  []found
	// evidence lists what the layout saw (state files, markers, links), for scan.
	evidence []string
	// markers are files a framework writes last into a checkpoint directory:
	// once one checkpoint has a marker, a directory without it is still being
	// written (or was never finished).
	markers []string
	// needContent: a directory is a checkpoint only if it holds weights,
	// optimizer state or checkpoint metadata (not a run or log directory).
	needContent bool
	// after runs once completeness is known: pins from the newest complete state.
	after func(d *listing, m *match, fs []found)
	// seen lists the markers, trackers and temporary forms met, for framework.
	seen []string
}

func (m *match) note(format string, args ...any) {
	m.evidence = append(m.evidence, fmt.Sprintf(format, args...))
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
		var all []match
		for _, l := range layouts {
			c := l.match(d)
			all = append(all, c)
			if len(c.found) > len(m.found) {
				m = c
			}
		}
		if len(m.found) > 0 {
			disagreements(&m, all)
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
	if len(m.found) > 0 {
		m.note("%d entries named %s", len(m.found), m.series)
	}
	markUnfinished(d, &m)
	readTrackers(d, &m)
	pinLinked(d, &m)
	sort.Slice(m.found, func(i, j int) bool {
		if m.found[i].step != m.found[j].step {
			return m.found[i].step < m.found[j].step
		}
		return m.found[i].name < m.found[j].name
	})
	return m, nil
}

// disagreements marks the chosen reading uncertain where another layout
// reads the same entry with another step, or reads a comparable number of
// other entries as checkpoints: auto cannot tell which the operator means.
func disagreements(m *match, all []match) {
	steps := map[string]int64{}
	for _, f := range m.found {
		for _, e := range f.entries {
			steps[e] = f.step
		}
	}
	for _, o := range all {
		if o.layout == m.layout || len(o.found) == 0 {
			continue
		}
		shared := false
		for _, f := range o.found {
			for _, e := range f.entries {
				s, ok := steps[e]
				if !ok {
					continue
				}
				shared = true
				if s != f.step {
					why := fmt.Sprintf("layouts %s and %s read %s as step %d and %d; layout: or pattern: settles it", m.layout, o.layout, e, s, f.step)
					markUncertain(m, e, why)
				}
			}
		}
		if !shared && len(o.found) >= 2 && 2*len(o.found) >= len(m.found) {
			why := fmt.Sprintf("the directory also reads as %s (%d × %s); layout: %s or pattern: %q settles it",
				o.layout, len(o.found), o.series, m.layout, strings.ReplaceAll(m.series, "{n}", "*"))
			for i := range m.found {
				if m.found[i].uncertain == "" {
					m.found[i].uncertain = why
				}
			}
		}
	}
}

func markUncertain(m *match, entry, why string) {
	for i := range m.found {
		for _, e := range m.found[i].entries {
			if e == entry && m.found[i].uncertain == "" {
				m.found[i].uncertain = why
			}
		}
	}
}

// markUnfinished marks checkpoints that have a NeMo/Megatron style
// "<name>-unfinished" marker beside them as incomplete (NeMo
// nemo/lightning/pytorch/callbacks/model_checkpoint.py: the marker is
// created before a save and removed after every rank finished).
func markUnfinished(d *listing, m *match) {
	if !d.anySuffix("-unfinished") {
		return
	}
	for i := range m.found {
		stem := m.found[i].name
		if ext := path.Ext(stem); ext == ".ckpt" || ext == ".nemo" {
			stem = strings.TrimSuffix(stem, ext)
		}
		if d.has(m.found[i].name+"-unfinished") || d.has(stem+"-unfinished") {
			m.seen = append(m.seen, "-unfinished")
			m.found[i].incomplete = true
			m.note("%s-unfinished marker: %s is being written", stem, m.found[i].name)
		}
	}
}

// pinLinked pins a checkpoint that a symlink beside it points to: Lightning's
// last.ckpt (save_last="link"), Composer's latest-rank0.pt, OLMo's latest and
// latest-unsharded, mmcv's latest.pth, NeMo 2's -last link all name the
// checkpoint to resume from.
func pinLinked(d *listing, m *match) {
	if !d.anyKind(kindSymlink) {
		return
	}
	owner := map[string]int{}
	for i, f := range m.found {
		for _, e := range f.entries {
			owner[e] = i
		}
	}
	for _, e := range d.entries {
		if e.kind != kindSymlink {
			continue
		}
		dest, err := d.readlink(e.name)
		if err != nil {
			continue
		}
		dest = strings.TrimSuffix(strings.TrimPrefix(dest, "./"), "/")
		if strings.Contains(dest, "/") {
			continue
		}
		if i, ok := owner[dest]; ok && dest != e.name {
			m.found[i].pinned = "symlink " + e.name
			m.note("symlink %s -> %s", e.name, dest)
		}
	}
}

func pin(fs []found, name, why string) bool {
	ok := false
	for i := range fs {
		if fs[i].name == name || len(fs[i].entries) > 1 && contains(fs[i].entries, name) {
			fs[i].pinned = why
			ok = true
		}
	}
	return ok
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// trackerCut pins the checkpoint a tracker file names and marks every newer
// one incomplete: the framework writes the tracker only after the save.
func trackerCut(m *match, step int64, name, why string) {
	for i := range m.found {
		switch {
		case m.found[i].step > step:
			if !m.found[i].incomplete {
				m.found[i].incomplete = true
				m.found[i].why = fmt.Sprintf("newer than %s, which the tracker %s names as the latest finished save", name, why)
			}
		case m.found[i].name == name || m.found[i].step == step:
			m.found[i].pinned = why
		}
	}
	m.note("%s names %s; newer saves are in progress", why, name)
	m.seen = append(m.seen, why)
}

// trackerFiles are files beside the checkpoints that name the newest
// finished one, written only after its save (in place, so one caught empty
// or half written says nothing): nanotron's latest.txt (a step;
// src/nanotron/serialize/main.py), Megatron-LM's and verl's
// latest_checkpointed_iteration.txt (an iteration), DeepSpeed's latest and
// latest_universal (a tag; deepspeed/runtime/engine.py). A layout that reads
// one itself has its own rules for it.
var trackerFiles = []string{"latest.txt", "latest_checkpointed_iteration.txt", "latest", "latest_universal"}

// readTrackers applies the tracker files no layout read: where one names a
// checkpoint of the match (by step or by name), that checkpoint is pinned
// and every newer one is in progress or was cut short.
func readTrackers(d *listing, m *match) {
	if len(m.found) == 0 {
		return
	}
	for _, tr := range trackerFiles {
		if slices.Contains(m.seen, tr) || !d.has(tr) {
			continue
		}
		data, _, err := d.readSmall(tr)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(data))
		if v == "" || strings.ContainsAny(v, "\n/") {
			continue
		}
		n, numErr := strconv.ParseInt(v, 10, 64)
		for _, f := range m.found {
			if f.name == v || numErr == nil && f.step == n {
				trackerCut(m, f.step, f.name, tr)
				break
			}
		}
	}
}

// settle applies what the checkpoint directories' contents say, once they
// are known: facts[i] describes fs[i] when known[i].
func (m *match) settle(d *listing, fs []found, facts []dirFacts, known []bool) {
	if m.needContent {
		for i := range fs {
			switch {
			case !known[i] || facts[i].content:
			case facts[i].empty:
				fs[i].incomplete = true // a save that has only just begun
				m.note("%s is empty: being written", fs[i].name)
			default:
				fs[i].drop = true // a run or log directory, not a checkpoint
				m.note("%s holds no weights or checkpoint metadata: not a checkpoint", fs[i].name)
			}
		}
	}
	// A marker counts only once an older sibling has it: a framework that
	// began writing one in a later version never makes the saves before
	// that look unfinished.
	order := byStep(fs)
	for _, mk := range m.markers {
		bit := factBit(mk)
		var first *found // the oldest checkpoint that has the marker
		for _, i := range order {
			switch {
			case !known[i] || fs[i].drop:
			case facts[i].has&bit != 0:
				if first == nil {
					first = &fs[i]
					m.seen = append(m.seen, mk)
				}
			case first != nil && !fs[i].incomplete:
				fs[i].incomplete = true
				fs[i].why = fmt.Sprintf("has no %s yet (%s has): being written, or cut short", mk, first.name)
				m.note("%s has no %s yet: being written", fs[i].name, mk)
			}
		}
	}
	siblings(m, fs, facts, known, order)
	for i := range fs {
		if known[i] && facts[i].has&factBit("PINNED") != 0 {
			fs[i].pinned = "PINNED file"
		}
	}
	if m.after != nil {
		m.after(d, m, fs)
	}
}
