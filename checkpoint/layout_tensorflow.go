package checkpoint

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

var (
	tfRe     = regexp.MustCompile(`^(.*?)([0-9]+)((?:\.ckpt)?)\.(index|meta|data-([0-9]+)-of-([0-9]+))$`)
	tfTempRe = regexp.MustCompile(`^(.*?)([0-9]+)((?:\.ckpt)?)(\.(index|meta|data-[0-9]+-of-[0-9]+)\.tempstate[0-9]*|_temp(_[0-9a-f]+)?)$`)
	tfPathRe = regexp.MustCompile(`(?m)^model_checkpoint_path:\s*"(.*)"\s*$`)
)

func (tensorflowLayout) name() string { return "tensorflow" }

func (tensorflowLayout) match(d *listing) match {
	type group struct {
		found
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
			g = &group{found: found{name: name, step: step}, shards: map[int]bool{}, key: sm[1] + "{step}" + sm[3]}
			groups[name] = g
		}
		return g
	}
	anyMeta := false
	for _, e := range d.entries {
		if !strings.Contains(e.name, ".index") && !strings.Contains(e.name, ".meta") && !strings.Contains(e.name, ".data-") && !strings.Contains(e.name, "_temp") {
			continue // most entries: skip the regexps
		}
		if sm := tfTempRe.FindStringSubmatch(e.name); sm != nil {
			g := get(sm)
			g.entries = append(g.entries, e.name)
			g.incomplete = true
			continue
		}
		sm := tfRe.FindStringSubmatch(e.name)
		if sm == nil || e.kind == kindDir {
			continue
		}
		g := get(sm)
		g.entries = append(g.entries, e.name)
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
		if !g.index || g.shardCount == 0 || len(g.shards) < g.shardCount {
			g.incomplete = true
		}
		sort.Strings(g.entries)
		b.add(name, parsedName{key: g.key, step: g.step, certain: true}, g.found)
	}
	m := b.largest("tensorflow")
	// TF1's Saver writes .meta last: where other checkpoints have one, a
	// checkpoint without it is still being written.
	if anyMeta {
		for i := range m.found {
			if g := groups[m.found[i].name]; g != nil && !g.meta && !m.found[i].incomplete {
				m.found[i].incomplete = true
				m.note("%s has no .meta yet: being written", g.name)
			}
		}
	}
	if data, _, err := d.readSmall("checkpoint"); err == nil {
		if sm := tfPathRe.FindSubmatch(data); sm != nil {
			p := path.Base(string(sm[1]))
			if pin(m.found, p, "checkpoint file") {
				m.note("checkpoint state file: model_checkpoint_path %q", p)
			}
		}
	}
	return m
}
