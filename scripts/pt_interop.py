#!/usr/bin/python3
"""Check that PyTorch and cmcr agree on .pt state_dict files (run with a python that has torch).

  pt_interop.py FILE.pt [--check-head ulip-clip|clap-clip] [--expect REF.txt]
      torch.load FILE.pt (written by cmcr), print each key, shape and dtype; with
      --check-head, load it strictly into the C-MCR projector modules and run them; with
      --expect, compare every tensor bit for bit with a reference listing.
  pt_interop.py --write OUT.pt [--ref REF.txt] [--protocol N]
      torch.save a state_dict exercising every dtype cmcr reads (0-d tensors, a shared
      storage with a row-slice view at a non-zero offset, a Parameter, an empty tensor...)
      and write the expected values to REF.txt.
  pt_interop.py --write-noncontig OUT.pt
      torch.save a transposed (non-contiguous) view, which cmcr must refuse.
  pt_interop.py --write OUT.pt --training [--drop-unused] [--ref REF.txt]
      the same state_dict inside a training checkpoint shaped like LAION-CLAP's and ULIP's:
      {"epoch", "name", "state_dict" (keys prefixed "module."), "optimizer" (Adam state,
      with a bool tensor), "args" (an argparse.Namespace holding a numpy scalar and bytes)};
      with --drop-unused, the optimizer's storages are removed from the archive, so a reader
      that touched them would fail; with --keep A,B,... only those tensors' storages stay (and
      REF.txt lists only them), so only a loader that reads just those names can succeed.
  pt_interop.py --write-object-entry OUT.pt
      a state_dict with an argparse.Namespace among its values, which cmcr must refuse.
  pt_interop.py --write-bool-param OUT.pt
      a state_dict with a bool nn.Parameter, which cmcr must refuse naming it and its storage.

Reference listing: one line per tensor, tab-separated: name, dtype (F32, F16, BF16, F64,
I32, I64, U8), shape as comma-separated sizes (empty for 0-d), raw little-endian bytes in hex.
Exit status is 0 on success, 1 on any mismatch or failure.
"""
import argparse
import sys

import torch
from torch import nn

DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.float64: "F64", torch.int32: "I32", torch.int64: "I64", torch.uint8: "U8",
}


class OneLayerHead(nn.Module):
    """C-MCR projector with one block: Linear -> BatchNorm1d -> ReLU, kept in `net`."""

    def __init__(self, dim=512):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.ReLU())

    def forward(self, x):
        return self.net(x)


class TwoLayerHead(nn.Module):
    """C-MCR projector with two blocks: `net1` widens 512 -> 1024 (with BN and ReLU),
    `net2` narrows back to 512 (Linear and BN only)."""

    def __init__(self, dim=512, hidden=1024):
        super().__init__()
        self.net1 = nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        self.net2 = nn.Sequential(nn.Linear(hidden, dim), nn.BatchNorm1d(dim))

    def forward(self, x):
        return self.net2(self.net1(x))


class Connector(nn.Module):
    """The two projectors of a C-MCR model, one per side."""

    def __init__(self, head):
        super().__init__()
        self.Head_A = head()
        self.Head_B = head()


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def reference_line(name, t):
    shape = ",".join(str(s) for s in t.shape)
    return "%s\t%s\t%s\t%s\n" % (name, DTYPES[t.dtype], shape, tensor_bytes(t).hex())


def describe(sd):
    for name, t in sd.items():
        if not isinstance(t, torch.Tensor):
            raise SystemExit("%s is a %s, not a tensor" % (name, type(t).__name__))
        print("%s\t%s\t%s" % (name, tuple(t.shape), DTYPES.get(t.dtype, str(t.dtype))))


def check_head(sd, preset):
    head = OneLayerHead if preset == "ulip-clip" else TwoLayerHead
    model = Connector(head)
    model.load_state_dict(sd, strict=True)
    model.eval()
    with torch.no_grad():
        x = torch.randn(4, 512)
        for side in (model.Head_A, model.Head_B):
            y = side(x)
            if y.shape != (4, 512) or not torch.isfinite(y).all():
                raise SystemExit("head output is wrong: %s" % (tuple(y.shape),))
    print("check-head %s: ok" % preset)


def check_expect(sd, ref_path):
    seen = 0
    with open(ref_path) as f:
        for line in f:
            name, dtype, shape, hexdata = line.rstrip("\n").split("\t")
            if name not in sd:
                raise SystemExit("missing tensor %s" % name)
            t = sd[name]
            want_shape = tuple(int(s) for s in shape.split(",")) if shape else ()
            if DTYPES.get(t.dtype) != dtype or tuple(t.shape) != want_shape:
                raise SystemExit("%s: %s %s, expected %s %s"
                                 % (name, t.dtype, tuple(t.shape), dtype, want_shape))
            if tensor_bytes(t) != bytes.fromhex(hexdata):
                raise SystemExit("%s: values differ" % name)
            seen += 1
    if seen != len(sd):
        raise SystemExit("file has %d tensors, reference %d" % (len(sd), seen))
    print("expect: %d tensors identical" % seen)


