package layout

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Unrecognised is the layout the general series rule reports.
const Unrecognised = "unrecognised"

// unrecognisedLayout is the general series rule, for the training
// frameworks no rule here names (there are hundreds). Where no other layout
// recognises anything, entries whose names are equal once one number is
// replaced by {step} form a candidate series (two numbers, an epoch and a
// step, where the names say so or nothing else explains them); it counts
// when at least minSeries members hold model content: files with a
// checkpoint-like extension, or directories holding such files.
//
// It is a guess from names alone, so its checkpoints are counted (the
// dashboard shows the disk filling) but never pruned (Found.Unrecognised),
// and it suggests the pattern: that reads exactly the same checkpoints, so
// that the operator can make them prunable by configuring it. Series with
// the same steps (a model file and its optimizer file) form one checkpoint
// per step, as a framework's multi-file saves do; series it cannot choose
// between are listed, and none is counted.
type unrecognisedLayout struct{}

func init() { register(unrecognisedLayout{}, rankLast) }

func (unrecognisedLayout) Name() string { return Unrecognised }

// minSeries is how many members a candidate series needs: two numbered
// files are too often something else (two exports, a train and a test
// split).
const minSeries = 3

// maxListedDirs bounds the directories the rule lists in one reading.
const maxListedDirs = 4096

// modelExts are extensions of files that hold weights or training state,
// as savers no layout names write them: PyTorch (.pt, .pth, .bin), Lightning
// (.ckpt), safetensors, Keras and HDF5 (.keras, .h5, .hdf5), AllenNLP
// (.th), MXNet (.params), PaddlePaddle (.pdparams, .pdopt), NumPy and JAX
// (.npz, .msgpack), pickles (.pkl, .pickle), Darknet (.weights), Caffe
// (.caffemodel, .solverstate), torch.distributed.checkpoint (.distcp).
var modelExts = []string{
	".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".keras", ".h5", ".hdf5", ".th", ".params",
	".pdparams", ".pdopt", ".npz", ".msgpack", ".pkl", ".pickle", ".weights", ".caffemodel", ".solverstate", ".distcp",
}

// What training writes beside its checkpoints, numbered like them, never
// counts, whatever its extension:
var (
	// TensorBoard event files (events.out.tfevents.<unix time>.<host>...):
	// summaries appended to all run long, numbered by when they were opened.
	eventFilePrefix = "events.out.tfevents."
	// Extensions of logs (train_0001.log, slurm-42.out), images and media a
	// trainer samples (sample_0001.png), configs and metadata
	// (config_1.yaml), dataset shards and records (webdataset's
	// shard-00001-of-00010.tar, TFRecord, Arrow, Parquet, JSON Lines, CSV)
	// and code: none holds weights. They are not in modelExts either; they
	// are named here so that adding an extension there never lets them in.
	notModelExts = []string{
		".log", ".out", ".err", ".txt", ".md",
		".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".svg", ".tif", ".tiff", ".mp4", ".avi", ".webm", ".wav", ".mp3", ".flac",
		".yaml", ".yml", ".json", ".toml", ".ini", ".cfg", ".conf",
		".tar", ".tar.gz", ".tgz", ".zip", ".tfrecord", ".tfrecords", ".arrow", ".parquet", ".jsonl", ".csv", ".tsv", ".idx", ".rec", ".lmdb", ".mds",
		".py", ".sh", ".ipynb",
	}
	// Words that say a file of a checkpoint-like extension holds data, not
	// a model: a dataset's shards (shard_0001.npz; nanoGPT's train.bin is
	// tokens), samples, embeddings or predictions saved per step, metrics
	// and logs. Whole words only (train_state_100.pkl is training state).
	dataWords = map[string]bool{
		"data": true, "dataset": true, "datasets": true, "shard": true, "shards": true, "split": true, "tokens": true,
		"sample": true, "samples": true, "image": true, "images": true, "img": true, "frame": true, "frames": true,
		"video": true, "audio": true, "features": true, "embeddings": true, "preds": true, "predictions": true,
		"outputs": true, "rollout": true, "rollouts": true, "trajectory": true, "trajectories": true,
		"metrics": true, "results": true, "events": true, "log": true, "logs": true, "cache": true,
	}
)

