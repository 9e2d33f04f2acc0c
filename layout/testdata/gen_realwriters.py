#!/usr/bin/python3
"""Writes checkpoint files with the frameworks' own writers, for the layout
package's tests.

Usage: gen_realwriters.py OUTDIR

Whole files come from torch.save (zip and legacy formats), h5py, Python's
zipfile (a Keras-3-like .keras) and numpy. Failed saves come from the same
writers run in a child process whose file-size limit (RLIMIT_FSIZE, with
SIGXFSZ ignored) makes a write fail part way, as ENOSPC does on a full disk.

Killed saves come from a child whose writes stall part way and which is then
sent SIGKILL, as a preempted job is. A family of HDF5 files (h5py's family
driver) is written too: each member alone is not a whole HDF5 file.

OUTDIR/manifest.json lists every file as {"file", "writer", "format", "kind",
"want", "note"}: kind is "whole", "failed" (file size limit), "killed" or
"family"; want is the verdict the Go test wants ("whole", "torn", "unknown"
or "not-torn"); note says what the writer did.

OUTDIR/pickles.bin holds pickles of many objects in protocols 0 to 5, one
after the other, and OUTDIR/pickles.json the offset where each one ends, as
pickle.load ends it.
"""

import collections
import io
import json
import os
import resource
import signal
import sys
import time
import traceback
import zipfile

import h5py
import numpy as np
import torch

MANIFEST = []


def record(name, writer, fmt, kind, want, note=""):
    MANIFEST.append({"file": name, "writer": writer, "format": fmt, "kind": kind, "want": want, "note": note})


def whole(out, name, writer, fmt, save):
    save(os.path.join(out, name))
    record(name, writer, fmt, "whole", "whole")


def child_exit(status):
    if os.WIFSIGNALED(status):
        return "killed by signal %d (%s)" % (os.WTERMSIG(status), signal.Signals(os.WTERMSIG(status)).name)
    return "exit %d" % os.WEXITSTATUS(status)


def failed(out, name, writer, fmt, limit, save, want):
    """Runs save(path) in a child whose writes stop at limit bytes."""
    path = os.path.join(out, name)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        # The writers' own complaints (torch's abort message) would clutter
        # the test's output; what they raised is reported in the manifest.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        msg = "no error"
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            save(path)
        except BaseException as e:  # noqa: BLE001 - report whatever the writer raised
            msg = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        os.write(w, msg.encode()[:4000])
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        msg = f.read()
    _, status = os.waitpid(pid, 0)
    record(name, writer, fmt, "failed", want, "%d-byte file size limit: %s, %s, %d bytes left" %
           (limit, child_exit(status), msg, os.path.getsize(path)))


class Stalling(io.RawIOBase):
    """A file that takes writes up to stall bytes, then blocks forever."""

    def __init__(self, f, stall):
        self.f, self.stall, self.pos = f, stall, 0

    def writable(self):
        return True

    def write(self, b):
        b = bytes(b)
        n = min(len(b), max(0, self.stall - self.pos))
        self.f.write(b[:n])
        self.pos += n
        if n < len(b):
            self.f.flush()
            while True:
                time.sleep(3600)
        return n

    def tell(self):
        return self.pos

    def flush(self):
        self.f.flush()


def wait_for_size(path, size, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path) >= size:
            return
        time.sleep(0.01)
    raise RuntimeError("%s did not reach %d bytes" % (path, size))


def killed(out, name, writer, fmt, stall, save, want):
    """Runs save(file object) in a child whose writes stall after stall
    bytes, then kills the child with SIGKILL."""
    path = os.path.join(out, name)
    pid = os.fork()
    if pid == 0:  # child
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        with open(path, "wb") as f:
            save(Stalling(f, stall))
        os._exit(0)
    wait_for_size(path, stall)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    record(name, writer, fmt, "killed", want, "writes stalled at %d bytes, then %s; %d bytes left" %
           (stall, child_exit(status), os.path.getsize(path)))


