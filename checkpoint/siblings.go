package checkpoint

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A directory checkpoint whose save was cut short lacks what its framework
// writes last. Where no rule names that file (a framework the layouts have
// no marker for), the checkpoint's own series tells: a directory that lacks
// entries every older complete sibling has is not complete ("lacks
// model_config.json that 50 has"). A run that changes what it saves (a
// resumed run with save_only_model, a new world size, a framework upgrade)
// makes newer saves lack the same entries, so a lack that a newer sibling
// shares is no evidence; the newest save stays unfinished until the next
// save says which it was. The rule needs two older complete siblings that
// agree, and applies only where no marker of the layout was seen (a known
// framework's own marker decides). It never calls a save torn: only
// incomplete (kept, not counted, filling no keep_last slot).

// maxFactNames bounds the names kept of one checkpoint directory's top
// level; a larger directory is left out of the sibling comparison.
const maxFactNames = 4096

// byStep returns the indices of fs in ascending step order.
func byStep(fs []found) []int {
	order := make([]int, len(fs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case fs[a].step < fs[b].step:
			return -1
		case fs[a].step > fs[b].step:
			return 1
		}
		return 0
	})
	return order
}

// siblings marks directory checkpoints that lack entries every older
// complete sibling has and no newer sibling lacks. A checkpoint that has a
// marker of its layout (a file its framework writes last) is complete by
// that marker, whatever its siblings hold. order is fs by step.
func siblings(m *match, fs []found, facts []dirFacts, known []bool, order []int) {
	for _, mk := range m.markers {
		if slices.Contains(m.seen, mk) {
			return // the framework's marker decides
		}
	}
	comparable := func(i int) bool {
		return known[i] && !fs[i].drop && fs[i].dir && !facts[i].empty && facts[i].names != nil
	}
	names := make([]map[string]bool, len(fs))
	n := 0
	for _, i := range order {
		if comparable(i) {
			names[i] = normalisedNames(facts[i].names, fs[i].step)
			n++
		}
	}
	if n < 2 {
		return
	}
	var required map[string]bool // what every older complete sibling has
	var last string              // the newest of them
	agree := 0                   // how many there are
	for k, i := range order {
		if names[i] == nil {
			continue
		}
		var missing []string
		for name := range required {
			if !names[i][name] {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 && agree >= 2 && !fs[i].incomplete && !lackedLater(names, order[k+1:], missing) {
			slices.Sort(missing)
			fs[i].incomplete = true
			fs[i].why = fmt.Sprintf("lacks %s that %s has", list(missing, 3), last)
			m.note("%s lacks %s that %s has: not complete", fs[i].name, list(missing, 3), last)
			continue
		}
		if fs[i].incomplete {
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
		last = fs[i].name
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
func normalisedNames(names []string, step int64) map[string]bool {
	out := make(map[string]bool, len(names))
	for _, name := range names {
		out[replaceStep(name, step)] = true
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
