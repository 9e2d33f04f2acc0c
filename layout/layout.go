package layout

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Auto tries every registered layout and keeps the one that recognises the
// most checkpoints.
const Auto = "auto"

// PatternLayout is the layout reported for a custom pattern.
const PatternLayout = "pattern"

// Layout recognises the checkpoints one framework family writes into a
// directory, from its top-level names and the few state files it reads.
// What needs a look inside a checkpoint directory (the files its framework
// writes last) is settled afterwards, from the Reading's markers.
type Layout interface {
	// Name is the layout's name in the configuration (layout: hf).
	Name() string
	// Match reads the directory's checkpoints as this layout names them.
	Match(l *Listing) *Reading
}

// registered are the built-in layouts, appended by each family file's init
// and read-only afterwards, ordered by rank: auto prefers the lower rank on
// a tie (the layouts with the most specific names first).
var registered []registration

// rankLast is the rank of the general series rule (unrecognised.go), last
// in auto: a layout ranked here reads a directory only where no other
// layout recognises anything, so what it reads never changes what a
// framework's rule decides; it cannot be chosen by name (a pattern: is what
// settles its readings).
const rankLast = 1000

type registration struct {
	layout Layout
	rank   int
}

func register(l Layout, rank int) {
	registered = append(registered, registration{l, rank})
	slices.SortStableFunc(registered, func(a, b registration) int { return a.rank - b.rank })
}

// Names returns the names accepted for a target's layout: Auto, then every
// built-in layout.
func Names() []string {
	names := []string{Auto}
	for _, r := range registered {
		if r.rank < rankLast {
			names = append(names, r.layout.Name())
		}
	}
	return names
}

// Found is one checkpoint as a reading found it.
type Found struct {
	// Name is the entry name, or a group's shared prefix.
	Name string
	Step int64
	// Epoch orders checkpoints before Step where a pattern's names carry
	// {epoch} (0 elsewhere): a reading's checkpoints are in (Epoch, Step)
	// order, and only Step is shown.
	Epoch int64
	// Metrics are the evaluation metrics the checkpoint carries (nil: none
	// read).
	Metrics Metrics
	// Entries are the top-level names the checkpoint is made of.
	Entries []string
	// Incomplete: being written, or left unfinished; Why says how it is
	// known, where a marker, a tracker, its siblings or its files tell.
	Incomplete bool
	Why        string
	// Pinned says which framework state keeps it.
	Pinned string
	// Uncertain says why the reading is not sure of it and which setting
	// settles it: counted, never pruned.
	Uncertain string
	// Unrecognised: no layout's rule names it; the general series rule
	// counted it (Uncertain says which pattern: makes it prunable).
	Unrecognised bool
	// NoStep: the names carry a time, not a step (20240101-120000, unix
	// seconds); Step holds that time as a number, which orders the
	// checkpoints but is never shown as a step.
	NoStep bool
	// Torn says why the save is known to be cut short; Suspect why it may be.
	Torn, Suspect string

	// dir: a single directory whose top level settle looks at.
	dir bool
	// drop: settle found it is no checkpoint after all.
	drop bool
}

// Reading is what a layout made of a directory.
type Reading struct {
	Layout string
	// Series is the name pattern chosen ("" when nothing matched).
	Series string
	// Found are the checkpoints, oldest first (see compareOrder), then by
	// name.
	Found []Found
	// Evidence says what the reading saw: state files, markers, links.
	Evidence []string
	// Framework names the training framework the names, trackers and
	// markers point to, a hint for the operator ("" when nothing matched).
	Framework string
	// Suggested is the pattern: that reads the same checkpoints as a
	// configured pattern, so prunable ones, where the general series rule
	// counted them ("" otherwise).
	Suggested string
	// Candidates are the patterns of the series the general rule found but
	// could not choose between; it counted none of them.
	Candidates []string

	// markers are files a framework writes last into a checkpoint
	// directory: once an older checkpoint has one, a directory without it is
	// being written or was never finished.
	markers []string
	// needContent: a directory is a checkpoint only if it holds weights,
	// optimizer state or checkpoint metadata (not a run or log directory).
	needContent bool
	// after runs once completeness is known: pins from the newest complete
	// state.
	after func(l *Listing, r *Reading)
	// framework tells the family's members apart (see Framework).
	framework func(r *Reading) string
	// seen lists the markers, trackers and temporary forms met.
	seen []string
}

func (r *Reading) note(format string, args ...any) {
	r.Evidence = append(r.Evidence, fmt.Sprintf(format, args...))
}

