package layout

import (
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// tensorflowLayout: a checkpoint is a file prefix, {prefix}-{step}.index plus
// {prefix}-{step}.data-I-of-N shards (and TF1's .meta), grouped into one
// checkpoint. Written from tensorflow/tensorflow
// tensorflow/python/checkpoint/checkpoint_management.py (CheckpointManager:
// "%s-%d" % (prefix, number), the "checkpoint" state file's
// model_checkpoint_path), tensorflow/python/training/saver.py (Saver.save:
// .meta written last), tensorflow/core/util/tensor_bundle/tensor_bundle.cc
// (shards written as *.tempstate<n> and renamed) and
// tensorflow/python/checkpoint/functional_saver.py (sharded saves staged in
// <prefix>_temp/). The TensorFlow tutorial's cp-{epoch:04d}.ckpt prefix
// gives cp-0005.ckpt.index.
type tensorflowLayout struct{}

func init() { register(tensorflowLayout{}, 50) }

var (
	tfRe     = regexp.MustCompile(`^(.*?)([0-9]+)((?:\.ckpt)?)\.(index|meta|data-([0-9]+)-of-([0-9]+))$`)
	tfTempRe = regexp.MustCompile(`^(.*?)([0-9]+)((?:\.ckpt)?)(\.(index|meta|data-[0-9]+-of-[0-9]+)\.tempstate[0-9]*|_temp(_[0-9a-f]+)?)$`)
	tfPathRe = regexp.MustCompile(`(?m)^model_checkpoint_path:\s*"(.*)"\s*$`)
)

func (tensorflowLayout) Name() string { return "tensorflow" }

func (tensorflowLayout) Match(l *Listing) *Reading {
	type group struct {
		Found
		key         string
		index, meta bool
		shards      map[int]bool
		shardCount  int
	}
	groups := map[string]*group{}
	get := func(sm []string) *group {
		name := sm[1] + sm[2] + sm[3]
		g := groups[name]
		if g == nil {
			step, _ := strconv.ParseInt(sm[2], 10, 64)
			g = &group{Found: Found{Name: name, Step: step}, shards: map[int]bool{}, key: sm[1] + "{step}" + sm[3]}
			groups[name] = g
		}
		return g
	}
	anyMeta := false
	for _, e := range l.Entries() {
		if !strings.Contains(e.Name, ".index") && !strings.Contains(e.Name, ".meta") && !strings.Contains(e.Name, ".data-") && !strings.Contains(e.Name, "_temp") {
			continue // most entries: skip the regexps
		}
		if sm := tfTempRe.FindStringSubmatch(e.Name); sm != nil {
			g := get(sm)
			g.Entries = append(g.Entries, e.Name)
			g.Incomplete, g.Why = true, "written under a temporary name ("+e.Name+")"
			continue
		}
		sm := tfRe.FindStringSubmatch(e.Name)
		if sm == nil || e.Kind == KindDir {
			continue
		}
		g := get(sm)
		g.Entries = append(g.Entries, e.Name)
		switch sm[4] {
		case "index":
			g.index = true
		case "meta":
			g.meta, anyMeta = true, true
		default:
			i, _ := strconv.Atoi(sm[5])
			n, _ := strconv.Atoi(sm[6])
			g.shards[i] = true
			g.shardCount = max(g.shardCount, n)
		}
	}
	var b seriesBuilder
	for name, g := range groups {
		if !g.Incomplete && (!g.index || g.shardCount == 0 || len(g.shards) < g.shardCount) {
			g.Incomplete, g.Why = true, "an index without all its data shards, or shards without their index"
		}
		sort.Strings(g.Entries)
		b.add(name, parsedName{key: g.key, step: g.Step, certain: true}, g.Found)
	}
	r := b.largest("tensorflow")
	r.framework = func(*Reading) string { return "TensorFlow" }
	// TF1's Saver writes .meta last: where other checkpoints have one, a
	// checkpoint without it is still being written.
	if anyMeta {
		for i := range r.Found {
			if g := groups[r.Found[i].Name]; g != nil && !g.meta && !r.Found[i].Incomplete {
				r.Found[i].Incomplete, r.Found[i].Why = true, "has no .meta yet (other checkpoints have one): being written"
				r.note("%s has no .meta yet: being written", g.Name)
			}
		}
	}
	if data, _, err := l.ReadFile("checkpoint"); err == nil {
		if sm := tfPathRe.FindSubmatch(data); sm != nil {
			p := path.Base(string(sm[1]))
			if pin(r.Found, p, "checkpoint file") {
				r.note("checkpoint state file: model_checkpoint_path %q", p)
			}
		}
	}
	return r
}
