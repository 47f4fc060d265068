#!/usr/bin/env bash
# cmcr localise and cmcr eval localisation (issue 18) through the connection of the `search`
# fixture (side a: the small random-weight CLAP, side b: the small CLIP). The encoders are
# random, so this checks mechanics against independent recomputations, not meaning:
#  1. the 7 x 7 --map equals NumPy's dot of `cmcr embed --patches` + `cmcr project` rows;
#  2. the overlay PNG decodes (PIL) at the image's size, equals the image outside the crop
#     window, equals a NumPy recomputation inside it (colours within 1 of 255), and the box is
#     a NumPy recomputation's (the upsampling written out in float32 as PyTorch computes it,
#     which tests/test_localise.c checks against F.interpolate; the largest 4-connected region
#     by a breadth-first search);
#  3. a prompt (--text) through CLAP's text tower, and --json;
#  4. eval localisation on a generated labelled set: the CSV and JSON forms give the same
#     numbers, and each cIoU is LVS's code (scripts/localise_reference.py) on the recomputed map;
#  5. refusals: one line each, nothing written;
#  6. the real photos and sounds of the shared test data, when present.
. "$(dirname "$0")/lib.sh"
need_numpy "for the recomputations"
"$PY" -c 'import PIL' 2>/dev/null || { echo "SKIPPED: needs Debian's python3-pil"; exit 77; }
F=${CMCR_FIXTURES:?}
M=$F/search/clap_clip.safetensors
EA=$F/clap_small/clap.pt
EB=$F/clip_small/small/openai.pt
for f in "$M" "$EA" "$EB"; do
    [ -f "$f" ] || { echo "SKIPPED: $f is missing (ctest's fixtures search, clap_small and clip_small make it)"; exit 77; }
done
DATA=${CMCR_TESTDATA:-${CMCR_TESTDATA_DEFAULT:-}}
SCRIPTS=$(cd "$(dirname "$0")/../scripts" && pwd)
scratch localise
cd "$T" || exit 1
SP=(--model "$M" --encoder-a "$EA" --encoder-b "$EB" --quiet)

# The recomputations, shared by the steps below.
cat >ref.py <<'EOF'
import json, sys
from collections import deque
import numpy as np
f32 = np.float32

def taps(n_in, n_out):  # PyTorch's source index and weights of one axis, in float32
    s = f32(n_in) / f32(n_out) * (np.arange(n_out, dtype=f32) + f32(0.5)) - f32(0.5)
    s = np.maximum(s, f32(0))
    a = s.astype(np.int64)
    l = np.clip(s - a.astype(f32), f32(0), f32(1))
    return a, a + (a < n_in - 1), f32(1) - l, l

def upsample(x, oh, ow):
    ya, yb, h0, h1 = taps(x.shape[0], oh)
    xa, xb, w0, w1 = taps(x.shape[1], ow)
    r0, r1 = x.astype(f32)[ya], x.astype(f32)[yb]
    t0 = r0[:, xa] * w0 + r0[:, xb] * w1
    t1 = r1[:, xa] * w0 + r1[:, xb] * w1
    return t0 * h0[:, None] + t1 * h1[:, None]

def geometry(w, h, s=224):
    short, long = (w, h) if w <= h else (h, w)
    nl = int(s * long / short)
    nw, nh = (s, nl) if w <= h else (nl, s)
    return nw, nh, (nw - s) // 2, (nh - s) // 2

def window(w, h, s=224):
    nw, nh, left, top = geometry(w, h, s)
    def axis(L, n, off):
        j = np.arange(L)
        inside = np.nonzero(((2 * j + 1) * n >= 2 * off * L) & ((2 * j + 1) * n < 2 * (off + s) * L))[0]
        return int(inside[0]), int(inside[-1]) + 1
    (x0, x1), (y0, y1) = axis(w, nw, left), axis(h, nh, top)
    return x0, y0, x1, y1

def normalise(x):
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)

