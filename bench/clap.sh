#!/bin/bash
# bench/clap.sh [--quick] - LAION-CLAP (HTSAT-tiny + RoBERTa-base, random weights in the real
# layout) from files to embeddings, cmcr against the PyTorch reference, in one run, at the
# same thread count:
#   1. sound files: 10 s clips (the shared 32 kHz WAVs, or generated ones), decoded,
#      resampled to 48 kHz, turned into log-mels and embedded, batch 32: `cmcr embed --audio`
#      vs scripts/clap_reference.py (soundfile + libsoxr + torchaudio + the PyTorch towers);
#   2. prompts from a file: 640 prompts tokenised and embedded, batch 32 (the reference pads
#      every prompt to 77 ids, as CLAP calls its tokenizer; needs the shared RoBERTa files).
# Each in float32 and in bf16 (cmcr --precision bf16 against PyTorch's own bf16 autocast), with
# the peak RSS of each process. Rates exclude loading the weights. Medians of runs; the ratios
# are what to read (the machine is shared). See docs/benchmarks.md.
#
# Environment: BENCH_THREADS (default: nproc), BENCH_BUILD (default: <repo>/build-bench),
# BENCH_TMP (default: /tmp/cmcr-bench-clap; about 1 GB for the weights), PYTHON (default:
# /usr/bin/python3 with torch, torchaudio, soundfile, numpy, regex), BENCH_NO_BUILD=1.
set -euo pipefail
RUNS=5
NCLIPS=64
for arg in "$@"; do
    case "$arg" in
    --quick) RUNS=3; NCLIPS=32 ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/clap.sh [--quick]" >&2; exit 2 ;;
    esac
done
. "$(dirname "$0")/lib.sh"
bench_setup clap "torch torchaudio soundfile numpy regex"
TOK=$DATA/tokenizers/roberta-base
CKPT=$WORK/weights/clap.pt
if [ ! -f "$CKPT" ]; then
    echo "making full-size random CLAP weights in $WORK/weights ..."
    rm -rf "$WORK/weights"
    "$PY" "$ROOT/scripts/clap_reference.py" --out "$WORK/weights" --size full >/dev/null
fi
CLIPS=$WORK/clips
if [ ! -f "$CLIPS/$NCLIPS.done" ]; then
    rm -rf "$CLIPS"
    mkdir -p "$CLIPS"
    "$PY" - "$CLIPS" "$NCLIPS" "$DATA/cmcr-assets" <<'EOF'
import os, shutil, sys, numpy as np, soundfile as sf
out, n, assets = sys.argv[1], int(sys.argv[2]), sys.argv[3]
wavs = [os.path.join(assets, f) for f in sorted(os.listdir(assets)) if f.endswith(".wav")] if os.path.isdir(assets) else []
r = np.random.default_rng(0)
for i in range(n):
    p = os.path.join(out, f"{i:04d}.wav")
    if wavs:
        shutil.copy(wavs[i % len(wavs)], p)
    else:  # 10 s at 32 kHz, like the shared sounds
        t = np.arange(320000) / 32000
        sf.write(p, (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.05 * r.standard_normal(t.size)).astype(np.float32),
                 32000, subtype="PCM_16")
open(os.path.join(out, f"{n}.done"), "w").close()
EOF
fi
"$PY" - "$ROOT/scripts" "$WORK/prompts.txt" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from clip_ref_tokenizer import COCO
open(sys.argv[2], "w").write("".join(f"the sound of a {c}\n" for c in COCO * 8))
EOF

run_kind() { # run_kind UNIT "CMCR ARGS" "REFERENCE ARGS"
    local unit=$1 cargs=$2 rargs=$3
    # shellcheck disable=SC2086
    measure "cmcr embed f32" "$unit" "$BUILD/cmcr" embed --model "$CKPT" $cargs --out "$WORK/c.npy" --batch 32
    local cf=$RATE
    # shellcheck disable=SC2086
    measure "PyTorch f32" "$unit" "$PY" "$ROOT/scripts/clap_reference.py" --weights "$CKPT" --size full $rargs \
        --out "$WORK/t.npy" --batch 32 --time
    local tf=$RATE
    same "$WORK/c.npy" "$WORK/t.npy"
    echo "  ratio f32: cmcr / PyTorch = $(ratio "$cf" "$tf")"
    # shellcheck disable=SC2086
    measure "cmcr embed bf16" "$unit" "$BUILD/cmcr" embed --model "$CKPT" $cargs --out "$WORK/cb.npy" --batch 32 \
        --precision bf16
    local cb=$RATE
    # shellcheck disable=SC2086
    measure "PyTorch bf16 autocast" "$unit" "$PY" "$ROOT/scripts/clap_reference.py" --weights "$CKPT" --size full \
        $rargs --out "$WORK/tb.npy" --batch 32 --time --bf16
    same "$WORK/cb.npy" "$WORK/t.npy"
    echo "  ratio bf16: cmcr bf16 / PyTorch bf16 autocast = $(ratio "$cb" "$RATE")"
}

echo "== 1. sound files: $NCLIPS clips of 10 s, batch 32, $THREADS threads (medians of $RUNS)"
run_kind clips "--audio $CLIPS" "--audio $CLIPS/*.wav"
if [ ! -f "$TOK/vocab.json" ]; then
    echo "== 2. prompts: skipped ($TOK is absent)"
    exit 0
fi
echo "== 2. prompts from a file: 640 prompts, batch 32, $THREADS threads (medians of $RUNS)"
run_kind prompts "--text $WORK/prompts.txt --tokenizer $TOK" "--text $WORK/prompts.txt --tokenizer $TOK"
