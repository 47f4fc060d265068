# bench/lib.sh - sourced by the encoder benchmarks (clip.sh, clap.sh, pointbert.sh): the
# shared setup and the medians, ratios and timed runs they report.

# bench_setup NAME "PYTHON MODULES" [EXTRA CMAKE TARGETS...]: ROOT, BUILD (BENCH_BUILD, default
# <repo>/build-bench), PY (PYTHON, default /usr/bin/python3, which must import the modules),
# THREADS (BENCH_THREADS, default nproc), WORK (BENCH_TMP, default /tmp/cmcr-bench-NAME) and
# DATA (CMCR_TESTDATA, default <repo>/../shared/data); builds cmcr (and the extra targets)
# unless BENCH_NO_BUILD=1; runs every product on THREADS threads.
bench_setup() {
    local name=$1 modules=$2
    shift 2
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    BUILD=${BENCH_BUILD:-$ROOT/build-bench}
    PY=${PYTHON:-/usr/bin/python3}
    THREADS=${BENCH_THREADS:-$(nproc)}
    WORK=${BENCH_TMP:-/tmp/cmcr-bench-$name}
    DATA=${CMCR_TESTDATA:-$ROOT/../shared/data}
    mkdir -p "$WORK"
    "$PY" -c "import ${modules// /, }" || { echo "$name.sh: $PY lacks one of: $modules" >&2; exit 1; }
    if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
        cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$BUILD" -j"$THREADS" --target cmcr_cli "$@" >/dev/null
    fi
    export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }

# measure NAME UNIT CMD...: RUNS runs of CMD under /usr/bin/time; prints "NAME: RATE UNIT/s,
# peak RSS M MiB" (medians) and sets RATE. The rate is the "(X UNIT/s)" cmcr prints, or the
# "(X items/s)" of a reference.
measure() {
    local name=$1 unit=$2
    shift 2
    : >"$WORK/m.txt"
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "rss %M" "$@" >"$WORK/run.txt" 2>&1 || { cat "$WORK/run.txt"; exit 1; }
        echo "$(grep -oE "\([0-9.]+ ($unit|items)/s\)" "$WORK/run.txt" | tr -d '(' | cut -d' ' -f1 | tail -1) \
$(grep -o 'rss [0-9]*' "$WORK/run.txt" | cut -d' ' -f2)" >>"$WORK/m.txt"
    done
    RATE=$(cut -d' ' -f1 "$WORK/m.txt" | median)
    local rss
    rss=$(cut -d' ' -f2 "$WORK/m.txt" | median)
    printf '%-34s %8s %s/s, peak RSS %d MiB\n' "$name:" "$RATE" "$unit" $((rss / 1024))
}

# same A.npy B.npy: the largest difference between the two sides' embeddings.
same() {
    "$PY" -c "
import numpy as np
a, b = np.load('$1'), np.load('$2')
print(f'  same embeddings: max abs difference {np.abs(a - b).max():.2e} over {a.shape[0]} rows')"
}
