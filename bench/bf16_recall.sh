#!/bin/bash
# bench/bf16_recall.sh - does bfloat16 change what C-MCR learns? On the built-in synthetic
# world (defaults), aggregate both memories in f32 and in bf16, time them, train the same
# connection on each (cmcr train --pseudo-a/-b; ulip-clip, batch 1024, 4 epochs, as cmcr
# demo) and compare X->Y and Y->X Recall@1/5/10 on the 2,000 held-out pairs. Each model is
# evaluated with f32 and with bf16 retrieval scores (--precision): those two must print the
# same table (bf16 retrieval re-scores what its error bound cannot decide). Last, training
# itself in bf16 (cmcr train --precision bf16, on the f32 pseudo embeddings) against f32, for
# both presets (clap-clip at batch 4096 and 20 epochs too), with the time of each.
# Environment: BENCH_BUILD (default <repo>/build), BENCH_TMP (default /tmp/cmcr-bf16).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BENCH_BUILD:-$ROOT/build}/cmcr
W=${BENCH_TMP:-/tmp/cmcr-bf16}
mkdir -p "$W"
"$BIN" info | grep -q "bfloat16.*built in (oneDNN)" || { echo "bf16_recall.sh: $BIN lacks oneDNN" >&2; exit 1; }
[ -f "$W/world/overlap_a.npy" ] || "$BIN" synth --out "$W/world" >/dev/null
for pr in f32 bf16; do
    for s in a b; do
        "$BIN" aggregate --queries "$W/world/overlap_$s.npy" --memory "$W/world/memory_$s.npy" \
            --out "$W/pseudo_${s}_$pr.npy" --precision $pr 2>&1 | sed "s/^/  $pr side $s: /"
    done
    "$BIN" train --overlap-a "$W/world/overlap_a.npy" --overlap-b "$W/world/overlap_b.npy" \
        --pseudo-a "$W/pseudo_a_$pr.npy" --pseudo-b "$W/pseudo_b_$pr.npy" --preset ulip-clip --batch 1024 \
        --epochs 4 --quiet --cache-dir none --out "$W/model_$pr.safetensors" 2>/dev/null
    for ev in f32 bf16; do
        echo "  aggregation $pr, retrieval scores $ev:"
        "$BIN" eval retrieval --model "$W/model_$pr.safetensors" --query "$W/world/test_x.npy" --query-side a \
            --gallery "$W/world/test_y.npy" --gallery-side b --both-directions --precision $ev | sed 's/^/    /'
    done
done

train() { # name preset batch epochs precision: train on the f32 pseudo embeddings, time it
    local t0=$(date +%s.%N)
    "$BIN" train --overlap-a "$W/world/overlap_a.npy" --overlap-b "$W/world/overlap_b.npy" \
        --pseudo-a "$W/pseudo_a_f32.npy" --pseudo-b "$W/pseudo_b_f32.npy" --preset "$2" --batch "$3" \
        --epochs "$4" --precision "$5" --quiet --cache-dir none --out "$W/$1.safetensors" 2>/dev/null
    echo "  training $2, batch $3, $4 epochs, products in $5: $(echo "$(date +%s.%N) - $t0" | bc) s"
    "$BIN" eval retrieval --model "$W/$1.safetensors" --query "$W/world/test_x.npy" --query-side a \
        --gallery "$W/world/test_y.npy" --gallery-side b --both-directions | sed 's/^/    /'
}
for spec in "ulip-clip 1024 4" "clap-clip 1024 4" "clap-clip 4096 20"; do
    read -r preset batch epochs <<<"$spec"
    for pr in f32 bf16; do train "t_${preset}_${batch}_$pr" "$preset" "$batch" "$epochs" "$pr"; done
done
