#!/bin/bash
# bench/clip.sh [--quick] - the CLIP encoders (ViT-B/32 with random weights) against the PyTorch
# reference, in one run, at the same thread count:
#   1. the towers alone, batch 32: images/s and prompts/s (full 77-token rows), float32 and
#      bf16 (cmcr: bench_clip; PyTorch: scripts/clip_reference.py --bench, float32 and its own
#      bf16 autocast);
#   2. from files, as a user runs it: 64 JPEG photos (1920x1080, or the shared photos) decoded,
#      resized, cropped and embedded, batch 32: `cmcr embed` vs scripts/clip_embed_reference.py
#      (Pillow + the same towers), after loading the weights, and the peak RSS of each process;
#   3. prompts from a file: the 80 COCO prompts "a photo of a {class}." x 8, tokenised and
#      embedded, batch 32 (the reference pads a batch to its longest prompt, as Hugging Face's
#      tokenizer does with padding=True; needs the shared CLIP vocabulary).
# Medians of runs; the ratios are what to read (the machine is shared). See docs/benchmarks.md.
#
# Environment: BENCH_THREADS (default: nproc), BENCH_BUILD (default: <repo>/build-bench),
# BENCH_TMP (default: /tmp/cmcr-bench-clip; about 1.3 GB for the weights), PYTHON (default:
# /usr/bin/python3 with torch, numpy, PIL and regex), BENCH_NO_BUILD=1.
set -euo pipefail
RUNS=5
NIMG=64
for arg in "$@"; do
    case "$arg" in
    --quick) RUNS=3; NIMG=32 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/clip.sh [--quick]" >&2; exit 2 ;;
    esac
done
. "$(dirname "$0")/lib.sh"
bench_setup clip "torch numpy PIL regex" bench_clip

# The weights: the full-size fixture (HF folder and OpenAI .pt), made once in WORK.
W=$WORK/weights/full
if [ ! -f "$W/openai.pt" ]; then
    echo "making ViT-B/32 random weights in $WORK/weights ..."
    rm -rf "$WORK/weights"
    "$PY" "$ROOT/scripts/clip_reference.py" --out "$WORK/weights" --size full >/dev/null
fi

echo "== 1. the towers alone, batch 32, $THREADS threads (medians of $RUNS)"
"$BUILD/bench/bench_clip" "$W/hf" 32 "$RUNS" | tee "$WORK/c.txt"
"$PY" "$ROOT/scripts/clip_reference.py" --bench --size full --batch 32 --threads "$THREADS" --runs "$RUNS" |
    tee "$WORK/torch.txt"
rate() { grep -F "$2" "$1" | grep -F "$3" | sed -E 's/.*: ([0-9.]+) \/s.*|.* ([0-9.]+) (images|prompts)\/s.*/\1\2/' | head -1; }
for what in images prompts; do
    tf=$(rate "$WORK/torch.txt" "f32 " "$what")
    tb=$(rate "$WORK/torch.txt" "bf16" "$what")
    cf=$(rate "$WORK/c.txt" "f32 " "$what")
    cb=$(rate "$WORK/c.txt" "bf16" "$what")
    echo "ratio $what: cmcr f32 / torch f32 = $(ratio "$cf" "$tf"); cmcr bf16 / torch bf16 autocast = $(ratio "$cb" "$tb")"
done

echo "== 2. from files: $NIMG photos, batch 32, $THREADS threads (medians of $RUNS)"
IMG=$WORK/images
if [ ! -f "$IMG/$NIMG.done" ]; then
    rm -rf "$IMG"
    mkdir -p "$IMG"
    "$PY" - "$IMG" "$NIMG" "$DATA/cmcr-assets" <<'EOF'