def largest_region(m, thr):  # ties: higher peak, then first in raster order
    h, w = m.shape
    seen = np.zeros(m.shape, bool)
    on = m >= f32(thr)
    best = None
    for start in zip(*np.nonzero(on)):
        if seen[start]:
            continue
        q, seen[start], cells = deque([start]), True, []
        while q:
            y, x = q.popleft()
            cells.append((y, x))
            for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= yy < h and 0 <= xx < w and on[yy, xx] and not seen[yy, xx]:
                    seen[yy, xx] = True
                    q.append((yy, xx))
        ys, xs = zip(*cells)
        r = (len(cells), max(m[c] for c in cells), (min(xs), min(ys), max(xs) + 1, max(ys) + 1))
        if best is None or r[0] > best[0] or (r[0] == best[0] and r[1] > best[1]):
            best = r
    return best[2] if best else None

def jet(v):
    return np.stack([np.clip(f32(1.5) - np.abs(f32(4) * v - f32(k)), f32(0), f32(1)) for k in (3, 2, 1)], -1)
EOF
export PYTHONPATH=$T:$SCRIPTS

# Generated images (a wide and a tall one) and the fixture's sounds.
"$PY" - <<'EOF' || fail "writing the images"
import numpy as np
from PIL import Image
r = np.random.default_rng(5)
for name, (w, h) in {"wide.png": (150, 100), "tall.jpg": (90, 160), "square.png": (64, 64), "big.png": (300, 200)}.items():
    yy, xx = np.mgrid[0:h, 0:w]
    im = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], -1) + r.integers(0, 30, (h, w, 3))
    Image.fromarray(np.clip(im, 0, 255).astype(np.uint8)).save(name)
EOF
cp "$F/clap_small/audio/a_short.wav" dog.wav
cp "$F/clap_small/audio/c_stereo.flac" horn.flac
cp "$F/clap_small/audio/e_8k.ogg" bird.ogg

# 1. The map: NumPy's dot of the projected patch and sound rows.
"$BIN" localise "${SP[@]}" --audio dog.wav --image wide.png --out wide_o.png --map wide_m.npy --json >wide.json ||
    fail "localise wide.png"
"$BIN" embed --model "$EB" --images wide.png --out ie.npy --patches ip.npy --quiet || fail "embed --patches"
"$BIN" embed --model "$EA" --audio dog.wav --out ae.npy --quiet || fail "embed --audio"
"$PY" -c 'import numpy as np; p = np.load("ip.npy"); np.save("ip2.npy", p.reshape(-1, p.shape[-1]))'
"$BIN" project --model "$M" --side b --in ip2.npy --out pp.npy || fail "project the patches"
"$BIN" project --model "$M" --side a --in ae.npy --out ap.npy || fail "project the sound"
"$PY" - <<'EOF' || fail "the map is not the dot of the projected rows"
import numpy as np
m, p, a = np.load("wide_m.npy"), np.load("pp.npy"), np.load("ap.npy")
ref = (p.astype(np.float64) @ a[0].astype(np.float64)).reshape(7, 7)
d = np.abs(m - ref).max()
print(f"  --map vs embed --patches + project + dot: {m.shape}, max abs difference {d:.3g}")
assert m.shape == (7, 7) and d <= 1e-5, d
EOF

# 2. The overlay: size, outside the window untouched, inside as recomputed, the box.
check_overlay() { # IMAGE OVERLAY JSON MAP [THRESHOLD ALPHA]
    "$PY" - "$@" <<'EOF'
import json, sys
import numpy as np
from PIL import Image
from ref import *
img, ov, js, mp = sys.argv[1:5]
thr, alpha = (float(sys.argv[5]), float(sys.argv[6])) if len(sys.argv) > 6 else (0.5, 0.5)
j = json.load(open(js))
src = np.asarray(Image.open(img).convert("RGB"))
out = np.asarray(Image.open(ov).convert("RGB"))
h, w = src.shape[:2]
assert out.shape == src.shape, (out.shape, src.shape)
x0, y0, x1, y1 = window(w, h)
assert j["window"] == [x0, y0, x1, y1], (j["window"], (x0, y0, x1, y1))
mask = np.zeros((h, w), bool)
mask[y0:y1, x0:x1] = True
assert (out[~mask] == src[~mask]).all(), "pixels outside the crop window changed"
m = np.load(mp)
heat = normalise(upsample(m, y1 - y0, x1 - x0))
box = largest_region(heat, thr)
want = None if box is None else [box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0]
assert j["box"] == want, (j["box"], want)
a = f32(alpha)
blend = np.floor((f32(1) - a) * src[y0:y1, x0:x1].astype(f32) + a * f32(255) * jet(heat) + f32(0.5))
got = out[y0:y1, x0:x1].astype(np.int64)
white = (got == 255).all(-1)
d = np.abs(got - blend)[~white].max()
print(f"  {img} {w}x{h}: window {x0},{y0},{x1},{y1}, box {j['box']}, pixels inside vs recomputed: max difference {d:.0f}")
assert d <= 1, d
if want:
    bx0, by0, bx1, by1 = want
    assert white[by0 - y0, bx0 - x0: bx1 - x0].all() and white[by1 - 1 - y0, bx0 - x0: bx1 - x0].all(), "no outline"
EOF
}
check_overlay wide.png wide_o.png wide.json wide_m.npy || fail "the overlay of wide.png"
"$BIN" localise "${SP[@]}" --audio horn.flac --image tall.jpg --out tall_o.png --map tall_m.npy --json \
    --threshold 0.8 --alpha 0.8 >tall.json || fail "localise tall.jpg"
