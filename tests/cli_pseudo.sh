#!/usr/bin/env bash
# cmcr train --pseudo-a/--pseudo-b: pseudo embeddings precomputed by `cmcr aggregate` (the
# way to aggregate huge memories separately, e.g. with mpirun) train exactly the model that
# aggregating inside `cmcr train` does; bad pseudo files are refused in one line. Also
# `cmcr aggregate --precision bf16` (when built with oneDNN): close to f32, or refused; and
# `cmcr train --precision bf16` aggregates in bf16 as well.
. "$(dirname "$0")/lib.sh"
scratch pseudo
W=$T/w
"$BIN" synth --out "$W" --dim-a 48 --dim-b 40 --overlap 1024 --memory-a 1500 --memory-b 1200 --test 100 \
    --oracle 10 --diag 50 --concepts 30 --clusters 5 >/dev/null || { echo "synth failed"; exit 1; }
for s in a b; do
    "$BIN" aggregate --queries "$W/overlap_$s.npy" --memory "$W/memory_$s.npy" --out "$T/p$s.npy" --tau-mem 0.05 \
        2>/dev/null || fail "aggregate side $s"
done
ARGS=(--overlap-a "$W/overlap_a.npy" --overlap-b "$W/overlap_b.npy" --layers 2 --hidden 64 --out-dim 32
      --batch 256 --epochs 3 --tau-mem 0.05 --cache-dir none --threads 2 --quiet)
"$BIN" train "${ARGS[@]}" --memory-a "$W/memory_a.npy" --memory-b "$W/memory_b.npy" --out "$T/inside.safetensors" \
    2>"$T/e" || fail "train with memories: $(cat "$T/e")"
"$BIN" train "${ARGS[@]}" --pseudo-a "$T/pa.npy" --pseudo-b "$T/pb.npy" --out "$T/pre.safetensors" \
    2>"$T/e" || fail "train with --pseudo-a/-b: $(cat "$T/e")"
for s in a b; do
    in=$W/test_x.npy; [ $s = b ] && in=$W/test_y.npy
    "$BIN" project --model "$T/inside.safetensors" --side $s --in "$in" --out "$T/i$s.npy" 2>/dev/null
    "$BIN" project --model "$T/pre.safetensors" --side $s --in "$in" --out "$T/q$s.npy" 2>/dev/null
    cmp -s "$T/i$s.npy" "$T/q$s.npy" || fail "side $s: precomputed pseudo embeddings train a different model"
done
"$BIN" inspect "$T/pre.safetensors" 2>/dev/null | grep -q "pseudo-a" || fail "the model does not record --pseudo-a"

# refusals: one of the pair, wrong rows, wrong width
check_refused() { # what, expected text, args...
    local what=$1 text=$2
    shift 2
    if "$BIN" train "${ARGS[@]}" --out "$T/bad.safetensors" "$@" >"$T/o" 2>&1; then
        fail "$what: accepted"
    else
        [ "$(wc -l <"$T/o")" -eq 1 ] || fail "$what: not one line: $(cat "$T/o")"
        grep -q -- "$text" "$T/o" || fail "$what: message lacks '$text': $(cat "$T/o")"
    fi
    [ -e "$T/bad.safetensors" ] && fail "$what: wrote a model"
}
check_refused "only --pseudo-a" "go together" --pseudo-a "$T/pa.npy"
check_refused "pseudo rows" "one row per overlap row" --pseudo-a "$W/memory_a.npy" --pseudo-b "$T/pb.npy"
check_refused "pseudo width" "one row per overlap row" --pseudo-a "$T/pb.npy" --pseudo-b "$T/pa.npy"

# bfloat16 aggregation
if "$BIN" info | grep -q "bfloat16.*built in (oneDNN)"; then
    "$BIN" aggregate --queries "$W/overlap_a.npy" --memory "$W/memory_a.npy" --out "$T/bf.npy" --tau-mem 0.05 \
        --precision bf16 2>/dev/null || fail "aggregate --precision bf16"
    if [ -n "${CMCR_PYTHON:-}" ] && "$CMCR_PYTHON" -c 'import numpy' 2>/dev/null; then
        "$CMCR_PYTHON" -c "
import numpy as np, sys
a, b = np.load('$T/pa.npy'), np.load('$T/bf.npy')
d = float(np.abs(a - b).max()); print(f'  bf16 vs f32 aggregation: max abs difference {d:.3g}')
sys.exit(0 if 0 < d < 5e-3 else 1)" || fail "bf16 aggregation too far from f32 (or identical)"
    fi
    # train --precision bf16 aggregates in bf16 too: the same model as training on the
    # pseudo embeddings of `aggregate --precision bf16`
    for s in a b; do
        "$BIN" aggregate --queries "$W/overlap_$s.npy" --memory "$W/memory_$s.npy" --out "$T/b$s.npy" \
            --tau-mem 0.05 --precision bf16 2>/dev/null || fail "aggregate --precision bf16 side $s"
    done
    "$BIN" train "${ARGS[@]}" --precision bf16 --memory-a "$W/memory_a.npy" --memory-b "$W/memory_b.npy" \
        --out "$T/bin.safetensors" 2>"$T/e" || fail "bf16 train with memories: $(cat "$T/e")"
    "$BIN" train "${ARGS[@]}" --precision bf16 --pseudo-a "$T/ba.npy" --pseudo-b "$T/bb.npy" \
        --out "$T/bpre.safetensors" 2>"$T/e" || fail "bf16 train with --pseudo-a/-b: $(cat "$T/e")"
    "$BIN" project --model "$T/bin.safetensors" --side a --in "$W/test_x.npy" --out "$T/bi.npy" 2>/dev/null
    "$BIN" project --model "$T/bpre.safetensors" --side a --in "$W/test_x.npy" --out "$T/bq.npy" 2>/dev/null
    cmp -s "$T/bi.npy" "$T/bq.npy" || fail "train --precision bf16 did not aggregate in bf16"
else
    "$BIN" aggregate --queries "$W/overlap_a.npy" --memory "$W/memory_a.npy" --out "$T/bf.npy" --precision bf16 \
        >"$T/o" 2>&1 && fail "bf16 accepted without oneDNN"
    grep -q "oneDNN" "$T/o" || fail "bf16 refusal does not say why: $(cat "$T/o")"
fi
"$BIN" aggregate --queries "$W/overlap_a.npy" --memory "$W/memory_a.npy" --out "$T/x.npy" --precision fp8 \
    >"$T/o" 2>&1
[ $? -eq 2 ] && grep -q "f32 or bf16" "$T/o" || fail "--precision fp8 not refused as a usage error"

finish cli_pseudo