def killed_h5(out, name, libver, size):
    """Kills an h5py writer that keeps adding datasets once its file has
    grown past size bytes."""
    path = os.path.join(out, name)
    pid = os.fork()
    if pid == 0:  # child
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        rng = np.random.default_rng(0)
        with h5py.File(path, "w", libver=libver) as f:
            for i in range(1 << 30):
                f["d%d" % i] = rng.standard_normal(8192)
        os._exit(0)
    wait_for_size(path, size)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    record(name, "h5py libver=%s" % libver, "hdf5", "killed", "not-torn",
           "killed (%s) while writing datasets; %d bytes left" % (child_exit(status), os.path.getsize(path)))


def family(out, prefix, libver):
    """Writes an HDF5 file with h5py's family driver: members of 64 KiB."""
    pattern = os.path.join(out, prefix + "%d.h5")
    with h5py.File(pattern, "w", driver="family", memb_size=64 << 10, libver=libver) as f:
        f["x"] = np.arange(50000.0)
    i = 0
    while os.path.exists(pattern % i):
        record(prefix + "%d.h5" % i, "h5py family driver libver=%s" % libver, "hdf5", "family", "unknown",
               "member %d of a family; member 0's superblock holds the end of all members" % i)
        i += 1


class Plain:
    def __init__(self):
        self.a = 1
        self.b = [1, 2]


class Slotted:
    __slots__ = ("x",)

    def __init__(self):
        self.x = 3

    def __getstate__(self):
        return {"x": self.x}

    def __setstate__(self, state):
        self.x = state["x"]


def pickle_corpus(out):
    import pickle
    shared = [1]
    recursive = []
    recursive.append(recursive)
    objects = [
        None, True, False, 0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, 2**31, -2**31 - 1,
        2**63, -2**63 - 1, 2**100, -2**1000, 1.5, float("inf"), "", "\u00e9\u2713", "x" * 300,
        b"", b"bytes", b"x" * 300, bytearray(b"ba"), (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4),
        [], [1], list(range(2000)), {}, {"a": 1}, {i: str(i) for i in range(2000)}, set(), {1, 2},
        frozenset({3}), collections.OrderedDict(a=1, b=2), Plain(), [Plain(), Plain()], Slotted(),
        recursive, [shared, shared], complex(1, 2), np.arange(10), np.float32(1.0),
        {"model": {"w": [1.0, 2.0]}, "step": 7, "name": "x"}, torch.Size([2, 3]),
    ]
    data, ends = b"", []
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        for obj in objects:
            data += pickle.dumps(obj, protocol=proto)
            ends.append(len(data))
    # pickle.load must end each where the dumps did.
    f = io.BytesIO(data)
    for end in ends:
        pickle.load(f)
        assert f.tell() == end, (f.tell(), end)
    with open(os.path.join(out, "pickles.bin"), "wb") as f:
        f.write(data)
    with open(os.path.join(out, "pickles.json"), "w") as f:
        json.dump(ends, f)


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))


def optimizer_state(model):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = model(torch.randn(8, 16)).pow(2).mean()
    loss.backward()
    opt.step()
    return opt.state_dict()