check_overlay tall.jpg tall_o.png tall.json tall_m.npy 0.8 0.8 || fail "the overlay of tall.jpg"
# --max-side: the longer side scaled to it, the box still in the image's pixels.
"$BIN" localise "${SP[@]}" --audio horn.flac --image tall.jpg --out tall_s.png --json --threshold 0.8 --alpha 0.8 \
    --max-side 80 >tall_s.json || fail "--max-side"
"$PY" - <<'EOF' || fail "--max-side"
import json
from PIL import Image
a, b = json.load(open("tall.json")), json.load(open("tall_s.json"))
assert Image.open("tall_s.png").size == (45, 80), Image.open("tall_s.png").size
assert a["box"] == b["box"] and b["out_size"] == [45, 80], (a["box"], b["box"], b["out_size"])
EOF
# The text form prints the same box.
"$BIN" localise "${SP[@]}" --audio dog.wav --image wide.png --out wide_t.png >wide.txt || fail "localise (text)"
"$PY" - <<'EOF' || fail "the text report: $(cat wide.txt)"
import json
j, t = json.load(open("wide.json")), open("wide.txt").read()
x0, y0, x1, y1 = j["box"]
assert f"box      x {x0}..{x1 - 1}, y {y0}..{y1 - 1}" in t, t
assert f"cell (row {j['peak']['row']}, column {j['peak']['column']}) of 7 x 7" in t, t
EOF
cmp -s wide_o.png wide_t.png || fail "the same localisation gave two different overlays"

# 3. A prompt through CLAP's text tower (the RoBERTa files of the shared test data).
ROB=$DATA/tokenizers/roberta-base
if [ -f "$ROB/vocab.json" ]; then
    "$BIN" localise "${SP[@]}" --tokenizer-a "$ROB" --text "a dog barking" --image square.png --out sq_o.png \
        --map sq_m.npy --json >sq.json || fail "localise --text"
    echo "a dog barking" >p.txt
    "$BIN" embed --model "$EA" --tokenizer "$ROB" --text p.txt --out te.npy --quiet || fail "embed the prompt"
    "$BIN" embed --model "$EB" --images square.png --out se.npy --patches sp.npy --quiet || fail "embed square.png"
    "$PY" -c 'import numpy as np; p = np.load("sp.npy"); np.save("sp2.npy", p.reshape(-1, p.shape[-1]))'
    "$BIN" project --model "$M" --side a --in te.npy --out tp.npy && "$BIN" project --model "$M" --side b --in sp2.npy \
        --out spp.npy || fail "project"
    "$PY" - <<'EOF' || fail "the prompt's map"
import json, numpy as np
m, p, t = np.load("sq_m.npy"), np.load("spp.npy"), np.load("tp.npy")
d = np.abs(m - (p.astype(np.float64) @ t[0]).reshape(7, 7)).max()
j = json.load(open("sq.json"))
print(f"  --text map vs embed --text + project + dot: max abs difference {d:.3g}")
assert d <= 1e-5 and j["query"] == {"text": "a dog barking"} and np.allclose(j["map"], m, atol=1e-6)
EOF
    check_overlay square.png sq_o.png sq.json sq_m.npy || fail "the overlay of square.png"