// Words before a number that say what it is: an epoch, a step, or a part
// of one save (a rank's or a shard's file), which only groups files.
var (
	epochWords = map[string]bool{"e": true, "ep": true, "epoch": true, "epochs": true}
	stepWords  = map[string]bool{"b": true, "ba": true, "batch": true, "step": true, "steps": true, "it": true, "iter": true,
		"iteration": true, "gs": true, "update": true, "updates": true}
	partWords = map[string]bool{"rank": true, "shard": true, "part": true, "worker": true, "proc": true, "process": true,
		"gpu": true, "device": true, "node": true, "host": true, "mp": true, "tp": true, "pp": true, "dp": true}
)

func (unrecognisedLayout) Match(l *Listing) *Reading {
	r := &Reading{Layout: Unrecognised}
	var shapes []*shape
	for _, e := range l.Entries() {
		if s, ok := shapeOf(e); ok {
			shapes = append(shapes, s)
		}
	}
	cands := candidates(shapes)
	if len(cands) == 0 {
		return r
	}
	judgeContent(l, cands)
	cands = slices.DeleteFunc(cands, func(c *seriesCand) bool { return c.orders() < minSeries })
	groups := choose(cands)
	switch len(groups) {
	case 0:
		return r
	case 1:
		if readSeries(l, r, groups[0]) {
			return r
		}
	}
	// Several series, or one no pattern reads alike: none is counted.
	var listed []string
	for _, g := range groups {
		for _, c := range g {
			p := c.key(true)
			r.Candidates = append(r.Candidates, p)
			listed = append(listed, fmt.Sprintf("%s (%d entries)", p, len(c.members)))
		}
	}
	r.note("no layout's rule names these entries, and they read as more than one series: %s; none counted, a pattern: settles which", strings.Join(listed, ", "))
	return r
}

// numKind says what a number in a name can be.
type numKind uint8

const (
	numStep numKind = iota // a step, or the epoch beside one
	numTime                // a date or a time: orders, is never a step
	numAny                 // a part index, version or measurement: any value
)

// number is one number in a name's stem.
type number struct {
	start, end int
	kind       numKind
	value      int64
	// dateEnd and timeStart split a date and a time of day written as two
	// runs (20240101-120000); both 0 for one run.
	dateEnd, timeStart int
	// epoch, step: the word before it (or _steps after it) names it so.
	epoch, step bool
}

// shape is an entry's name split into text and numbers.
type shape struct {
	e         Entry
	stem, ext string
	nums      []number
}

// shapeOf splits an entry the rule may count, or says it never counts.
func shapeOf(e Entry) (*shape, bool) {
	name := e.Name
	if strings.HasPrefix(name, ".") || strings.ContainsAny(name, "*{}/") || strings.HasPrefix(name, eventFilePrefix) {
		return nil, false
	}
	s := &shape{e: e, stem: name}
	switch e.Kind {
	case KindFile:
		if !modelFile(name) {
			return nil, false
		}
		s.ext = modelExt(name)
		s.stem = strings.TrimSuffix(name, s.ext)
	case KindDir:
		if hasDataWord(name) {
			return nil, false
		}
	default:
		return nil, false // a symlink pins what it points to (pinLinked)
	}
	if s.stem == "" || hasKeepWord(s.stem) {
		return nil, false
	}
	s.nums = numbersOf(s.stem)
	return s, len(s.nums) > 0
}

// modelExt is the checkpoint-like extension name ends in, or "".
func modelExt(name string) string {
	lower := strings.ToLower(name)
	for _, x := range modelExts {
		if strings.HasSuffix(lower, x) && len(name) > len(x) {
			return name[len(name)-len(x):]
		}
	}
	return ""
}

// modelFile reports whether a file called name holds model content by its
// name: a checkpoint-like extension, none of the exclusions.
func modelFile(name string) bool {
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, eventFilePrefix) {
		return false
	}
	for _, x := range notModelExts {
		if strings.HasSuffix(lower, x) {
			return false
		}
	}
	x := modelExt(name)
	return x != "" && !hasDataWord(strings.TrimSuffix(name, x))
}

func hasDataWord(stem string) bool {
	for _, w := range words(stem) {
		if dataWords[w] {
			return true
		}
	}
	return false
}

