#!/usr/bin/env bash
# Write the fuzzers' seed corpora (fuzz/corpus/<target>/): small valid files made by cmcr itself
# (synth, train, convert), by NumPy/PyTorch and, for images, by Pillow (Debian's /usr/bin/python3). Each seed is well
# under 10 KB. The generated files are committed; rerun this only to refresh them.
#   fuzz/make_seeds.sh [path/to/cmcr]      (default: build-fuzz/cmcr, else build/cmcr)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${1:-}
if [ -z "$BIN" ]; then
    for b in build-fuzz/cmcr build/cmcr; do [ -x "$b" ] && BIN=$b && break; done
fi
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "make_seeds.sh: no cmcr binary (build it, or pass its path)" >&2; exit 1; }
BIN=$(realpath "$BIN")
PY=${CMCR_PYTHON:-/usr/bin/python3}
C=$ROOT/fuzz/corpus
rm -rf "$C"
mkdir -p "$C"/fuzz_npy "$C"/fuzz_safetensors "$C"/fuzz_pt "$C"/fuzz_model
T=$(mktemp -d /tmp/cmcr-seeds-XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"

# 1. cmcr's own writers: a tiny synthetic world (npy, f32 + int64 labels), a model trained on
#    it (.safetensors with the training record as metadata, and .pt), and conversions.
"$BIN" synth --out world --dim-a 8 --dim-b 9 --latent 3 --concepts 4 --clusters 2 --overlap 16 \
    --memory-a 8 --memory-b 8 --test 4 --oracle 4 --diag 4 >/dev/null
cp world/overlap_a.npy "$C"/fuzz_npy/cmcr_synth_f32.npy
cp world/test_labels.npy "$C"/fuzz_npy/cmcr_synth_labels_i64.npy
"$BIN" train --overlap-a world/overlap_a.npy --overlap-b world/overlap_b.npy \
    --memory-a world/memory_a.npy --memory-b world/memory_b.npy --preset clap-clip --hidden 4 --out-dim 3 \
    --epochs 1 --batch 8 --threads 1 --cache-dir none --checkpoint-every 0 --out m2.safetensors >/dev/null 2>&1
"$BIN" train --overlap-a world/overlap_a.npy --overlap-b world/overlap_b.npy \
    --memory-a world/memory_a.npy --memory-b world/memory_b.npy --preset ulip-clip --out-dim 3 \
    --epochs 1 --batch 8 --threads 1 --cache-dir none --checkpoint-every 0 --out m1.pt >/dev/null 2>&1
"$BIN" convert m2.safetensors m2.pt >/dev/null
"$BIN" convert m1.pt m1.safetensors >/dev/null
cp m2.safetensors "$C"/fuzz_model/cmcr_2layer.safetensors
cp m2.pt "$C"/fuzz_model/cmcr_2layer.pt
cp m1.pt "$C"/fuzz_model/cmcr_1layer.pt
cp m1.safetensors "$C"/fuzz_model/cmcr_1layer.safetensors
cp m2.safetensors m1.safetensors "$C"/fuzz_safetensors/
cp m2.pt m1.pt "$C"/fuzz_pt/
"$BIN" project --model m2.safetensors --side a --in world/test_x.npy --out proj.npy >/dev/null
cp proj.npy "$C"/fuzz_npy/cmcr_project_stream.npy

# 2. NumPy and PyTorch's own files: other dtypes, ranks, header versions, and torch.save's
#    layout (archive named after the file, storages shared between views, non-zero offsets).
"$PY" - "$C" <<'PYEOF'
import io, json, os, struct, sys
import numpy as np
C = sys.argv[1]
r = np.random.default_rng(7)
npy = os.path.join(C, "fuzz_npy")
np.save(f"{npy}/f16_3x4.npy", r.standard_normal((3, 4)).astype(np.float16))
np.save(f"{npy}/f64_2x3.npy", r.standard_normal((2, 3)))
np.save(f"{npy}/i32_1d.npy", np.arange(5, dtype=np.int32))
np.save(f"{npy}/f32_0rows.npy", np.zeros((0, 4), np.float32))
np.save(f"{npy}/f32_3d.npy", r.standard_normal((2, 2, 2)).astype(np.float32))
np.save(f"{npy}/f32_scalar.npy", np.array(1.5, np.float32))
with open(f"{npy}/f32_v2.npy", "wb") as f:
    np.lib.format.write_array(f, r.standard_normal((2, 2)).astype(np.float32), version=(2, 0))
with open(f"{npy}/f32_v3.npy", "wb") as f:
    np.lib.format.write_array(f, r.standard_normal((2, 2)).astype(np.float32), version=(3, 0))
np.save(f"{npy}/f32_fortran.npy", np.asfortranarray(r.standard_normal((3, 2)).astype(np.float32)))
np.save(f"{npy}/f32_bigendian.npy", r.standard_normal((2, 2)).astype(">f4"))

# safetensors by hand (the format is JSON header + raw bytes): every dtype, metadata, 0-d.
def st(path, tensors, meta=None):
    hdr, off, blobs = {}, 0, []
    if meta: hdr["__metadata__"] = meta
    for k, (dt, v) in tensors.items():
        b = v.tobytes()
        hdr[k] = {"dtype": dt, "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        off += len(b); blobs.append(b)
    h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
sd = os.path.join(C, "fuzz_safetensors")
st(f"{sd}/dtypes.safetensors", {
    "f32": ("F32", r.standard_normal((2, 3)).astype(np.float32)),
    "f16": ("F16", r.standard_normal(4).astype(np.float16)),
    "bf16": ("BF16", (r.integers(0, 65535, 3)).astype(np.uint16)),
    "f64": ("F64", r.standard_normal(2)),
    "i32": ("I32", np.arange(3, dtype=np.int32)),
    "i64": ("I64", np.array(5, np.int64)),
    "empty": ("F32", np.zeros((0, 3), np.float32)),
}, meta={"format": "pt", "note": "seed"})

import torch
pt = os.path.join(C, "fuzz_pt")
g = torch.Generator().manual_seed(3)
base = torch.randn(4, 6, generator=g)
torch.save({"w": base, "view": base[1:3], "row": base[2], "h": torch.randn(3, generator=g).half(),
            "bf": torch.randn(2, 2, generator=g).bfloat16(), "d": torch.randn(2, generator=g).double(),
            "n": torch.tensor(7), "i": torch.arange(4, dtype=torch.int32)}, f"{pt}/torch_mixed.pt")
# A training checkpoint (LAION-CLAP's / ULIP's shape): state_dict with "module." keys beside an
# optimizer's state and an argparse.Namespace (opaque placeholders: NEWOBJ, BUILD, bytes).
import argparse, numpy
w = torch.nn.Parameter(torch.randn(3, 2, generator=g))
opt = torch.optim.Adam([w]); w.sum().backward(); opt.step()
torch.save({"epoch": 2, "state_dict": {"module.w": base, "module.n": torch.tensor(7)},
            "optimizer": opt.state_dict(), "args": argparse.Namespace(lr=0.1, s=numpy.float64(2), b=b"x")},
           f"{pt}/torch_training.pt")
# A released-checkpoint-like state_dict: Linear + BatchNorm1d heads, saved by torch itself.
def head(layers, i, h, o):
    mods = [torch.nn.Linear(i, h), torch.nn.BatchNorm1d(h), torch.nn.ReLU()]
    if layers == 2: mods += [torch.nn.Linear(h, o), torch.nn.BatchNorm1d(o)]
    return torch.nn.Sequential(*mods)
class M(torch.nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.Head_A = torch.nn.Module(); self.Head_A.net = head(layers, 6, 4, 3)
        self.Head_B = torch.nn.Module(); self.Head_B.net = head(layers, 5, 4, 3)
torch.manual_seed(0)
md = os.path.join(C, "fuzz_model")
torch.save(M(2).state_dict(), f"{md}/torch_2layer.pt")
torch.save(M(1).state_dict(), f"{md}/torch_1layer.pt")
torch.save(M(2).state_dict(), f"{pt}/torch_state_dict.pt")
# Models that parse but break what the forward pass relies on (refused at load: a negative
# running_var, a NaN weight) or are finite and overflow float32 in it (refused by projection).
def bad_model(path, change):
    t = {}
    for side, i in (("Head_A", 6), ("Head_B", 5)):
        t[f"{side}.net.0.weight"] = ("F32", r.standard_normal((3, i)).astype(np.float32))
        for k, v in (("0.bias", 0), ("1.weight", 1), ("1.bias", 0), ("1.running_mean", 0), ("1.running_var", 1)):
            t[f"{side}.net.{k}"] = ("F32", np.full(3, v, np.float32))
        t[f"{side}.net.1.num_batches_tracked"] = ("I64", np.array(0, np.int64))
    change(t)
    st(path, t)
bad_model(f"{md}/negative_running_var.safetensors", lambda t: t["Head_A.net.1.running_var"][1].__setitem__(0, -1))
bad_model(f"{md}/nan_weight.safetensors", lambda t: t["Head_B.net.0.weight"][1].__setitem__((2, 3), np.nan))
def huge(t):
    t["Head_A.net.0.weight"][1][:] = 1e30
    t["Head_A.net.1.weight"][1][:] = 1e30
bad_model(f"{md}/overflowing.safetensors", huge)

# fuzz_pt recipes (see fuzz/fuzz_pt.c): each .pt seed's entries as name/length/data records,
# which the harness zips again, so that mutations reach the pickle rather than the zip's CRCs.
import zipfile
for name in sorted(os.listdir(pt)):
    if not name.endswith(".pt"): continue
    with zipfile.ZipFile(f"{pt}/{name}") as z:
        out = b""
        for e in z.infolist():
            d, n = z.read(e), e.filename.encode()
            out += bytes([len(n)]) + n + struct.pack("<I", len(d)) + d
    open(f"{pt}/recipe_{name[:-3]}.bin", "wb").write(out)
PYEOF
# fuzz_tokenizer: texts of the tokenizer's test corpus, small merge lists and HF files.
"$PY" "$ROOT/scripts/clip_ref_tokenizer.py" --seeds "$C/fuzz_tokenizer"
# fuzz_roberta_tokenizer: texts of RoBERTa's test strings, and a small vocab.json + merges.txt.
"$PY" "$ROOT/scripts/clap_ref_tokenizer.py" --seeds "$C/fuzz_roberta_tokenizer"
# fuzz_image: small JPEGs and PNGs of every kind the decoder handles.
"$PY" "$ROOT/scripts/clip_ref_image.py" --seeds "$C/fuzz_image"
# fuzz_overlay: the same images (their last byte picks the overlay's settings).
cp -r "$C/fuzz_image" "$C/fuzz_overlay"
# fuzz_clip: the headers of scripts/clip_reference.py's tiny CLIP (HF and OpenAI layouts),
# cut after the JSON; the harness appends the data they ask for (fuzz/fuzz_clip.c).
mkdir -p "$C"/fuzz_clip
"$PY" "$ROOT"/scripts/clip_reference.py --out "$T/clip" --size tiny >/dev/null
"$PY" - "$T/clip/tiny" "$C/fuzz_clip" <<'PYEOF'
import struct, sys
src, out = sys.argv[1], sys.argv[2]
for f, name in (("hf/model.safetensors", "hf_tiny_header"), ("openai.safetensors", "openai_tiny_header")):
    b = open(f"{src}/{f}", "rb").read()
    open(f"{out}/{name}.safetensors", "wb").write(b[:8 + struct.unpack("<Q", b[:8])[0]])
PYEOF
# fuzz_clip_config: the tiny model's Hugging Face config.json as written (quick_gelu), with
# "gelu", with the towers differing, and with a legacy text_config_dict that says "relu".
mkdir -p "$C"/fuzz_clip_config
"$PY" - "$T/clip/tiny/hf/config.json" "$C/fuzz_clip_config" <<'PYEOF'
import json, sys
src, out = sys.argv[1], sys.argv[2]
c = json.load(open(src))
open(f"{out}/quick_gelu.json", "w").write(json.dumps(c, indent=1))
for name, vis, txt in (("gelu", "gelu", "gelu"), ("mixed", "quick_gelu", "gelu")):
    c["vision_config"]["hidden_act"], c["text_config"]["hidden_act"] = vis, txt
    open(f"{out}/{name}.json", "w").write(json.dumps(c, indent=1))
c["text_config_dict"] = {"hidden_act": "relu"}
open(f"{out}/legacy_dict.json", "w").write(json.dumps(c))
PYEOF
# fuzz_audio: short WAV (16/24-bit, float), FLAC, Ogg Vorbis and MP3 files.
"$PY" "$ROOT/scripts/clap_ref_audio.py" --seeds "$C/fuzz_audio"
# fuzz_roberta: the header of scripts/clap_ref_roberta.py's tiny RoBERTa, cut after the JSON;
# the harness appends the data it asks for (fuzz/fuzz_roberta.c).
mkdir -p "$C"/fuzz_roberta
"$PY" "$ROOT"/scripts/clap_ref_roberta.py --out "$T/roberta" --size tiny >/dev/null
"$PY" - "$T/roberta/tiny/model.safetensors" "$C/fuzz_roberta/tiny_header.safetensors" <<'PYEOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(b[:8 + struct.unpack("<Q", b[:8])[0]])
PYEOF
# fuzz_htsat: the header of scripts/clap_ref_htsat.py's tiny HTSAT (two stages, a shifted
# block; without the optional buffers), cut after the JSON (fuzz/fuzz_htsat.c appends data).
"$PY" "$ROOT"/scripts/clap_ref_htsat.py --seeds "$C/fuzz_htsat"
# fuzz_points: scripts/points_fixtures.py's files with 40 points: .npy (f4, f8, Fortran, 2.0),
# the C-MCR demo's pickled dict (protocols 2-5), PLY ascii / binary LE and BE, text; and its
# refusals (hostile pickles, NaN, truncations, bad headers).
"$PY" "$ROOT"/scripts/points_fixtures.py --seeds "$C/fuzz_points"

# fuzz_pointbert: the header of scripts/pointbert_reference.py's tiny PointBERT (D 64, one
# block, E 8), cut after the JSON (fuzz/fuzz_pointbert.c appends data).
"$PY" "$ROOT"/scripts/pointbert_reference.py --seeds "$C/fuzz_pointbert"

# fuzz_gallery: galleries written by scripts/gallery.py (a second writer of the format): mixed
# modalities, no rows, non-UTF-8 and non-ASCII paths; and refusals (NaN, unsorted paths, no
# final NUL, a modality out of range, a wrong row count, version 2).
"$PY" "$ROOT"/scripts/gallery.py --seeds "$C/fuzz_gallery"
cd "$ROOT"
total=0
for f in "$C"/*/*; do
    n=$(stat -c %s "$f")
    [ "$n" -lt 10240 ] || { echo "make_seeds.sh: $f is $n bytes (limit 10 KB)" >&2; exit 1; }
    total=$((total + n))
done
echo "seeds: $(ls "$C"/*/* | wc -l) files, $total bytes"