else
    echo "note: no RoBERTa tokenizer in the shared test data ($ROB): the --text part is skipped"
fi

# 4. eval localisation on a generated set: CSV and JSON alike, each cIoU as LVS computes it.
mkdir -p set/img set/snd
cp wide.png tall.jpg square.png big.png set/img/
cp dog.wav horn.flac bird.ogg set/snd/
cat >set/labels.csv <<'EOF'
image,audio,x0,y0,x1,y1
img/wide.png,snd/dog.wav,20,10,90,70
img/tall.jpg,snd/horn.flac,0,0,90,80
img/square.png,snd/bird.ogg,5.5,8,40.25,60
img/wide.png,snd/horn.flac,60,0,150,100
img/big.png,snd/dog.wav,100,20,180,120
img/square.png,snd/bird.ogg,30,30,64,64
img/big.png,snd/bird.ogg,0,0,300,200
EOF
"$PY" - <<'EOF' || fail "writing labels.json"
import csv, json
rows, items = list(csv.DictReader(open("set/labels.csv"))), {}
for r in rows:
    items.setdefault((r["image"], r["audio"]), []).append([float(r[k]) for k in ("x0", "y0", "x1", "y1")])
json.dump([{"image": i, "audio": a, "boxes": b} for (i, a), b in items.items()], open("set/labels.json", "w"))
EOF
"$BIN" eval localisation --set set/labels.csv "${SP[@]}" --per-item --json >e_csv.json || fail "eval localisation (CSV)"
"$BIN" eval localisation --set set/labels.json "${SP[@]}" --per-item --json >e_json.json || fail "eval localisation (JSON)"
"$BIN" eval localisation --set set/labels.csv "${SP[@]}" >e_csv.txt || fail "eval localisation (table)"
cmp -s e_csv.json e_json.json || fail "CSV and JSON gave different reports"
(cd set && "$BIN" embed --model "$EB" --images img/wide.png img/tall.jpg img/square.png img/wide.png img/big.png \
    img/big.png --out ../eie.npy --patches ../eip.npy --quiet && "$BIN" embed --model "$EA" --audio snd/dog.wav \
    snd/horn.flac snd/bird.ogg snd/horn.flac snd/dog.wav snd/bird.ogg --out ../eae.npy --quiet) || fail "embed the set"
"$PY" -c 'import numpy as np; p = np.load("eip.npy"); np.save("eip2.npy", p.reshape(-1, p.shape[-1]))'
"$BIN" project --model "$M" --side b --in eip2.npy --out epp.npy && "$BIN" project --model "$M" --side a --in eae.npy \
    --out eap.npy || fail "project the set"
"$PY" - <<'EOF' || fail "the cIoU of the set"
import json
import numpy as np
from PIL import Image
from ref import upsample
from localise_reference import lvs_ciou, lvs_auc, crop_box
j = json.load(open("e_csv.json"))
items = json.load(open("set/labels.json"))
assert j["samples"] == len(items) == 6 and len(j["items"]) == 6, j
p, a = np.load("epp.npy").reshape(6, 49, -1), np.load("eap.npy")
worst, cious = 0.0, []
for k, (it, got) in enumerate(zip(items, j["items"])):
    assert got["image"] == "set/" + it["image"] and got["audio"] == "set/" + it["audio"], (got, it)
    w, h = Image.open("set/" + it["image"]).size
    boxes = [crop_box(w, h, 224, b) for b in it["boxes"]]
    heat = upsample((p[k] @ a[k]).reshape(7, 7).astype(np.float32), 224, 224)
    c = float(lvs_ciou(heat, boxes))
    cious.append(c)
    worst = max(worst, abs(c - got["ciou"]))