func (r *Reading) saw(what string) bool { return slices.Contains(r.seen, what) }

// Options say how to read a target directory.
type Options struct {
	// Layout is Auto or a built-in layout's name; Pattern, when set,
	// replaces layout detection.
	Layout, Pattern string
	// Now and MinAge: a torn file written to within MinAge of Now may still
	// be being written, and is only in progress.
	Now    time.Time
	MinAge time.Duration
}

// Read reads d's checkpoints: Classify, then Settle.
func Read(d Dir, o Options) (*Reading, error) {
	l := NewListing(d)
	r, err := Classify(l, o.Layout, o.Pattern)
	if err != nil {
		return nil, err
	}
	Settle(d, l, r, o.Now, o.MinAge)
	return r, nil
}

// Classify reads the checkpoints of l by name (and the state files the
// layouts read), with the target's layout, pattern or auto.
func Classify(l *Listing, layoutName, pattern string) (*Reading, error) {
	var r *Reading
	switch {
	case pattern != "":
		p, err := CompilePattern(pattern)
		if err != nil {
			return nil, err
		}
		r = p.Match(l)
	case layoutName == "" || layoutName == Auto:
		r = &Reading{} // no layout recognises anything: Layout ""
		var all []*Reading
		for _, reg := range registered {
			if reg.rank >= rankLast {
				continue
			}
			c := reg.layout.Match(l)
			all = append(all, c)
			if len(c.Found) > len(r.Found) {
				r = c
			}
		}
		if len(r.Found) > 0 {
			disagreements(r, all)
		} else {
			r = lastResort(l, r)
		}
	default:
		for _, reg := range registered {
			if reg.rank < rankLast && reg.layout.Name() == layoutName {
				r = reg.layout.Match(l)
			}
		}
		if r == nil {
			return nil, fmt.Errorf("unknown layout %q", layoutName)
		}
	}
	if len(r.Found) > 0 {
		r.note("%d entries named %s", len(r.Found), r.Series)
	}
	markUnfinished(l, r)
	readTrackers(l, r)
	pinLinked(l, r)
	sortFound(r.Found)
	return r, nil
}

// lastResort reads l with the layouts ranked last, where none of the others
// recognised anything: the first that finds checkpoints, or candidates it
// could not choose between, gives the reading; else none is the reading.
func lastResort(l *Listing, none *Reading) *Reading {
	for _, reg := range registered {
		if reg.rank < rankLast {
			continue
		}
		if c := reg.layout.Match(l); len(c.Found) > 0 {
			return c
		} else if len(c.Candidates) > 0 {
			none.Candidates, none.Evidence = c.Candidates, c.Evidence
			return none
		}
	}
	return none
}

// sortFound puts checkpoints in reading order: oldest first (see
// compareOrder), then by name.
func sortFound(fs []Found) {
	sort.Slice(fs, func(i, j int) bool {
		if c := compareOrder(&fs[i], &fs[j]); c != 0 {
			return c < 0
		}
		return fs[i].Name < fs[j].Name
	})
}

// compareOrder orders two checkpoints of a reading, older first: by epoch
// (a pattern's {epoch}; 0 for every other reading), then by step.
func compareOrder(a, b *Found) int {
	return cmp.Or(cmp.Compare(a.Epoch, b.Epoch), cmp.Compare(a.Step, b.Step))
}

// disagreements marks the chosen reading uncertain where another layout
// reads the same entry with another step, or reads a comparable number of
// other entries as checkpoints: auto cannot tell which the operator means.
func disagreements(r *Reading, all []*Reading) {
	steps := map[string]int64{}
	for _, f := range r.Found {
		for _, e := range f.Entries {
			steps[e] = f.Step
		}
	}
	for _, o := range all {
		if o.Layout == r.Layout || len(o.Found) == 0 {
			continue
		}
		shared := false
		for _, f := range o.Found {
			for _, e := range f.Entries {
				s, ok := steps[e]
				if !ok {
					continue
				}
				shared = true
				if s != f.Step {
					why := fmt.Sprintf("layouts %s and %s read %s as step %d and %d; layout: or pattern: settles it", r.Layout, o.Layout, e, s, f.Step)
					markUncertain(r, e, why)
				}
			}
		}
		if !shared && len(o.Found) >= 2 && 2*len(o.Found) >= len(r.Found) {
			why := fmt.Sprintf("the directory also reads as %s (%d × %s); layout: %s or pattern: %q settles it",
				o.Layout, len(o.Found), o.Series, r.Layout, strings.ReplaceAll(r.Series, "{n}", "*"))
			for i := range r.Found {
				if r.Found[i].Uncertain == "" {
					r.Found[i].Uncertain = why
				}
			}
		}
	}
}