// words are the runs of letters of s, in lower case.
func words(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		if !isLetter(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isLetter(s[j]) {
			j++
		}
		out = append(out, strings.ToLower(s[i:j]))
		i = j
	}
	return out
}

// wordBefore is the run of letters right before position i of s, in lower
// case.
func wordBefore(s string, i int) string {
	j := i
	for j > 0 && isLetter(s[j-1]) {
		j--
	}
	return strings.ToLower(s[j:i])
}

// numbersOf finds the numbers of a stem and what each can be.
func numbersOf(stem string) []number {
	runs := runsOf(stem)
	var out []number
	for i := 0; i < len(runs); i++ {
		r := runs[i]
		digits := stem[r.start:r.end]
		n := number{start: r.start, end: r.end, kind: numAny}
		if r.measure || partWords[wordBefore(stem, r.start)] {
			out = append(out, n) // a decimal, a metric's value, a shard index, a rank
			continue
		}
		if k := separatedDate(stem, runs[i:]); k > 0 {
			n.end = runs[i+k-1].end
			out = append(out, n) // 2024-01-01_12-00-00: see timeRun
			i += k - 1
			continue
		}
		if i+1 < len(runs) && !runs[i+1].measure && runs[i+1].start == r.end+1 && strings.IndexByte("-_T.", stem[r.end]) >= 0 {
			if t, ok := dateTime(digits, stem[runs[i+1].start:runs[i+1].end]); ok {
				out = append(out, number{start: r.start, end: runs[i+1].end, kind: numTime, value: t, dateEnd: r.end, timeStart: runs[i+1].start})
				i++
				continue
			}
		}
		if t, ok := timeRun(digits); ok {
			n.kind, n.value = numTime, t
			out = append(out, n)
			continue
		}
		v, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			out = append(out, n) // too long for a step: an id
			continue
		}
		w := wordBefore(stem, r.start)
		n.kind, n.value = numStep, v
		n.epoch = epochWords[w]
		n.step = stepWords[w] || hasPrefixFold(stem[r.end:], "_steps")
		out = append(out, n)
	}
	return out
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// A time in a name orders saves as well as a step does, but is no step:
// dates and times of day (20240101, 20240101120000, 20240101-120000,
// 20240101_1200) read as YYYYMMDDHHMMSS, and unix times in seconds or
// milliseconds between 2001 and 2100 as they are. Dates written with
// separators (2024-01-01_12-00-00) are left out: no pattern can name their
// six numbers, and they are what run directories (Hydra, NeMo) are called.
const (
	unixFrom, unixTo = 1_000_000_000, 4_102_444_800 // 2001-09-09, 2100-01-01
)

// separatedDate says how many of runs, from the first, make a date written
// with separators (2024-01-01) and the time of day after it (12-00-00,
// 12:00), or 0.
func separatedDate(stem string, runs []digitRun) int {
	sep := func(a, b digitRun) bool { return b.start == a.end+1 && strings.IndexByte("-_.:T ", stem[a.end]) >= 0 }
	width := func(r digitRun) int { return r.end - r.start }
	if len(runs) < 3 || width(runs[0]) != 4 || width(runs[1]) != 2 || width(runs[2]) != 2 || !sep(runs[0], runs[1]) || !sep(runs[1], runs[2]) ||
		!validDate(stem[runs[0].start:runs[0].end]+stem[runs[1].start:runs[1].end]+stem[runs[2].start:runs[2].end]) {
		return 0
	}
	k := 3
	for k < len(runs) && k < 6 && width(runs[k]) == 2 && sep(runs[k-1], runs[k]) {
		k++
	}
	return k
}

// timeRun reads one run of digits as a time.
func timeRun(d string) (int64, bool) {
	v, err := strconv.ParseInt(d, 10, 64)
	if err != nil {
		return 0, false
	}
	switch len(d) {
	case 8:
		return v * 1_000_000, validDate(d)
	case 12:
		return v * 100, validDate(d[:8]) && validClock(d[8:]+"00")
	case 14:
		return v, validDate(d[:8]) && validClock(d[8:])
	case 10:
		return v, v >= unixFrom && v < unixTo
	case 13:
		return v, v >= unixFrom*1000 && v < unixTo*1000
	}
	return 0, false
}

