package layout

import (
	"bytes"
	"regexp"
)

// deepspeedLayout: global_step{N}/ directories and the "latest" tag file.
// Written from microsoft/DeepSpeed deepspeed/runtime/engine.py
// (save_checkpoint: tag global_step{N}, rank 0 writes latest after its
// files; a checkpoint newer than the tag latest names is in progress or was
// abandoned).
type deepspeedLayout struct{}

func init() { register(deepspeedLayout{}, 20) }

var dsRe = regexp.MustCompile(`^global_step([0-9]+)$`)

func (deepspeedLayout) Name() string { return "deepspeed" }

func (deepspeedLayout) Match(l *Listing) *Reading {
	r := dirsNamed(l, "deepspeed", "global_step{step}", dsRe)
	r.framework = func(*Reading) string { return "DeepSpeed" }
	if data, _, err := l.ReadFile("latest"); err == nil {
		tag := string(bytes.TrimSpace(data))
		r.seen = append(r.seen, "latest")
		if s, ok := submatchStep(dsRe, tag); ok {
			trackerCut(r, s, tag, "latest")
		} else if pin(r.Found, tag, "latest") {
			r.note("latest names %s", tag)
		}
	}
	return r
}

// dirsNamed reads the directories whose names re matches, the step its
// first group: the layouts of trainers that name each save's directory
// after its step and track the newest in a file.
func dirsNamed(l *Listing, layout, series string, re *regexp.Regexp) *Reading {
	r := &Reading{Layout: layout, Series: series}
	for _, e := range l.Entries() {
		if s, ok := submatchStep(re, e.Name); ok && e.Kind == KindDir {
			r.Found = append(r.Found, Found{Name: e.Name, Step: s, Entries: []string{e.Name}, dir: true})
		}
	}
	return r
}
