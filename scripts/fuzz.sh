#!/usr/bin/env bash
# Build the libFuzzer targets (fuzz/, clang + ASan + UBSan, LeakSanitizer included) in
# build-fuzz/ and fuzz each for a bounded time on a copy of its seed corpus, then replay every
# reproducer in fuzz/regressions/<target>/. Exits non-zero on any crash, leak or timeout.
#   scripts/fuzz.sh [SECONDS]        seconds per target (default 60)
# Findings are written to build-fuzz/fuzz-work/<target>/ (crash-*, leak-*, timeout-* files):
# copy a reproducer into fuzz/regressions/<target>/ once the bug is fixed (docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number (got '$secs')" >&2; exit 2 ;; esac
CC=${CMCR_FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz.sh: $CC not found (scripts/install-deps.sh installs clang)" >&2; exit 1; }
dir=build-fuzz
# OpenMP through GCC's libgomp (already needed by OpenBLAS's OpenMP build), so that no LLVM
# libomp is needed: clang then ignores the library's omp pragmas, which suits fuzzing anyway.
gomp=$(gcc -print-file-name=libgomp.so 2>/dev/null || true)
omp_flags=()
if [ -n "$gomp" ] && [ -e "$gomp" ]; then
    omp_flags=(-DOpenMP_C_FLAGS=-fopenmp=libgomp -DOpenMP_C_LIB_NAMES=gomp "-DOpenMP_gomp_LIBRARY=$gomp")
fi
cmake -S . -B "$dir" -DCMCR_FUZZ=ON -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBUILD_TESTING=OFF -DCMCR_MPI=OFF -DCMCR_DNNL=OFF "${omp_flags[@]}" >/dev/null
targets=(fuzz_npy fuzz_safetensors fuzz_pt fuzz_model fuzz_tokenizer fuzz_image fuzz_clip fuzz_clip_config
    fuzz_roberta_tokenizer fuzz_audio fuzz_roberta fuzz_htsat fuzz_points fuzz_pointbert fuzz_overlay fuzz_gallery)
cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}" >/dev/null

export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
work=$dir/fuzz-work
# run_one TARGET: fuzz it for $secs seconds on one core, then replay its regression inputs;
# writes $work/TARGET/line (the summary line) and $work/TARGET/fails (0, 1 or 2).
run_one() {
    local t=$1 bin=$dir/fuzz/$1 w=$work/$1 rc=0 f=0
    rm -rf "$w"
    mkdir -p "$w/corpus"
    cp fuzz/corpus/"$t"/* "$w/corpus/"
    local start end execs peak cov line
    start=$(date +%s.%N)
    "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$w/" "$w/corpus" >"$w/log" 2>&1 || rc=$?
    end=$(date +%s.%N)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$w/log" | tail -1)
    peak=$(sed -n 's/^stat::peak_rss_mb: *//p' "$w/log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$w/log" | tail -1 | cut -d' ' -f2)
    line=$(printf '%-18s %10s execs %7.1f s  cov %-5s peak rss %s MB  corpus %d files' "$t" "${execs:-?}" \
        "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" "${cov:-?}" "${peak:-?}" "$(ls "$w/corpus" | wc -l)")
    if [ $rc -ne 0 ]; then
        f=$((f + 1))
        line="$line  FAILED (exit $rc)"
        {
            echo "=== $t failed; end of $w/log:"
            tail -40 "$w/log"
            ls "$w"/crash-* "$w"/leak-* "$w"/timeout-* "$w"/oom-* 2>/dev/null || true
        } >"$w/failure"
    fi
    # Replay the reproducers of bugs found before: each must now run cleanly.
    local reg=fuzz/regressions/$t
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
        rc=0
        "$bin" -rss_limit_mb=2048 -timeout=10 "$reg"/* >"$w/regressions.log" 2>&1 || rc=$?
        if [ $rc -ne 0 ]; then
            f=$((f + 1))
            { echo "$t: regressions FAILED (exit $rc); end of $w/regressions.log:"; tail -40 "$w/regressions.log"; } >>"$w/failure"
        else
            echo "$t: $(ls "$reg" | wc -l) regression input(s) replayed cleanly" >"$w/regressions"
        fi
    fi
    echo "$line" >"$w/line"
    echo "$f" >"$w/fails"
}

# As many targets at once as there are cores (each fuzzer is one process on one core).
jobs_max=$(nproc)
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
    run_one "$t" &
done
wait
fails=0
summary=()
for t in "${targets[@]}"; do
    w=$work/$t
    [ -f "$w/failure" ] && cat "$w/failure" >&2
    [ -f "$w/regressions" ] && cat "$w/regressions"
    line=$(cat "$w/line" 2>/dev/null || echo "$t: no result (the run died)")
    echo "$line"
    summary+=("$line")
    fails=$((fails + $(cat "$w/fails" 2>/dev/null || echo 1)))
done
echo "--- fuzzing summary ($secs s per target)"
printf '%s\n' "${summary[@]}"
if [ $fails -ne 0 ]; then
    echo "fuzz.sh: $fails failure(s)" >&2
    exit 1
fi
