package layout

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Settle decides, once the names are read, what the checkpoints' contents
// say: directories that hold no checkpoint (a run or log directory),
// directories without the file their framework writes last, directories
// that lack what every older sibling has, files cut short (torn) or maybe
// cut short (suspect), and the pins that come from the newest complete
// state. It reads through d: the top level of each checkpoint directory,
// and the head and tail of each checkpoint file.
func Settle(d Dir, l *Listing, r *Reading, now time.Time, minAge time.Duration) {
	lists := make([][]Entry, len(r.Found))
	known := make([]bool, len(r.Found))
	for i, f := range r.Found {
		if !f.dir {
			continue
		}
		if names, err := d.List(f.Name); err == nil {
			lists[i], known[i] = names, true
		}
	}
	if r.needContent {
		for i := range r.Found {
			switch f := &r.Found[i]; {
			case !known[i] || holdsContent(lists[i]):
			case len(lists[i]) == 0:
				f.Incomplete, f.Why = true, "empty: a save that has only just begun"
				r.note("%s is empty: being written", f.Name)
			default:
				f.drop = true
				r.note("%s holds no weights or checkpoint metadata: not a checkpoint", f.Name)
			}
		}
	}
	order := inOrder(r.Found)
	markers(r, lists, known, order)
	siblings(r, lists, known, order)
	judgeFiles(d, l, r, lists, now, minAge)
	if r.after != nil {
		r.after(l, r)
	}
	kept := r.Found[:0]
	for _, f := range r.Found {
		if !f.drop {
			kept = append(kept, f)
		}
	}
	r.Found = kept
	if len(r.Found) > 0 && r.framework != nil {
		r.Framework = r.framework(r)
	}
}

// whole reports whether f is a complete checkpoint so far: not being
// written, not torn, not dropped.
func (f *Found) whole() bool { return !f.Incomplete && f.Torn == "" && !f.drop }

func hasEntry(es []Entry, name string) bool {
	return slices.ContainsFunc(es, func(e Entry) bool { return e.Name == name })
}

// inOrder returns the indices of fs oldest first (see compareOrder).
func inOrder(fs []Found) []int {
	order := make([]int, len(fs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return compareOrder(&fs[a], &fs[b]) })
	return order
}

// markers marks directory checkpoints without a file their framework writes
// last. A marker counts only once an older sibling has it: a framework that
// began writing one in a later version never makes the saves before that
// look unfinished.
func markers(r *Reading, lists [][]Entry, known []bool, order []int) {
	for _, mk := range r.markers {
		var first *Found // the oldest checkpoint that has the marker
		for _, i := range order {
			switch f := &r.Found[i]; {
			case !known[i] || f.drop:
			case hasEntry(lists[i], mk):
				if first == nil {
					first = f
					r.seen = append(r.seen, mk)
				}
			case first != nil && !f.Incomplete:
				f.Incomplete = true
				f.Why = fmt.Sprintf("has no %s yet (%s has): being written, or cut short", mk, first.Name)
				r.note("%s has no %s yet: being written", f.Name, mk)
			}
		}
	}
}