import os, sys, numpy as np
from PIL import Image
out, n, assets = sys.argv[1], int(sys.argv[2]), sys.argv[3]
photos = [os.path.join(assets, f) for f in sorted(os.listdir(assets)) if f.endswith(".jpeg")] if os.path.isdir(assets) else []
r = np.random.default_rng(0)
for i in range(n):
    if photos:
        im = Image.open(photos[i % len(photos)]).convert("RGB")
    else:  # smooth random photos-like content, 1920x1080
        small = r.integers(0, 256, (27, 48, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize((1920, 1080), Image.BICUBIC)
    im.save(os.path.join(out, f"{i:04d}.jpg"), quality=92)
open(os.path.join(out, f"{n}.done"), "w").close()
EOF
fi
: >"$WORK/c_files.txt"
: >"$WORK/t_files.txt"
for r in $(seq "$RUNS"); do
    /usr/bin/time -f "rss %M" "$BUILD/cmcr" embed --model "$W/hf" --images "$IMG" --out "$WORK/c_emb.npy" \
        --batch 32 2>"$WORK/c_run.txt" || { cat "$WORK/c_run.txt"; exit 1; }
    echo "$(grep -o '([0-9.]* images/s)' "$WORK/c_run.txt" | tr -d '(' | cut -d' ' -f1) $(grep -o 'rss [0-9]*' "$WORK/c_run.txt" | cut -d' ' -f2)" >>"$WORK/c_files.txt"
    /usr/bin/time -f "rss %M" "$PY" "$ROOT/scripts/clip_embed_reference.py" --weights "$W/openai.pt" --time \
        --images "$IMG"/*.jpg --out "$WORK/t_out" --batch 32 >"$WORK/t_run.txt" 2>&1 || { cat "$WORK/t_run.txt"; exit 1; }
    echo "$(grep -o '([0-9.]* images/s)' "$WORK/t_run.txt" | tr -d '(' | cut -d' ' -f1) $(grep -o 'rss [0-9]*' "$WORK/t_run.txt" | cut -d' ' -f2)" >>"$WORK/t_files.txt"
done
c_rate=$(cut -d' ' -f1 "$WORK/c_files.txt" | median)
t_rate=$(cut -d' ' -f1 "$WORK/t_files.txt" | median)
c_rss=$(cut -d' ' -f2 "$WORK/c_files.txt" | median)
t_rss=$(cut -d' ' -f2 "$WORK/t_files.txt" | median)
echo "cmcr embed:            $c_rate images/s, peak RSS $((c_rss / 1024)) MiB"
echo "PyTorch + Pillow:      $t_rate images/s, peak RSS $((t_rss / 1024)) MiB"
echo "ratio from files: cmcr f32 / torch f32 = $(ratio "$c_rate" "$t_rate")"
"$PY" -c "
import numpy as np
a, b = np.load('$WORK/c_emb.npy'), np.load('$WORK/t_out/image_emb.npy')
print(f'same embeddings: max abs difference {np.abs(a - b).max():.2e} over {a.shape[0]} images')"

VOCAB=$DATA/tokenizers/clip/bpe_simple_vocab_16e6.txt.gz
if [ ! -f "$VOCAB" ]; then
    echo "== 3. prompts: skipped ($VOCAB is absent)"
    exit 0
fi
echo "== 3. prompts from a file: 640 COCO prompts, batch 32, $THREADS threads (medians of $RUNS)"
"$PY" - "$ROOT/scripts" "$WORK/prompts.txt" <<'PY_END'
import sys
sys.path.insert(0, sys.argv[1])
from clip_ref_tokenizer import COCO
open(sys.argv[2], "w").write("".join(f"a photo of a {c}.\n" for c in COCO * 8))
PY_END
: >"$WORK/c_text.txt"
: >"$WORK/t_text.txt"
for r in $(seq "$RUNS"); do
    "$BUILD/cmcr" embed --model "$W/openai.pt" --tokenizer "$VOCAB" --text "$WORK/prompts.txt" \
        --out "$WORK/c_text.npy" --batch 32 2>"$WORK/c_run.txt" || { cat "$WORK/c_run.txt"; exit 1; }
    grep -o '([0-9.]* prompts/s)' "$WORK/c_run.txt" | tr -d '(' | cut -d' ' -f1 >>"$WORK/c_text.txt"
    "$PY" "$ROOT/scripts/clip_embed_reference.py" --weights "$W/openai.pt" --time --text "$WORK/prompts.txt" \
        --tokenizer "$VOCAB" --out "$WORK/t_out" --batch 32 >"$WORK/t_run.txt" 2>&1 || { cat "$WORK/t_run.txt"; exit 1; }
    grep -o '([0-9.]* prompts/s)' "$WORK/t_run.txt" | tr -d '(' | cut -d' ' -f1 >>"$WORK/t_text.txt"
done
c_rate=$(median <"$WORK/c_text.txt")
t_rate=$(median <"$WORK/t_text.txt")
echo "cmcr embed --text:              $c_rate prompts/s"
echo "PyTorch + reference tokenizer:  $t_rate prompts/s"
echo "ratio prompts from a file: cmcr f32 / torch f32 = $(ratio "$c_rate" "$t_rate")"
"$PY" -c "
import numpy as np
a, b = np.load('$WORK/c_text.npy'), np.load('$WORK/t_out/text_emb.npy')
print(f'same embeddings: max abs difference {np.abs(a - b).max():.2e} over {a.shape[0]} prompts')"
