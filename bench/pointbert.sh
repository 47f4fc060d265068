#!/bin/bash
# bench/pointbert.sh [--quick] - ULIP-2's PointBERT (384 wide, 12 blocks, encoder dims 256,
# random weights in the real layout) from point-cloud files to normalised embeddings, cmcr
# against the PyTorch reference, in one run, at the same thread count: clouds of 10,000 points
# (.npy, as the C-MCR demo's), read, grouped (FPS of 512 centres from point 0, the 32 nearest
# neighbours) and embedded, batch 8: `cmcr embed --points` vs `scripts/pointbert_reference.py
# --embed --knn ulip` (C-MCR's FPS loop and ULIP's own kNN formula, the official code path). In
# float32 and in bf16 (cmcr --precision bf16 against PyTorch's own bf16 autocast), with the
# peak RSS of each process. Rates exclude loading the weights. Medians of runs; the ratios are
# what to read (the machine is shared). See docs/benchmarks.md.
#
# Environment: BENCH_THREADS (default: nproc), BENCH_BUILD (default: <repo>/build-bench),
# BENCH_TMP (default: /tmp/cmcr-bench-pointbert), PYTHON (default: /usr/bin/python3 with torch
# and numpy), BENCH_NO_BUILD=1.
set -euo pipefail
RUNS=5
NCLOUDS=32
for arg in "$@"; do
    case "$arg" in
    --quick) RUNS=3; NCLOUDS=16 ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/pointbert.sh [--quick]" >&2; exit 2 ;;
    esac
done
. "$(dirname "$0")/lib.sh"
bench_setup pointbert "torch numpy"
W=$WORK/weights
if [ ! -f "$W/ulip.pt" ] || [ ! -f "$W/clouds/$NCLOUDS.done" ]; then
    echo "making full-size random PointBERT weights and $NCLOUDS clouds in $W ..."
    rm -rf "$W"
    "$PY" "$ROOT/scripts/pointbert_reference.py" --out "$W" --full --clouds 1 >/dev/null
    "$PY" - "$W/clouds" "$NCLOUDS" <<'PYEOF'
import os, sys, numpy as np
out, n = sys.argv[1], int(sys.argv[2])
r = np.random.default_rng(0)
for i in range(n):  # 10,000 points on a surface: a torus and a box, as the fixture's clouds
    t = r.uniform(0, 2 * np.pi, size=(10000, 2))
    torus = np.stack([(1 + 0.3 * np.cos(t[:, 1])) * np.cos(t[:, 0]), (1 + 0.3 * np.cos(t[:, 1])) * np.sin(t[:, 0]),
                      0.3 * np.sin(t[:, 1])], 1)
    box = r.uniform(-0.5, 0.5, size=(10000, 3)) * [0.4, 0.4, 1.6] + [0, 0, 0.8]
    xyz = np.where(r.uniform(size=(10000, 1)) < 0.7, torus, box) + 0.01 * r.normal(size=(10000, 3))
    np.save(os.path.join(out, f"b{i:03d}.npy"), xyz.astype(np.float32))
open(os.path.join(out, f"{n}.done"), "w").close()
PYEOF
fi
mapfile -t CLOUDS < <(ls "$W"/clouds/b*.npy)

echo "PointBERT 384/12/256, ${#CLOUDS[@]} clouds of 10,000 points, batch 8, $THREADS threads, median of $RUNS runs"
measure "cmcr embed f32" clouds "$BUILD/cmcr" embed --model "$W/ulip.pt" --points "${CLOUDS[@]}" --out "$WORK/c.npy" --batch 8
CF=$RATE
measure "PyTorch f32" clouds "$PY" "$ROOT/scripts/pointbert_reference.py" --weights "$W/ulip.pt" --embed "${CLOUDS[@]}" \
    --save "$WORK/t.npy" --knn ulip --batch 8 --threads "$THREADS" --time
same "$WORK/c.npy" "$WORK/t.npy"
echo "  ratio f32: cmcr / PyTorch = $(ratio "$CF" "$RATE")"
measure "cmcr embed bf16" clouds "$BUILD/cmcr" embed --model "$W/ulip.pt" --points "${CLOUDS[@]}" --out "$WORK/cb.npy" \
    --batch 8 --precision bf16
CB=$RATE
measure "PyTorch bf16 autocast" clouds "$PY" "$ROOT/scripts/pointbert_reference.py" --weights "$W/ulip.pt" \
    --embed "${CLOUDS[@]}" --save "$WORK/tb.npy" --knn ulip --batch 8 --threads "$THREADS" --time --bf16
same "$WORK/cb.npy" "$WORK/t.npy"
echo "  ratio bf16: cmcr bf16 / PyTorch bf16 autocast = $(ratio "$CB" "$RATE")"