// contentExts are extensions of files that hold tensors or training state.
var contentExts = []string{".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".h5", ".keras", ".msgpack", ".distcp", ".npz", ".pkl", ".index", ".tar", ".json.gz"}

// contentNames are files that say a directory is a checkpoint (the markers
// of every family); contentDirs and contentDirPrefixes are subdirectories
// that hold a checkpoint's items: orbax's item names (default, state,
// params, opt_state, train_state, items), OLMo's model_and_optim, NeMo 2's
// weights, verl's actor and critic, diffusers' unet, transformer and
// controlnet, Megatron's mp_rank_NN and tp_rank_NN.
var (
	contentNames = []string{
		"trainer_state.json", "random_states_0.pkl", ".metadata", "commit_success.txt", "_CHECKPOINT_METADATA",
		"checkpoint", "data.pt", "metadata.json", "model.safetensors.index.json", "model_config.json", ".metadata.json", "meta.pt",
	}
	contentDirs = []string{"default", "state", "params", "opt_state", "train_state", "items", "model", "model_and_optim",
		"optim", "optimizer", "weights", "actor", "critic", "unet", "transformer", "controlnet", "train", "pytorch_model"}
	contentDirPrefixes = []string{"mp_rank_", "tp_rank_", "global_step", "pytorch_model_fsdp", "target."}
)

// holdsContent reports whether a directory's top level holds weights,
// optimizer state or checkpoint metadata.
func holdsContent(es []Entry) bool {
	for _, e := range es {
		if slices.Contains(contentNames, e.Name) {
			return true
		}
		if e.Kind == KindDir || e.Kind == KindOther {
			if slices.Contains(contentDirs, e.Name) {
				return true
			}
			for _, p := range contentDirPrefixes {
				if strings.HasPrefix(e.Name, p) {
					return true
				}
			}
		}
		for _, x := range contentExts {
			if strings.HasSuffix(e.Name, x) {
				return true
			}
		}
	}
	return false
}

// A directory checkpoint whose save was cut short lacks what its framework
// writes last. Where no rule names that file (a framework no layout has a
// marker for), the checkpoint's own series tells: a directory that lacks
// entries every older complete sibling has is not complete ("lacks
// model_config.json that 50 has"). A run that changes what it saves (a
// resumed run with save_only_model, a new world size, a framework upgrade)
// makes newer saves lack the same entries, so a lack that a newer sibling
// shares is no evidence; the newest save stays unfinished until the next
// save says which it was. The rule needs two older complete siblings that
// agree, and applies only where no marker of the layout was seen (a known
// framework's own marker decides). It never calls a save torn: only
// incomplete (kept, not counted, filling no keep_last slot).

// maxListed bounds the names compared of one checkpoint directory's top
// level; a larger directory is left out of the sibling comparison.
const maxListed = 4096

// siblings marks directory checkpoints that lack entries every older
// complete sibling has and no newer sibling lacks. order is r.Found oldest first.
func siblings(r *Reading, lists [][]Entry, known []bool, order []int) {
	for _, mk := range r.markers {
		if r.saw(mk) {
			return // the framework's marker decides
		}
	}
	names := make([]map[string]bool, len(r.Found))
	n := 0
	for _, i := range order {
		if f := r.Found[i]; known[i] && !f.drop && f.dir && len(lists[i]) > 0 && len(lists[i]) <= maxListed {
			names[i] = normalisedNames(lists[i], f.Step)
			n++
		}
	}
	if n < 3 {
		return
	}
	var required map[string]bool // what every older complete sibling has
	var last string              // the newest of them
	agree := 0                   // how many there are
	for k, i := range order {
		if names[i] == nil {
			continue
		}
		f := &r.Found[i]
		var missing []string
		for name := range required {
			if !names[i][name] {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 && agree >= 2 && !f.Incomplete && !lackedLater(names, order[k+1:], missing) {
			slices.Sort(missing)
			f.Incomplete = true
			f.Why = fmt.Sprintf("lacks %s that %s has", list(missing, 3), last)
			r.note("%s lacks %s that %s has: not complete", f.Name, list(missing, 3), last)
			continue
		}
		if f.Incomplete {
			continue
		}
		if required == nil {
			required = names[i]
		} else {
			next := map[string]bool{}
			for name := range required {
				if names[i][name] {
					next[name] = true
				}
			}
			required = next
		}
		last = f.Name
		agree++
	}
}

// lackedLater reports whether a newer sibling lacks any of missing too.
func lackedLater(names []map[string]bool, newer []int, missing []string) bool {
	for _, i := range newer {
		if names[i] == nil {
			continue
		}
		for _, name := range missing {
			if !names[i][name] {
				return true
			}
		}
	}
	return false
}

// normalisedNames is a directory's entry names with the checkpoint's own
// step (as it appears, padded or not) replaced by {step}.
func normalisedNames(es []Entry, step int64) map[string]bool {
	out := make(map[string]bool, len(es))
	for _, e := range es {
		out[replaceStep(e.Name, step)] = true
	}
	return out
}

func replaceStep(name string, step int64) string {
	runs := digitRunIndex(name)
	if len(runs) == 0 {
		return name
	}
	var b strings.Builder
	last := 0
	for _, r := range runs {
		if v, err := strconv.ParseInt(name[r[0]:r[1]], 10, 64); err == nil && v == step {
			b.WriteString(name[last:r[0]])
			b.WriteString("{step}")
			last = r[1]
		}
	}
	if last == 0 {
		return name
	}
	b.WriteString(name[last:])
	return b.String()
}

// list names up to n items, and how many more there are.
func list(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