print(f"  per-item cIoU vs LVS's code on the recomputed maps: {[round(c, 4) for c in cious]}, max difference {worst:.3g}")
assert worst <= 1e-3, worst  # the maps differ by float rounding (another dot), so a pixel may tie differently
assert abs(j["ciou@0.5"] - np.mean(np.array([i["ciou"] for i in j["items"]]) >= 0.5)) == 0
assert abs(j["auc"] - lvs_auc([i["ciou"] for i in j["items"]])) <= 1e-12, (j["auc"], lvs_auc([i["ciou"] for i in j["items"]]))
t = open("e_csv.txt").read()
assert "samples   6" in t and f"AUC       {j['auc']:.4f}" in t, t
EOF
# One item exactly: LVS's code on the map of cmcr localise for it gives eval's cIoU to the bit.
"$BIN" localise "${SP[@]}" --audio set/snd/bird.ogg --image set/img/square.png --out sq2.png --map sq2_m.npy >/dev/null ||
    fail "localise square.png"
"$PY" - <<'EOF' || fail "item 2's cIoU"
import json, numpy as np
from ref import upsample
from localise_reference import lvs_ciou, crop_box
j = json.load(open("e_csv.json"))
boxes = [crop_box(64, 64, 224, b) for b in ([5.5, 8, 40.25, 60], [30, 30, 64, 64])]
c = float(lvs_ciou(upsample(np.load("sq2_m.npy"), 224, 224), boxes))
assert c == j["items"][2]["ciou"], (c, j["items"][2]["ciou"])
EOF

# 5. Refusals: one line each, naming the culprit; nothing written.
echo "not an image" >fake.png
cp set/labels.csv in.png
NAMES=(missing.png)
refusal "a missing image" "$BIN" localise "${SP[@]}" --audio dog.wav --image missing.png --out out.png
NAMES=(missing.wav)
refusal "a missing sound" "$BIN" localise "${SP[@]}" --audio missing.wav --image wide.png --out out.png
NAMES=(fake.png "not a JPEG or PNG")
refusal "a file that is not an image" "$BIN" localise "${SP[@]}" --audio dog.wav --image fake.png --out out.png
NAMES=(in.png "--out" "--image")
refusal "--out is the image" "$BIN" localise "${SP[@]}" --audio dog.wav --image in.png --out in.png
NAMES=(out.jpg ".png")
refusal "--out not a .png" "$BIN" localise "${SP[@]}" --audio dog.wav --image wide.png --out out.jpg
NAMES=("CLIP side")
refusal "no CLIP side" "$BIN" localise --model "$M" --encoder-a "$EA" --audio dog.wav --image wide.png --out out.png
NAMES=("--audio" "--text")
refusal "both --audio and --text" "$BIN" localise "${SP[@]}" --audio dog.wav --text "a dog" --image wide.png --out out.png
NAMES=("--threshold")
refusal "--threshold 2" "$BIN" localise "${SP[@]}" --audio dog.wav --image wide.png --out out.png --threshold 2
NAMES=(wide.png "sound file")
refusal "an image as --audio" "$BIN" localise "${SP[@]}" --audio wide.png --image wide.png --out out.png
bad_set() { # NAME CONTENT: a set file in set/ (so that its relative paths resolve)
    printf '%s' "$2" >"set/$1"
}
bad_set header.csv $'image,sound,x0,y0,x1,y1\nimg/wide.png,snd/dog.wav,1,1,5,5\n'
NAMES=("set/header.csv:1" "header")
refusal "a CSV without its header" "$BIN" eval localisation --set set/header.csv "${SP[@]}"
bad_set fields.csv $'image,audio,x0,y0,x1,y1\nimg/wide.png,snd/dog.wav,1,1,5,5\nimg/wide.png,snd/dog.wav,1,1,5\n'
NAMES=("set/fields.csv:3" "6 fields")
refusal "a CSV line of 5 fields" "$BIN" eval localisation --set set/fields.csv "${SP[@]}"
bad_set number.csv $'image,audio,x0,y0,x1,y1\nimg/wide.png,snd/dog.wav,1,1,5,abc\n'
NAMES=("set/number.csv:2" "y1")
refusal "a CSV box edge that is not a number" "$BIN" eval localisation --set set/number.csv "${SP[@]}"
bad_set quote.csv $'image,audio,x0,y0,x1,y1\n"img/wide.png,snd/dog.wav,1,1,5,5\n'
NAMES=("set/quote.csv:2" "quoted")
refusal "a CSV quote left open" "$BIN" eval localisation --set set/quote.csv "${SP[@]}"
bad_set past.csv $'image,audio,x0,y0,x1,y1\nimg/wide.png,snd/dog.wav,1,1,151,5\n'
NAMES=("set/past.csv:2" "150x100")
refusal "a box past the image" "$BIN" eval localisation --set set/past.csv "${SP[@]}"
bad_set outside.csv $'image,audio,x0,y0,x1,y1\nimg/wide.png,snd/dog.wav,0,0,20,100\n'
NAMES=("set/outside.csv:2" "CLIP sees")
refusal "a box outside the centre crop" "$BIN" eval localisation --set set/outside.csv "${SP[@]}"
bad_set noimg.csv $'image,audio,x0,y0,x1,y1\nimg/none.png,snd/dog.wav,0,0,20,100\n'
NAMES=("set/noimg.csv:2" "none.png")
refusal "a set's missing image" "$BIN" eval localisation --set set/noimg.csv "${SP[@]}"
bad_set nosnd.csv $'image,audio,x0,y0,x1,y1\nimg/wide.png,snd/none.wav,40,0,120,100\n'
NAMES=("set/nosnd.csv:2" "none.wav")
refusal "a set's missing sound" "$BIN" eval localisation --set set/nosnd.csv "${SP[@]}"
bad_set broken.json '[{"image": "img/wide.png", "audio": "snd/dog.wav", "boxes": [[1, 2, 3, 4]]},'
NAMES=("set/broken.json" "JSON")
refusal "JSON cut short" "$BIN" eval localisation --set set/broken.json "${SP[@]}"
bad_set box3.json '[{"image": "img/wide.png", "audio": "snd/dog.wav", "boxes": [[1, 2, 3, 4]]}, {"image": "img/wide.png", "audio": "snd/dog.wav", "boxes": [[1, 2, 3]]}]'
NAMES=("set/box3.json: item 1" "box 0")
refusal "a JSON box of 3 numbers" "$BIN" eval localisation --set set/box3.json "${SP[@]}"
NAMES=(labels.txt ".csv or .json")
refusal "a set that is neither CSV nor JSON" "$BIN" eval localisation --set labels.txt "${SP[@]}"
NAMES=("CLIP side")
refusal "eval without a CLIP side" "$BIN" eval localisation --set set/labels.csv --model "$M" --encoder-a "$EA"

