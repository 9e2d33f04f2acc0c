package layout

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// seriesBuilder collects the entries of one layout by series key.
type seriesBuilder struct {
	members map[string][]member
	// companions: series with exactly the same steps belong together (a
	// framework writes them in one save). Only where the framework does so:
	// elsewhere a copied series (backup_{step}.keras) stays apart, unpruned.
	companions bool
}

type member struct {
	name   string
	parsed parsedName
	found  Found
}

func (b *seriesBuilder) add(name string, p parsedName, f Found) {
	if b.members == nil {
		b.members = map[string][]member{}
	}
	f.Name, f.Step = name, p.step
	if f.Entries == nil {
		f.Entries = []string{name}
	}
	b.members[p.key] = append(b.members[p.key], member{name: name, parsed: p, found: f})
}

// largest returns the series with the most steps as a reading: ties go to the
// series with the highest step, then the smaller key. Series with exactly the
// same steps (torchtune's meta_model_N.pt and adapter_N.pt, Stable-Baselines3's
// model and replay buffer) are companions: their entries of one step form one
// checkpoint. Entries of one series with the same step (ranks) do too.
func (b *seriesBuilder) largest(layoutName string) *Reading {
	r := &Reading{Layout: layoutName}
	if len(b.members) == 0 {
		return r
	}
	keys := make([]string, 0, len(b.members))
	for k := range b.members {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	steps := make(map[string][]int64, len(keys))
	for _, k := range keys {
		var s []int64
		for _, mb := range b.members[k] {
			s = append(s, mb.parsed.step)
		}
		slices.Sort(s)
		steps[k] = slices.Compact(s)
	}
	stepsOf := func(k string) []int64 { return steps[k] }
	best, bestSteps := "", []int64(nil)
	for _, k := range keys {
		s := stepsOf(k)
		if best == "" || len(s) > len(bestSteps) || len(s) == len(bestSteps) && s[len(s)-1] > bestSteps[len(bestSteps)-1] {
			best, bestSteps = k, s
		}
	}
	chosen := []string{best}
	for _, k := range keys {
		if b.companions && k != best && len(bestSteps) >= 2 && equalSteps(stepsOf(k), bestSteps) {
			chosen = append(chosen, k)
		}
	}
	r.Series = strings.Join(chosen, " + ")
	byStep := map[int64]int{}
	merged := map[int]bool{}
	var ms []member
	for _, k := range chosen {
		ms = append(ms, b.members[k]...)
	}
	for _, mb := range ms {
		if i, ok := byStep[mb.parsed.step]; ok {
			f := &r.Found[i]
			merged[i] = true
			f.Entries = append(f.Entries, mb.found.Entries...)
			f.Incomplete = f.Incomplete || mb.found.Incomplete
			continue
		}
		byStep[mb.parsed.step] = len(r.Found)
		r.Found = append(r.Found, mb.found)
	}
	for i := range merged {
		sort.Strings(r.Found[i].Entries)
		r.Found[i].Name = groupName(r.Found[i].Entries, r.Found[i].Step)
		r.Found[i].dir = false
	}
	for _, k := range keys {
		if !slices.Contains(chosen, k) && len(bestSteps) >= 2 && len(stepsOf(k)) == len(bestSteps) {
			why := fmt.Sprintf("two series of %d names, %s and %s; pattern: %q (or the other) settles it",
				len(bestSteps), best, k, strings.ReplaceAll(best, "{n}", "*"))
			for i := range r.Found {
				r.Found[i].Uncertain = why
			}
			break
		}
	}
	if why := ambiguousStep(b.members[best]); why != "" {
		for i := range r.Found {
			r.Found[i].Uncertain = fmt.Sprintf("step not certain: %s; pattern: %q (or {step} on the other number) settles it", why, strings.ReplaceAll(best, "{n}", "*"))
		}
	}
	return r
}

func equalSteps(a, b []int64) bool { return slices.Equal(a, b) }

// ambiguousStep reports why the step of a series is not certain: its names
// carry more than one number, none marked as the step, and the numbers order
// the checkpoints differently (so "oldest" depends on which one is the step).
func ambiguousStep(ms []member) string {
	for _, a := range ms {
		if a.parsed.certain {
			continue
		}
		for _, b := range ms {
			if a.parsed.step >= b.parsed.step || len(a.parsed.others) != len(b.parsed.others) {
				continue
			}
			for i := range a.parsed.others {
				if a.parsed.others[i] > b.parsed.others[i] {
					return fmt.Sprintf("the numbers in %s and %s order them differently", a.name, b.name)
				}
			}
		}
	}
	return ""
}

// groupName names a checkpoint of several entries: their shared prefix up to
// the step when it names the step (ckpt-5, ep0-ba1000), else the first entry
// and how many more there are.
func groupName(entries []string, step int64) string {
	p := entries[0]
	for _, n := range entries[1:] {
		for !strings.HasPrefix(n, p) {
			p = p[:len(p)-1]
		}
	}
	runs := digitRunIndex(p)
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		v, err := strconv.ParseInt(p[r[0]:r[1]], 10, 64)
		if err != nil || v != step {
			continue
		}
		whole := true
		for _, n := range entries {
			if len(n) > r[1] && isDigit(n[r[1]]) {
				whole = false
			}
		}
		if whole {
			return p[:r[1]]
		}
	}
	return fmt.Sprintf("%s (+%d)", entries[0], len(entries)-1)
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