// dateTime reads a date and a time of day written as two runs.
func dateTime(date, clock string) (int64, bool) {
	if len(clock) == 4 {
		clock += "00"
	}
	if len(date) != 8 || len(clock) != 6 || !validDate(date) || !validClock(clock) {
		return 0, false
	}
	v, err := strconv.ParseInt(date+clock, 10, 64)
	return v, err == nil
}

func validDate(d string) bool {
	y, _ := strconv.Atoi(d[:4])
	m, _ := strconv.Atoi(d[4:6])
	day, _ := strconv.Atoi(d[6:8])
	return y >= 1970 && y < 2100 && m >= 1 && m <= 12 && day >= 1 && day <= 31
}

func validClock(c string) bool {
	h, _ := strconv.Atoi(c[:2])
	m, _ := strconv.Atoi(c[2:4])
	s, _ := strconv.Atoi(c[4:6])
	return h < 24 && m < 60 && s < 60
}

// pick says which numbers of a shape vary in a series: the step (or the
// time) and, for a series ordered by two numbers, the epoch (-1: none).
type pick struct{ step, epoch int }

// order is where a member stands in its series.
type order struct{ epoch, step int64 }

// key renders a shape with the picked numbers as placeholders, the other
// numbers that may be steps as they are, and times and parts as *. As a
// series name a time is {time}; as a pattern it is {step}, or {epoch} and
// {step} for a date and a time of day.
func (s *shape) key(p pick, pattern bool) string {
	var b strings.Builder
	last := 0
	for i, n := range s.nums {
		b.WriteString(s.stem[last:n.start])
		switch {
		case i == p.step && n.kind == numTime && !pattern:
			b.WriteString("{time}")
		case i == p.step && n.kind == numTime && n.timeStart > 0:
			b.WriteString("{epoch}" + s.stem[n.dateEnd:n.timeStart] + "{step}")
		case i == p.step:
			b.WriteString("{step}")
		case i == p.epoch:
			b.WriteString("{epoch}")
		case n.kind == numStep:
			b.WriteString(s.stem[n.start:n.end])
		default:
			b.WriteString("*")
		}
		last = n.end
	}
	b.WriteString(s.stem[last:])
	b.WriteString(s.ext)
	return b.String()
}

func (s *shape) order(p pick) order {
	o := order{step: s.nums[p.step].value}
	if p.epoch >= 0 {
		o.epoch = s.nums[p.epoch].value
	}
	return o
}

// seriesCand is a candidate series: the entries that read alike under one pick.
type seriesCand struct {
	pick    pick // as the members' shapes number it
	keyed   bool // an epoch word and a step word name the pair
	time    bool // ordered by a time
	members []*seriesMember
}

type seriesMember struct {
	s     *shape
	o     order
	empty bool // an empty directory: a save that has only just begun
}

func (c *seriesCand) key(pattern bool) string { return c.members[0].s.key(c.pick, pattern) }

// orders counts the distinct places of the members that hold content.
func (c *seriesCand) orders() int {
	seen := map[order]bool{}
	for _, m := range c.members {
		if !m.empty {
			seen[m.o] = true
		}
	}
	return len(seen)
}

func (c *seriesCand) names() map[string]bool {
	out := make(map[string]bool, len(c.members))
	for _, m := range c.members {
		out[m.s.e.Name] = true
	}
	return out
}

// candidates groups the shapes by every pick of one number, or of two
// numbers that may be steps, and keeps the groups with at least minSeries
// places: the names equal once those numbers are replaced.
func candidates(shapes []*shape) []*seriesCand {
	byKey := map[string]*seriesCand{}
	var keys []string
	add := func(s *shape, p pick, keyed bool) {
		k := s.key(p, false)
		c := byKey[k]
		if c == nil {
			c = &seriesCand{pick: p, keyed: keyed, time: s.nums[p.step].kind == numTime}
			byKey[k] = c
			keys = append(keys, k)
		}
		c.members = append(c.members, &seriesMember{s: s, o: s.order(p)})
	}
	for _, s := range shapes {
		for i, n := range s.nums {
			if n.kind == numAny {
				continue
			}
			add(s, pick{step: i, epoch: -1}, false)
			if n.kind != numStep {
				continue
			}
			for j := i + 1; j < len(s.nums); j++ {
				if s.nums[j].kind != numStep {
					continue
				}
				ep, st := i, j
				if s.nums[j].epoch && !s.nums[i].epoch || s.nums[i].step && !s.nums[j].step {
					ep, st = j, i
				}
				add(s, pick{step: st, epoch: ep}, s.nums[ep].epoch && s.nums[st].step)
			}
		}
	}
	var out []*seriesCand
	for _, k := range keys {
		c := byKey[k]
		if c.orders() < minSeries {
			continue
		}
		if c.pick.epoch >= 0 && (distinct(c, func(o order) int64 { return o.epoch }) < 2 || distinct(c, func(o order) int64 { return o.step }) < 2) {
			continue // one of the two never changes: a series of the other
		}
		out = append(out, c)
	}
	return out
}

