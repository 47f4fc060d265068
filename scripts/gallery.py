#!/usr/bin/python3
"""Gallery files (docs/search.md) from Python, written and read without cmcr: a second
implementation of the format, for the tests and the fuzzer's seeds.

  gallery.py --seeds OUT      write fuzz_gallery's seed corpus into OUT/: galleries that load
                              (good-*) and ones that must be refused (bad-*), each under 10 KB
  gallery.py --show G         print a gallery's metadata and rows

As a module: read(path) -> dict of numpy arrays and metadata (rows in file order), and
write(path, rows, meta) -> the file cmcr's writer makes from the same rows (sorted by path).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

TENSORS = ["embeddings", "content_hash", "size", "mtime_ns", "modality", "paths"]
DTYPES = {"F32": "<f4", "I64": "<i8", "I32": "<i4", "U8": "|u1", "F64": "<f8"}


def save_safetensors(path, tensors, meta):
    """tensors: list of (name, dtype name, shape, raw bytes), written in that order."""
    header, blobs, off = {"__metadata__": meta} if meta else {}, [], 0
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write(path, rows, meta=None, dim=None):
    """rows: dicts with path (str or bytes), modality (0-3), hash (u64), size, mtime_ns,
    embedding (dim floats). meta: the caller's metadata (format, version, dim, rows added)."""
    rows = sorted(rows, key=lambda r: os.fsencode(r["path"]))
    dim = dim if dim is not None else len(rows[0]["embedding"])
    emb = np.array([r["embedding"] for r in rows], np.float32).reshape(len(rows), dim)
    paths = b"".join(os.fsencode(r["path"]) + b"\0" for r in rows)
    m = {"format": "cmcr-gallery", "version": "1", "dim": str(dim), "rows": str(len(rows))}
    m.update(meta or {})
    save_safetensors(path, [
        ("embeddings", "F32", emb.shape, emb.tobytes()),
        ("content_hash", "I64", [len(rows)], np.array([r["hash"] for r in rows], np.uint64).tobytes()),
        ("size", "I64", [len(rows)], np.array([r["size"] for r in rows], np.int64).tobytes()),
        ("mtime_ns", "I64", [len(rows)], np.array([r["mtime_ns"] for r in rows], np.int64).tobytes()),
        ("modality", "I32", [len(rows)], np.array([r["modality"] for r in rows], np.int32).tobytes()),
        ("paths", "U8", [len(paths)], paths),
    ], m)


def read(path):
    """{"meta": {...}, "embeddings": N x D float32, "content_hash": uint64, "size", "mtime_ns",
    "modality": arrays, "paths": [bytes]}; no checks beyond the layout."""
    raw = open(path, "rb").read()
    n, = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {"meta": header.pop("__metadata__", {})}
    for name, e in header.items():
        b, f = e["data_offsets"]
        out[name] = np.frombuffer(data[b:f], DTYPES[e["dtype"]]).reshape(e["shape"])
    out["content_hash"] = out["content_hash"].view(np.uint64)
    out["paths"] = bytes(out["paths"]).split(b"\0")[:-1]
    return out


def seeds(out):
    os.makedirs(out, exist_ok=True)
    r = np.random.default_rng(18)

    def rows(n, dim, modalities, prefix="/data/"):
        e = r.standard_normal((n, dim)).astype(np.float32)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        return [{"path": f"{prefix}{i:03d}.{['jpg', 'wav', 'txt', 'ply'][modalities[i % len(modalities)]]}",
                 "modality": modalities[i % len(modalities)], "hash": int(r.integers(0, 2 ** 63)) * 2 + 1,
                 "size": int(r.integers(0, 10 ** 6)), "mtime_ns": int(r.integers(-10 ** 9, 2 ** 62)),
                 "embedding": e[i]} for i in range(n)]

    meta = {"model": "/models/clap_clip.pt", "model_fingerprint": "00112233445566ff", "encoder_a": "/m/clap.pt",
            "encoder_a_kind": "clap", "encoder_a_fingerprint": "0123456789abcdef", "encoder_b": "",
            "encoder_b_kind": "", "encoder_b_fingerprint": "", "text_side": "a", "precision": "f32",
            "created": "2026-12-03T10:00:00Z", "updated": "2026-12-03T10:00:00Z"}
    write(f"{out}/good-mixed.safetensors", rows(6, 8, [0, 1, 2, 3]), meta)
    write(f"{out}/good-empty.safetensors", [], {}, dim=5)
    uni = rows(2, 3, [3])
    uni[0]["path"], uni[1]["path"] = "/d/\u00e9t\u00e9 \u4e2d.ply", b"/d/raw\xff\x01name.ply"
    write(f"{out}/good-names.safetensors", uni, {})
    # Refusals: each breaks one rule of the reader.
    base = rows(3, 4, [0, 1])

    def broken(name, change, meta_change=None):
        p = f"{out}/{name}"
        write(p, base, meta)
        g = read(p)
        t = {k: g[k] for k in TENSORS}
        t["paths"] = b"".join(x + b"\0" for x in g["paths"])
        m = dict(g["meta"])
        change(t)
        if meta_change: meta_change(m)
        save_safetensors(p, [(k, {np.dtype("<f4"): "F32", np.dtype("<i8"): "I64", np.dtype("<u8"): "I64",
                                  np.dtype("<i4"): "I32"}.get(getattr(t[k], "dtype", None), "U8"),
                              getattr(t[k], "shape", [len(t[k])]),
                              t[k].tobytes() if hasattr(t[k], "tobytes") else t[k]) for k in TENSORS], m)

    def nan(t):
        t["embeddings"] = t["embeddings"].copy()
        t["embeddings"][1, 2] = np.nan
    broken("bad-nan.safetensors", nan)
    broken("bad-unsorted.safetensors", lambda t: t.update(paths=b"/b\0/a\0/c\0"))
    broken("bad-no-final-nul.safetensors", lambda t: t.update(paths=b"/a\0/b\0/c"))
    broken("bad-modality.safetensors", lambda t: t.update(modality=np.array([0, 9, 1], np.int32)))
    broken("bad-rows.safetensors", lambda t: None, lambda m: m.update(rows="4"))
    broken("bad-version.safetensors", lambda t: None, lambda m: m.update(version="2"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", metavar="OUT")
    ap.add_argument("--show", metavar="G")
    a = ap.parse_args()
    if a.seeds:
        seeds(a.seeds)
    if a.show:
        g = read(a.show)
        print(json.dumps(g["meta"], indent=1))
        for i, p in enumerate(g["paths"]):
            print(i, g["modality"][i], "%016x" % g["content_hash"][i], g["size"][i], g["mtime_ns"][i], os.fsdecode(p))
    if not (a.seeds or a.show):
        ap.error("give --seeds OUT or --show G")


if __name__ == "__main__":
    sys.exit(main())
