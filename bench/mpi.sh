#!/bin/bash
# bench/mpi.sh [--quick] - one process against MPI ranks on this machine, through the CLI
# (docs/distributed.md): a training step (clap-clip, batch 4096), memory aggregation (16,384
# queries x 65,536 memory rows, width 512) and projection of a large .npy. The cores are split
# between the ranks (RANKS x THREADS = cores), so this measures what distribution costs on
# one machine (communication through shared memory, duplicated work, load balance), not a
# speed-up: that needs more machines (the scaling model in docs/distributed.md).
#
# Environment: BENCH_BUILD (default: <repo>/build), BENCH_TMP (default: /tmp/cmcr-bench-mpi),
# BENCH_RANKS (default: 2), PYTHON (/usr/bin/python3 with numpy, for the medians).
set -euo pipefail
QUICK=0
[ "${1:-}" = --quick ] && QUICK=1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BENCH_BUILD:-$ROOT/build}/cmcr
W=${BENCH_TMP:-/tmp/cmcr-bench-mpi}
RANKS=${BENCH_RANKS:-2}
CORES=$(nproc)
PY=${PYTHON:-/usr/bin/python3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
"$BIN" info | grep -q "MPI: built in" || { echo "mpi.sh: $BIN was built without MPI" >&2; exit 1; }
mkdir -p "$W"
REPS=5
[ $QUICK = 1 ] && REPS=3

one() { OMP_NUM_THREADS=$CORES OPENBLAS_NUM_THREADS=$CORES "$BIN" "$@"; }
many() {
    local t=$((CORES / RANKS))
    [ $t -ge 1 ] || t=1
    mpirun -np "$RANKS" --bind-to none -x OMP_NUM_THREADS=$t -x OPENBLAS_NUM_THREADS=$t "$BIN" "$@"
}
median() { "$PY" -c 'import sys, statistics; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

echo "machine: $CORES cores; $RANKS ranks x $((CORES / RANKS)) threads vs 1 process x $CORES threads; $(cut -d' ' -f1-3 /proc/loadavg) load"
[ -f "$W/world/overlap_a.npy" ] ||
    "$BIN" synth --out "$W/world" --overlap 16384 --memory-a 65536 --memory-b 65536 --test 1000 --oracle 100 \
        --diag 100 >/dev/null

# --- training: median samples/s of the steps after the first, from the metrics log
steps_per_sec() {
    "$PY" - "$1" <<'PYEOF'
import json, sys, statistics
r = [json.loads(l)["samples_per_sec"] for l in open(sys.argv[1])][1:]
print("%.0f" % statistics.median(r))
PYEOF
}
TRAIN=(train --overlap-a "$W/world/overlap_a.npy" --overlap-b "$W/world/overlap_b.npy"
       --memory-a "$W/world/memory_a.npy" --memory-b "$W/world/memory_b.npy" --preset clap-clip
       --batch 4096 --epochs 2 --cache-dir "$W/cache" --checkpoint-every 0 --quiet)
one "${TRAIN[@]}" --out "$W/warm.safetensors" --epochs 1 >/dev/null 2>&1 # fills the aggregation cache
declare -A rate
for mode in one many; do
    rm -f "$W/$mode.jsonl"
    $mode "${TRAIN[@]}" --out "$W/m.safetensors" --metrics "$W/$mode.jsonl" 2>/dev/null
    rate[$mode]=$(steps_per_sec "$W/$mode.jsonl")
done
echo "training step, clap-clip, batch 4096: 1 process ${rate[one]} samples/s, $RANKS ranks ${rate[many]} samples/s," \
    "ratio $("$PY" -c "print('%.2f' % (${rate[many]} / ${rate[one]}))")"

# --- aggregation: seconds reported by the command
agg_secs() { sed -n 's/.* in \([0-9.]*\) s,.*/\1/p'; }
declare -A agg
for mode in one many; do
    ts=()
    for _ in $(seq $REPS); do
        ts+=("$($mode aggregate --queries "$W/world/overlap_a.npy" --memory "$W/world/memory_a.npy" \
            --out "$W/agg.npy" 2>&1 | agg_secs)")
    done
    agg[$mode]=$(median "${ts[@]}")
done
echo "aggregation 16384 x 65536 x 512: 1 process ${agg[one]} s, $RANKS ranks ${agg[many]} s (medians of $REPS)," \
    "speed ratio $("$PY" -c "print('%.2f' % (${agg[one]} / ${agg[many]}))")"

# --- projection: wall time of the command
ROWS=1048576
[ $QUICK = 1 ] && ROWS=262144
[ -f "$W/big_$ROWS.npy" ] || "$PY" -c "
import numpy as np; np.save('$W/big_$ROWS.npy', np.random.default_rng(1).standard_normal(($ROWS, 512), dtype=np.float32))"
declare -A proj
for mode in one many; do
    ts=()
    for _ in $(seq $REPS); do
        t0=$(date +%s.%N)
        $mode project --model "$W/m.safetensors" --side a --in "$W/big_$ROWS.npy" --out "$W/proj.npy" 2>/dev/null
        ts+=("$("$PY" -c "print($(date +%s.%N) - $t0)")")
    done
    proj[$mode]=$(median "${ts[@]}")
done
echo "projection of $ROWS x 512 rows: 1 process ${proj[one]} s, $RANKS ranks ${proj[many]} s (medians of $REPS)," \
    "speed ratio $("$PY" -c "print('%.2f' % (${proj[one]} / ${proj[many]}))")"