func markUncertain(r *Reading, entry, why string) {
	for i := range r.Found {
		if slices.Contains(r.Found[i].Entries, entry) && r.Found[i].Uncertain == "" {
			r.Found[i].Uncertain = why
		}
	}
}

// markUnfinished marks checkpoints that have a NeMo/Megatron style
// "<name>-unfinished" marker beside them as incomplete (NeMo
// nemo/lightning/pytorch/callbacks/model_checkpoint.py: the marker is
// created before a save and removed after every rank finished).
func markUnfinished(l *Listing, r *Reading) {
	if !l.AnySuffix("-unfinished") {
		return
	}
	for i := range r.Found {
		stem := r.Found[i].Name
		if ext := path.Ext(stem); ext == ".ckpt" || ext == ".nemo" {
			stem = strings.TrimSuffix(stem, ext)
		}
		if l.Has(r.Found[i].Name+"-unfinished") || l.Has(stem+"-unfinished") {
			r.seen = append(r.seen, "-unfinished")
			r.Found[i].Incomplete = true
			r.Found[i].Why = "a " + stem + "-unfinished marker is beside it"
			r.note("%s-unfinished marker: %s is being written", stem, r.Found[i].Name)
		}
	}
}

// pinLinked pins a checkpoint that a symlink beside it points to: Lightning's
// last.ckpt (save_last="link"), Composer's latest-rank0.pt, OLMo's latest and
// latest-unsharded, mmcv's latest.pth, NeMo 2's -last link all name the
// checkpoint to resume from.
func pinLinked(l *Listing, r *Reading) {
	if !l.AnyKind(KindSymlink) {
		return
	}
	owner := map[string]int{}
	for i, f := range r.Found {
		for _, e := range f.Entries {
			owner[e] = i
		}
	}
	for _, e := range l.Entries() {
		if e.Kind != KindSymlink {
			continue
		}
		dest, err := l.Readlink(e.Name)
		if err != nil {
			continue
		}
		dest = strings.TrimSuffix(strings.TrimPrefix(dest, "./"), "/")
		if strings.Contains(dest, "/") {
			continue
		}
		if i, ok := owner[dest]; ok && dest != e.Name {
			r.Found[i].Pinned = "symlink " + e.Name
			r.note("symlink %s -> %s", e.Name, dest)
		}
	}
}

// pin pins the checkpoint called name, or the group with an entry called name.
func pin(fs []Found, name, why string) bool {
	ok := false
	for i := range fs {
		if fs[i].Name == name || len(fs[i].Entries) > 1 && slices.Contains(fs[i].Entries, name) {
			fs[i].Pinned = why
			ok = true
		}
	}
	return ok
}

// trackerCut pins the checkpoint a tracker file names and marks every newer
// one incomplete: the framework writes the tracker only after the save.
func trackerCut(r *Reading, step int64, name, why string) {
	cut := Found{Step: step}
	for _, f := range r.Found {
		if f.Name == name {
			cut.Epoch = f.Epoch
		}
	}
	for i := range r.Found {
		switch {
		case compareOrder(&r.Found[i], &cut) > 0:
			if !r.Found[i].Incomplete {
				r.Found[i].Incomplete = true
				r.Found[i].Why = fmt.Sprintf("newer than %s, which the tracker %s names as the latest finished save", name, why)
			}
		case r.Found[i].Name == name || compareOrder(&r.Found[i], &cut) == 0:
			r.Found[i].Pinned = why
		}
	}
	r.note("%s names %s; newer saves are in progress", why, name)
	r.seen = append(r.seen, why)
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
// checkpoint of the reading (by step or by name), that checkpoint is pinned
// and every newer one is in progress or was cut short.
func readTrackers(l *Listing, r *Reading) {
	if len(r.Found) == 0 {
		return
	}
	for _, tr := range trackerFiles {
		if r.saw(tr) || !l.Has(tr) {
			continue
		}
		data, _, err := l.ReadFile(tr)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(data))
		if v == "" || strings.ContainsAny(v, "\n/") {
			continue
		}
		n, numErr := strconv.ParseInt(v, 10, 64)
		for _, f := range r.Found {
			if f.Name == v || numErr == nil && f.Step == n {
				trackerCut(r, f.Step, f.Name, tr)
				break
			}
		}
	}
}