func distinct(c *seriesCand, f func(order) int64) int {
	seen := map[int64]bool{}
	for _, m := range c.members {
		seen[f(m.o)] = true
	}
	return len(seen)
}

// judgeContent lists the directories among the candidates' members and
// drops those that hold no model file; an empty one stays, as a save that
// has only just begun. Files are members by their names already.
func judgeContent(l *Listing, cands []*seriesCand) {
	content := map[string]int8{} // 1 holds a model file, 0 empty, -1 neither or unread
	listed := 0
	judge := func(name string) int8 {
		if v, ok := content[name]; ok {
			return v
		}
		v := int8(-1)
		if listed < maxListedDirs {
			listed++
			if es, err := l.dir.List(name); err == nil {
				v = holdsModel(es)
			}
		}
		content[name] = v
		return v
	}
	for _, c := range cands {
		c.members = slices.DeleteFunc(c.members, func(m *seriesMember) bool {
			if m.s.e.Kind != KindDir {
				return false
			}
			v := judge(m.s.e.Name)
			m.empty = v == 0
			return v < 0
		})
	}
}

// holdsModel says whether a directory's top level holds a model file (1),
// nothing (0) or other things only (-1: a run, log or data directory).
func holdsModel(es []Entry) int8 {
	if len(es) == 0 {
		return 0
	}
	for _, e := range es {
		if e.Kind == KindFile && modelFile(e.Name) {
			return 1
		}
	}
	return -1
}

// choose decides between the candidate series: a pair of numbers named
// epoch and step, or one nothing else explains, stands for the series of
// one number it holds; series with the same places and no entry in common
// group into one (a model file and its optimizer file per step). It
// returns the groups left: one is the series, more are ambiguous.
func choose(cands []*seriesCand) [][]*seriesCand {
	within := func(a, b *seriesCand) bool { // every member of a is one of b
		names := b.names()
		for _, m := range a.members {
			if !names[m.s.e.Name] {
				return false
			}
		}
		return true
	}
	var singles, pairs []*seriesCand
	for _, c := range cands {
		if c.pick.epoch >= 0 {
			pairs = append(pairs, c)
		} else {
			singles = append(singles, c)
		}
	}
	pairs = slices.DeleteFunc(pairs, func(p *seriesCand) bool {
		return !p.keyed && slices.ContainsFunc(singles, func(s *seriesCand) bool { return within(s, p) })
	})
	singles = slices.DeleteFunc(singles, func(s *seriesCand) bool {
		return slices.ContainsFunc(pairs, func(p *seriesCand) bool { return within(s, p) })
	})
	var groups [][]*seriesCand
next:
	for _, c := range append(singles, pairs...) {
		for i, g := range groups {
			if companions(g[0], c) && !slices.ContainsFunc(g, func(o *seriesCand) bool { return overlap(o, c) }) {
				groups[i] = append(g, c)
				continue next
			}
		}
		groups = append(groups, []*seriesCand{c})
	}
	return groups
}

// companions: two series with exactly the same places, ordered alike.
func companions(a, b *seriesCand) bool {
	if (a.pick.epoch >= 0) != (b.pick.epoch >= 0) || a.time != b.time {
		return false
	}
	places := func(c *seriesCand) []order {
		var out []order
		for _, m := range c.members {
			out = append(out, m.o)
		}
		slices.SortFunc(out, comparePlaces)
		return slices.Compact(out)
	}
	return slices.Equal(places(a), places(b))
}