def sample_state_dict():
    torch.manual_seed(1234)
    base = torch.arange(24, dtype=torch.float32).reshape(6, 4) / 7
    sd = {
        "f32": torch.randn(3, 4),
        "f16": torch.randn(5).half(),
        "bf16": torch.randn(2, 3).bfloat16(),
        "f64": torch.randn(2, 2, 2, dtype=torch.float64),
        "i64": torch.tensor([-(2 ** 40), -1, 0, 1, 2 ** 40], dtype=torch.int64),
        "i32": torch.tensor([[-7, 8], [2 ** 31 - 1, -(2 ** 31)]], dtype=torch.int32),
        "u8": torch.tensor([0, 1, 127, 128, 255], dtype=torch.uint8),
        "scalar": torch.tensor(3.5),
        "num_batches_tracked": torch.tensor(7),
        "base": base,
        "rows": base[2:4],  # shares base's storage, offset 8
        "param": nn.Parameter(torch.randn(4)),
        "odd_stride": torch.arange(4, dtype=torch.float32).as_strided((1, 4), (100, 1)),
        "empty": torch.zeros(0, 3),
        "five_d": torch.randn(1, 2, 1, 3, 2),
    }
    return sd


def training_checkpoint(sd):
    """A checkpoint as training scripts save it (LAION-CLAP, ULIP): the state_dict of a
    DataParallel model beside objects of other classes."""
    import argparse as ap
    import collections
    import numpy as np
    w = nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.Adam([w], lr=1e-3)
    w.sum().backward()
    opt.step()
    optimizer = opt.state_dict()
    optimizer["state"][0]["mask"] = torch.ones(3, dtype=torch.bool)
    args = ap.Namespace(lr=1e-4, seed=np.float64(3.0), model="HTSAT-tiny", tag=b"\x00raw", sizes=(1, 2))
    state = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    hp = collections.defaultdict(int, {"warmup": 10})  # a dict subclass: SETITEMS on a placeholder
    return {"epoch": 7, "name": "run-1", "state_dict": state, "optimizer": optimizer, "args": args, "hp": hp}


def drop_entries(path, keep):
    """Rewrite the zip at path with only the data entries of the storages in keep."""
    import zipfile
    with zipfile.ZipFile(path) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for info, data in items:
            parts = info.filename.split("/")
            if len(parts) == 3 and parts[1] == "data" and parts[2] not in keep:
                continue
            z.writestr(info, data)


def storage_keys(sd, kept):
    """The zip keys torch.save gives the storages of kept's tensors (keys count the storages of
    sd's tensors in first-seen order)."""
    seen = {}
    for t in sd.values():
        seen.setdefault(t.storage().data_ptr(), len(seen))
    return {str(seen[t.storage().data_ptr()]) for t in kept.values()}


def write(out, ref, protocol, training=False, drop_unused=False, keep=None):
    sd = sample_state_dict()
    torch.save(training_checkpoint(sd) if training else sd, out, pickle_protocol=protocol)
    kept = {k: v for k, v in sd.items() if k in keep} if keep else sd
    if drop_unused:
        drop_entries(out, storage_keys(sd, kept))
    if ref:
        with open(ref, "w") as f:
            for name, t in kept.items():
                f.write(reference_line(name, t))
    print("wrote %s (%d tensors, protocol %d)" % (out, len(sd), protocol))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file", nargs="?")
    ap.add_argument("--check-head", choices=["ulip-clip", "clap-clip"])
    ap.add_argument("--expect")
    ap.add_argument("--write")
    ap.add_argument("--ref")
    ap.add_argument("--protocol", type=int, default=2)
    ap.add_argument("--write-noncontig")
    ap.add_argument("--training", action="store_true")
    ap.add_argument("--drop-unused", action="store_true")
    ap.add_argument("--keep", help="comma-separated names: --ref lists only these, and --drop-unused "
                    "removes every other tensor's storage")
    ap.add_argument("--write-object-entry")
    ap.add_argument("--write-bool-param")
    a = ap.parse_args()
    if a.write:
        write(a.write, a.ref, a.protocol, a.training, a.drop_unused, a.keep.split(",") if a.keep else None)
    elif a.write_noncontig:
        torch.save({"transposed": torch.arange(12.0).reshape(3, 4).t()}, a.write_noncontig)
    elif a.write_bool_param:
        torch.save({"w": torch.ones(2), "flags": nn.Parameter(torch.ones(3, dtype=torch.bool), requires_grad=False)},
                   a.write_bool_param)
    elif a.write_object_entry:
        import argparse as ap2
        torch.save({"w": torch.ones(2), "args": ap2.Namespace(lr=0.1)}, a.write_object_entry)
    elif a.file:
        # weights_only (PyTorch >= 1.13) also proves the file uses only safe globals
        sd = torch.load(a.file, map_location="cpu", weights_only=True)
        describe(sd)
        if a.check_head:
            check_head(sd, a.check_head)
        if a.expect:
            check_expect(sd, a.expect)
    else:
        ap.error("give a FILE to check, or --write / --write-noncontig")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except Exception as e:  # report any torch failure as a plain non-zero exit
        print("pt_interop: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
