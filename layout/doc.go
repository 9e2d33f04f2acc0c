// Package layout knows what training frameworks write. This part judges
// whether a checkpoint file is whole from the few bytes at its head and tail:
// a save killed by ENOSPC, a signal or a preemption leaves a file shorter than
// its own structures say, and CheckFile tells such a torn file from a whole
// one without reading the file through.
//
// A file is reported Torn only on conclusive evidence, because the pruner
// deletes torn checkpoints first: a false Torn loses a good checkpoint.
// Whatever is not understood is Unknown, which callers treat as they did
// before this package existed (as whole). The package makes no system calls:
// it reads only through the io.ReaderAt its caller passes, so a caller that
// guards slow or hung mounts keeps that guard. It imports nothing from the
// rest of this repository.
//
// A file that is still being written looks exactly like a torn one (its end
// record is not there yet), so callers must not judge the save in progress,
// only files whose writer has finished or died.
package layout
