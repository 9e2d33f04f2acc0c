#!/usr/bin/python3
"""A training loop that saves checkpoint_step_N.pt with torch.save, as the
operator guide's jobs do, for the exporter's full-disk tests.

Usage: torch_trainer.py DIR FORMAT STEPS
  FORMAT is zip (torch.save's default) or legacy
  (_use_new_zipfile_serialization=False).
  It resumes from the checkpoint with the highest step in DIR, as a resume
  script that picks the newest does (exit 3 if that one cannot be loaded),
  then trains and saves every 100 steps, STEPS steps in all. A save that
  fails (ENOSPC on a full disk) ends it with exit 28, the file left as the
  failed save left it.

Usage: torch_trainer.py --resume DIR
  Prints the step the newest checkpoint holds; exit 3 if it cannot be loaded.
"""

import errno
import glob
import os
import re
import sys

import torch


def newest(d):
    best = None
    for p in glob.glob(os.path.join(d, "checkpoint_step_*.pt")):
        m = re.search(r"checkpoint_step_(\d+)\.pt$", p)
        if m and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), p)
    return best


def resume(d):
    n = newest(d)
    if n is None:
        return 0, None
    try:
        state = torch.load(n[1])
    except Exception as e:  # a torn save: a naive resume stops here
        print("cannot load %s: %s" % (n[1], e), file=sys.stderr)
        sys.exit(3)
    return state["step"], state


def main():
    if sys.argv[1] == "--resume":
        step, _ = resume(sys.argv[2])
        print(step)
        return
    d, fmt, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.manual_seed(0)
    model = torch.nn.Linear(256, 256)
    opt = torch.optim.Adam(model.parameters())
    step, state = resume(d)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
    for _ in range(steps):
        step += 1
        loss = model(torch.randn(8, 256)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100:
            continue
        path = os.path.join(d, "checkpoint_step_%d.pt" % step)
        try:
            torch.save({"step": step, "model": model.state_dict(), "optim": opt.state_dict()}, path,
                       _use_new_zipfile_serialization=(fmt == "zip"))
        except (OSError, RuntimeError) as e:
            if isinstance(e, OSError) and e.errno != errno.ENOSPC and "No space left" not in str(e):
                raise
            if isinstance(e, RuntimeError) and "write" not in str(e) and "No space" not in str(e):
                raise
            print("save of step %d failed: %s" % (step, e), file=sys.stderr)
            sys.exit(28)


if __name__ == "__main__":
    main()