# 6. The real photos and sounds of the shared test data.
A=$DATA/cmcr-assets
if [ -f "$A/train.jpeg" ]; then
    for n in train BBQ toilet; do
        "$BIN" localise "${SP[@]}" --audio "$A/$n.wav" --image "$A/$n.jpeg" --out "real_$n.png" --map "real_$n.npy" \
            --max-side 512 --json >"real_$n.json" || fail "localise $n"
    done
    "$PY" - "$A" <<'EOF' || fail "the real photos"
import json, sys
import numpy as np
from PIL import Image
from ref import window
for n in ("train", "BBQ", "toilet"):
    j, src = json.load(open(f"real_{n}.json")), Image.open(f"{sys.argv[1]}/{n}.jpeg")
    out = Image.open(f"real_{n}.png")
    w, h = src.size
    assert j["size"] == [w, h] and max(out.size) == min(512, max(w, h)), (j["size"], out.size)
    assert j["window"] == list(window(w, h)), (j["window"], window(w, h))
    b = j["box"]
    assert b is None or (j["window"][0] <= b[0] < b[2] <= j["window"][2] and j["window"][1] <= b[1] < b[3] <= j["window"][3])
    assert np.allclose(np.load(f"real_{n}.npy"), j["map"], atol=1e-6)
    print(f"  {n}.jpeg {w}x{h}: window {j['window']}, box {b}, overlay {out.size}")
EOF
    printf 'image,audio,x0,y0,x1,y1\n' >real.csv
    for n in train BBQ toilet; do printf '%s,%s,%s\n' "$A/$n.jpeg" "$A/$n.wav" "300,100,900,600" >>real.csv; done
    "$BIN" eval localisation --set real.csv "${SP[@]}" --json >real_eval.json || fail "eval on the real photos"
    "$PY" -c 'import json; j = json.load(open("real_eval.json")); assert j["samples"] == 3 and 0 <= j["auc"] <= 1, j' ||
        fail "the real photos' report"
else
    echo "note: no shared test data at $A: the real photos are skipped"
fi

finish cli_localise
