// Package layout knows what training frameworks write into a checkpoint
// directory, and reads a directory's checkpoints from it: which entries are
// checkpoints of which framework layout, their steps, and whether each is
// complete, being written, cut short (torn), pinned by the framework's own
// state, or read with too little certainty to be pruned.
//
// It is pure: it reads a directory only through the Dir interface its
// caller implements (names and kinds, the few small state files and
// checkpoint-directory listings it asks for, the head and tail of checkpoint
// files), and makes no system call, so a caller that guards slow or hung
// mounts keeps that guard, and tests hand it fakes. It imports nothing from
// the rest of this repository.
//
// Each framework family is one file (hf.go, torch.go, orbax.go, …) that
// registers its Layout with its name rules, the files its framework writes
// last, the trackers it reads and the framework names it tells apart, each
// rule with the framework source it is written from; its test tree is in
// internal/fixture/testdata. Adding a layout is adding one such file.
// Last in auto, where no family's rule recognises anything, the general
// series rule (unrecognised.go) reads a numbered series of model files or
// model directories: counted, never pruned (Found.Unrecognised), with the
// pattern that reads it alike for the operator to configure.
//
// A save is judged torn only on conclusive evidence (wholefile.go: a file
// shorter than its own structures say, an end record missing, a zero-length
// file), because the pruner deletes torn saves first: a false Torn loses a
// good checkpoint. Whatever is not understood is judged as before, whole.
// A file still being written looks exactly like a torn one, so a torn file
// written to within min_age is only in progress.
package layout