func overlap(a, b *seriesCand) bool {
	names := a.names()
	return slices.ContainsFunc(b.members, func(m *seriesMember) bool { return names[m.s.e.Name] })
}

func comparePlaces(a, b order) int {
	return cmp.Or(cmp.Compare(a.epoch, b.epoch), cmp.Compare(a.step, b.step))
}

// readSeries makes the checkpoints of one group of series, one per place,
// if a pattern reads the directory alike; it reports whether one does.
func readSeries(l *Listing, r *Reading, g []*seriesCand) bool {
	var ms []*seriesMember
	var series, patterns []string
	for _, c := range g {
		ms = append(ms, c.members...)
		series = append(series, c.key(false))
		patterns = append(patterns, c.key(true))
	}
	slices.SortFunc(ms, func(a, b *seriesMember) int { return strings.Compare(a.s.e.Name, b.s.e.Name) })
	at := map[order]int{}
	for _, m := range ms {
		if i, ok := at[m.o]; ok {
			f := &r.Found[i]
			f.Entries = append(f.Entries, m.s.e.Name)
			if m.empty && !f.Incomplete {
				f.Incomplete, f.Why = true, m.s.e.Name+" is empty: a save that has only just begun"
			}
			continue
		}
		at[m.o] = len(r.Found)
		f := Found{Name: m.s.e.Name, Step: m.o.step, Epoch: m.o.epoch, Entries: []string{m.s.e.Name}, dir: m.s.e.Kind == KindDir,
			Unrecognised: true, NoStep: g[0].time}
		if m.empty {
			f.Incomplete, f.Why = true, "empty: a save that has only just begun"
		}
		r.Found = append(r.Found, f)
	}
	for i := range r.Found {
		if f := &r.Found[i]; len(f.Entries) > 1 {
			f.dir = false
			f.Name = groupName(f.Entries, f.Step)
		}
	}
	suggested := ""
	for _, p := range suggestions(patterns) {
		if reproduces(l, p, r.Found) {
			suggested = p
			break
		}
	}
	if suggested == "" {
		r.Found = nil
		return false
	}
	r.Series, r.Suggested = strings.Join(series, " + "), suggested
	why := fmt.Sprintf("no rule for this layout: names read as the series %s; pattern: %q makes them prunable", r.Series, suggested)
	for i := range r.Found {
		r.Found[i].Uncertain = why
	}
	r.note("no layout's rule names these entries: read by the general series rule, counted, never pruned")
	if g[0].time {
		r.note("the names carry a time, not a step: it orders the checkpoints")
	}
	return true
}

// suggestions are the patterns that may read a group of series alike, most
// specific first: the series' own pattern, or for companions their shared
// beginning and end around a *.
func suggestions(patterns []string) []string {
	if len(patterns) == 1 {
		return patterns
	}
	prefix, suffix := patterns[0], patterns[0]
	for _, p := range patterns[1:] {
		for !strings.HasPrefix(p, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
		for !strings.HasSuffix(p, suffix) {
			suffix = suffix[1:]
		}
	}
	// A placeholder is never cut in two.
	if i := strings.LastIndexByte(prefix, '{'); i >= 0 && !strings.Contains(prefix[i:], "}") {
		prefix = prefix[:i]
	}
	if i := strings.IndexByte(suffix, '}'); i >= 0 && !strings.Contains(suffix[:i], "{") {
		suffix = suffix[i+1:]
	}
	shortest := slices.MinFunc(patterns, func(a, b string) int { return len(a) - len(b) })
	if len(prefix)+len(suffix) > len(shortest) {
		suffix = suffix[len(prefix)+len(suffix)-len(shortest):]
	}
	return []string{prefix + "*" + suffix}
}

// reproduces reports whether the pattern p reads l into the same
// checkpoints as want, in the same order.
func reproduces(l *Listing, p string, want []Found) bool {
	pat, err := CompilePattern(p)
	if err != nil {
		return false
	}
	got := pat.Match(l).Found
	if len(got) != len(want) {
		return false
	}
	got, want = slices.Clone(got), slices.Clone(want)
	sortFound(got)
	sortFound(want)
	for i := range got {
		a, b := slices.Clone(got[i].Entries), slices.Clone(want[i].Entries)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			return false
		}
	}
	return true
}