def dtype_dict():
    return {
        "f32": torch.randn(3, 5),
        "f64": torch.randn(7, dtype=torch.float64),
        "f16": torch.randn(4, 4).half(),
        "bf16": torch.randn(9).bfloat16(),
        "i64": torch.arange(11, dtype=torch.int64),
        "i32": torch.arange(5, dtype=torch.int32),
        "i16": torch.arange(3, dtype=torch.int16),
        "i8": torch.arange(-4, 4, dtype=torch.int8),
        "u8": torch.arange(6, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "c64": torch.randn(2, dtype=torch.complex64),
        "empty": torch.empty(0),
        "scalar": torch.tensor(3.5),
    }


def training_checkpoint():
    model = mlp()
    return {
        "epoch": 3,
        "global_step": 1200,
        "state_dict": model.state_dict(),
        "optimizer_states": [optimizer_state(model)],
        "lr_schedulers": [{"last_epoch": 3, "base_lrs": [1e-3]}],
        "hyper_parameters": {"lr": 1e-3, "layers": [16, 32, 4], "name": "mlp"},
        "pytorch-lightning_version": "1.9.0",
    }


def views():
    base = torch.arange(24, dtype=torch.float32)
    return {"base": base, "tail": base[4:], "grid": base.view(4, 6).t(), "other": torch.ones(2)}


def big():
    torch.manual_seed(1)
    return {"embedding": torch.randn(256, 256), "bias": torch.randn(256)}  # 256 KiB of data


def torch_save(obj, legacy=False, **kw):
    def save(path):
        if legacy:
            kw["_use_new_zipfile_serialization"] = False
        torch.save(obj, path, **kw)
    return save


def h5(libver=None, userblock=None, layout="plain", rows=64):
    # h5py cannot set the indexed storage K that makes the library write a
    # version 1 superblock; the Go tests build that one by hand.
    def save(path):
        kw = {}
        if libver:
            kw["libver"] = libver
        if userblock:
            kw["userblock_size"] = userblock
        with h5py.File(path, "w", **kw) as f:
            rng = np.random.default_rng(0)
            if layout == "keras":
                # Keras 3's model.weights.h5: layers/<name>/vars/<i>.
                for i, (a, b) in enumerate([(16, 32), (32, 4)]):
                    g = f.create_group("layers/dense_%d/vars" % i)
                    g["0"] = rng.standard_normal((a, b)).astype("float32")
                    g["1"] = np.zeros(b, dtype="float32")
                f.create_group("optimizer/vars")["0"] = np.array(10, dtype="int64")
            elif layout == "chunked":
                f.create_dataset("x", data=rng.standard_normal((rows, 128)), chunks=(8, 128),
                                 compression="gzip")
            else:
                f["weights"] = rng.standard_normal((rows, 128)).astype("float32")
                f["step"] = np.int64(7)
                f.attrs["framework"] = "h5py"
    return save


def keras_zip(compression=zipfile.ZIP_STORED, comment=b"", n=64):
    def save(path):
        weights = io.BytesIO()
        with h5py.File(weights, "w") as f:
            f.create_group("layers/dense/vars")["0"] = np.ones((n, n), dtype="float32")
        with zipfile.ZipFile(path, "w", compression=compression) as z:
            z.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
            z.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
            z.writestr("model.weights.h5", weights.getvalue())
            if comment:
                z.comment = comment
    return save


def npz(compressed=False):
    def save(path):
        arrays = {"a": np.arange(1000.0), "b": np.ones((32, 32), dtype="float16")}
        with open(path, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, **arrays)
    return save


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)

    # torch >= 1.6 zip format.
    whole(out, "zip_small.pt", "torch.save", "zip64", torch_save({"w": torch.randn(4, 4)}))
    whole(out, "zip_dtypes.pt", "torch.save", "zip64", torch_save(dtype_dict()))
    whole(out, "zip_optimizer.pth.tar", "torch.save", "zip64", torch_save(training_checkpoint()))
    whole(out, "zip_lightning.ckpt", "torch.save", "zip64", torch_save(training_checkpoint()))
    whole(out, "zip_views.pth", "torch.save", "zip64", torch_save(views()))
    whole(out, "zip_pytorch_model.bin", "torch.save", "zip64", torch_save(big()))
    whole(out, "zip_tensor.pt", "torch.save", "zip64", torch_save(torch.randn(10)))

    # The legacy format.
    whole(out, "legacy_small.pt", "torch.save legacy", "torch-legacy", torch_save({"w": torch.randn(4, 4)}, True))
    whole(out, "legacy_dtypes.pt", "torch.save legacy", "torch-legacy", torch_save(dtype_dict(), True))
    whole(out, "legacy_optimizer.pth.tar", "torch.save legacy", "torch-legacy", torch_save(training_checkpoint(), True))
    whole(out, "legacy_lightning.ckpt", "torch.save legacy", "torch-legacy", torch_save(training_checkpoint(), True))
    whole(out, "legacy_views.pth", "torch.save legacy", "torch-legacy", torch_save(views(), True))
    whole(out, "legacy_pytorch_model.bin", "torch.save legacy", "torch-legacy", torch_save(big(), True))
    whole(out, "legacy_storages.pt", "torch.save legacy", "torch-legacy",
          torch_save({"typed": torch.arange(5.0).storage(), "untyped": torch.UntypedStorage(7)}, True))
    whole(out, "legacy_protocol4.pt", "torch.save legacy pickle_protocol=4", "torch-legacy",
          torch_save(training_checkpoint(), True, pickle_protocol=4))
    whole(out, "legacy_module.pt", "torch.save legacy of an nn.Module", "torch-legacy", torch_save(mlp(), True))
    whole(out, "legacy_numpy.pt", "torch.save legacy with a numpy array", "torch-legacy",
          torch_save({"w": torch.ones(3), "np": np.arange(5000.0)}, True))

    # HDF5, every superblock version h5py can be made to write (0, 2, 3).
    whole(out, "h5_v0.h5", "h5py", "hdf5", h5())
    whole(out, "h5_v2.h5", "h5py libver=v108", "hdf5", h5(libver=("v108", "v108")))
    whole(out, "h5_v3.h5", "h5py libver=latest", "hdf5", h5(libver="latest"))
    whole(out, "h5_userblock.h5", "h5py userblock_size=512", "hdf5", h5(userblock=512))
    whole(out, "h5_userblock4k.h5", "h5py userblock_size=4096 libver=latest", "hdf5", h5(libver="latest", userblock=4096))
    whole(out, "h5_chunked.h5", "h5py gzip chunks", "hdf5", h5(layout="chunked"))
    whole(out, "model.weights.h5", "h5py, Keras 3 weights layout", "hdf5", h5(layout="keras"))
    whole(out, "h5_named.ckpt", "h5py", "hdf5", h5())
    whole(out, "h5_named.keras", "h5py", "hdf5", h5(layout="keras"))

    # Zips that are not torch's.
    whole(out, "model.keras", "zipfile, Keras 3 layout", "zip", keras_zip())
    whole(out, "model_deflated.keras", "zipfile deflated", "zip", keras_zip(zipfile.ZIP_DEFLATED))
    whole(out, "model_comment.keras", "zipfile with a comment", "zip", keras_zip(comment=b"saved by a test " * 100))
    whole(out, "arrays.npz", "numpy.savez", "zip", npz())
    whole(out, "arrays_compressed.npz", "numpy.savez_compressed", "zip", npz(True))

    # Saves that hit the file-size limit part way, as on a full disk.
    for limit in (4096, 65536, 200000):
        failed(out, "fail_zip_%d.pt" % limit, "torch.save", "zip", limit, torch_save(big()), "torn")
        failed(out, "fail_legacy_%d.pt" % limit, "torch.save legacy", "torch-legacy", limit, torch_save(big(), True), "torn")
        # h5py drops the dataset whose write failed and closes a consistent,
        # smaller file: whole as far as its superblock can tell.
        failed(out, "fail_h5_%d.h5" % limit, "h5py", "hdf5", limit, h5(rows=1024), "whole")
        failed(out, "fail_h5latest_%d.h5" % limit, "h5py libver=latest", "hdf5", limit, h5(libver="latest", rows=1024), "whole")
        failed(out, "fail_keras_%d.keras" % limit, "zipfile", "zip", limit, keras_zip(n=256), "torn")
        failed(out, "fail_npz_%d.npz" % limit, "numpy.savez", "zip", limit,
               lambda p: np.savez(p, a=np.arange(40000.0)), "torn")

    # Saves killed part way, as a preempted job's are.
    for stall in (1000, 100000):
        killed(out, "killed_zip_%d.pt" % stall, "torch.save to a file object", "zip", stall, torch_save(big()), "torn")
        killed(out, "killed_legacy_%d.pt" % stall, "torch.save legacy to a file object", "torch-legacy", stall,
               torch_save(big(), True), "torn")
        killed(out, "killed_keras_%d.keras" % stall, "zipfile to a file object", "zip", stall, keras_zip(n=256), "torn")
        killed(out, "killed_npz_%d.npz" % stall, "numpy.savez to a file object", "zip", stall,
               lambda f: np.savez(f, a=np.arange(40000.0)), "torn")
    killed_h5(out, "killed_h5.h5", "earliest", 4 << 20)
    killed_h5(out, "killed_h5latest.h5", "latest", 4 << 20)

    family(out, "family_v0_", "earliest")
    family(out, "family_v3_", "latest")

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(MANIFEST, f, indent=1)
    pickle_corpus(out)


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Exception:
        traceback.print_exc()
        sys.exit(1)
