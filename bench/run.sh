#!/bin/bash
# bench/run.sh [--quick] - cmcr against its own PyTorch reference (scripts/bench_reference.py) on
# identical problems, in one run: training step, memory aggregation, projection, retrieval, the
# scaling of time with the problem size, the sgemm peak measured on the spot, the OpenBLAS
# kernels in use and the peak RSS of every run. See docs/benchmarks.md.
#
# Environment: BENCH_THREADS (default: nproc), BENCH_BUILD (default: <repo>/build-bench),
# BENCH_TMP (default: /tmp/cmcr-bench; holds the projection inputs, >= 4 GB free for the full
# run), PYTHON (default: /usr/bin/python3, which must have torch and numpy),
# BENCH_NO_BUILD=1 (use the existing build).
set -euo pipefail

QUICK=0
for arg in "$@"; do
    case "$arg" in
    --quick) QUICK=1 ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build-bench}
PY=${PYTHON:-/usr/bin/python3}
THREADS=${BENCH_THREADS:-$(nproc)}
WORK=${BENCH_TMP:-/tmp/cmcr-bench}
REF="$ROOT/scripts/bench_reference.py"
mkdir -p "$WORK"
RES="$WORK/results.$$.txt"
: >"$RES"

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j"$THREADS" >/dev/null
fi
B="$BUILD/bench"
"$PY" -c 'import torch, numpy' || { echo "run.sh: $PY lacks torch or numpy (set PYTHON)" >&2; exit 1; }

# Same thread count everywhere (OpenMP in cmcr's OpenBLAS, pthreads in torch's, intra-op torch).
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS

# The kernels: cmcr's CLI re-executes itself with OPENBLAS_CORETYPE when OpenBLAS falls back
# to generic kernels on this CPU; the bench programs and Python then get the same setting.
INFO=$("$BUILD/cmcr" info)
CORE=$(sed -n 's/^BLAS: OpenBLAS, kernels \([A-Za-z0-9_]*\),.*/\1/p' <<<"$INFO")
if grep -q "chosen by cmcr" <<<"$INFO"; then
    export OPENBLAS_CORETYPE=$CORE
fi
PYCORE=$("$PY" -c 'import sys; sys.argv=["x"]; sys.path.insert(0, "'"$ROOT"'/scripts"); import torch, bench_reference as b; torch.ones(64,64)@torch.ones(64,64); print(b.blas_core())')

note() { echo "$*" >>"$RES"; echo "$*" >&2; }
load() { note "LOAD $1 $(cut -d' ' -f1-3 /proc/loadavg)"; }
keep() { # label: copy stdin to stderr, keep its RESULT lines tagged with the label
    local line
    while IFS= read -r line; do
        printf '%s\n' "$line" >&2
        case $line in "RESULT "*) printf 'RESULT label=%s %s\n' "$1" "${line#RESULT }" >>"$RES" ;; esac
    done
}
run() { # label, command...: run it, print its output, keep its RESULT lines
    local label=$1; shift
    "$@" 2>&1 | keep "$label"
}

note "HOST $(uname -m) $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
note "CONFIG quick=$QUICK threads=$THREADS cmcr_core=$CORE pytorch_core=$PYCORE OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} torch=$("$PY" -c 'import torch; print(torch.__version__)')"
load start

echo "== sgemm peak (n=2048, $THREADS threads, median of 5)" >&2
run sgemm "$B/bench_sgemm" 2048 "$THREADS" 5

echo "== 1. training step, clap-clip, batch 4096, all loss terms, Adam" >&2
load train
run train4096 "$B/bench_train" 4096 7 "$THREADS"
run train4096 "$PY" "$REF" train --batch 4096 --steps 7 --threads "$THREADS"
if "$BUILD/cmcr" info | grep -q "bfloat16.*built in (oneDNN)"; then # bf16 products, against PyTorch's autocast
    BENCH_BF16=1 run train4096 "$B/bench_train" 4096 7 "$THREADS"
    run train4096 "$PY" "$REF" train --batch 4096 --steps 7 --threads "$THREADS" --bf16-autocast
fi
for bs in 1024 2048; do
    run "train$bs" "$B/bench_train" "$bs" 5 "$THREADS"
    run "train$bs" "$PY" "$REF" train --batch "$bs" --steps 5 --threads "$THREADS"
done
# peak RSS against the inputs as the overlap set grows (the batch's workspace is fixed)
if [ "$QUICK" = 1 ]; then MEMROWS="49152 98304"; else MEMROWS="65536 131072"; fi
for rows in $MEMROWS; do
    run "rows$rows" "$B/bench_train" 4096 2 "$THREADS" clap-clip "$rows"
done

echo "== 2. memory aggregation (full softmax, tau 0.01)" >&2
load aggregate
if [ "$QUICK" = 1 ]; then AGG="16384:65536:1 4096:32768:1 4096:65536:1 4096:131072:1 8192:32768:1"
else AGG="16384:65536:3 16384:32768:1 16384:131072:1 8192:65536:1 16384:1048576:1"; fi
for spec in $AGG; do
    IFS=: read -r nq nm reps <<<"$spec"
    run "agg${nq}x$nm" "$B/bench_aggregate" "$nq" "$nm" 512 1024 4096 0 "$reps"
    run "agg${nq}x$nm" "$PY" "$REF" aggregate --nq "$nq" --nm "$nm" --reps "$reps" --threads "$THREADS"
done
if "$BUILD/cmcr" info | grep -q "bfloat16.*built in (oneDNN)"; then # stretch: bf16 products
    BENCH_BF16=1 run "agg16384x65536" "$B/bench_aggregate" 16384 65536 512 1024 4096 0 3
fi

echo "== 3. projection throughput (cmcr project vs torch), clap-clip side a" >&2
load project
if [ "$QUICK" = 1 ]; then ROWS=262144; else ROWS=1000000; fi
"$B/bench_project" "$WORK" "$ROWS"
IN="$WORK/in_$ROWS.npy"
cat "$IN" >/dev/null # page cache warm for both
for impl in cmcr pytorch; do
    rm -f "$WORK/out.npy"
    if [ $impl = cmcr ]; then
        /usr/bin/time -f "RESULT bench=project impl=cmcr rows=$ROWS sec=%e rss_kib=%M core=$CORE threads=$THREADS" \
            "$BUILD/cmcr" project --model "$WORK/model.safetensors" --side a --in "$IN" --out "$WORK/out.npy" \
            2>&1 | keep "project$ROWS"
    else
        run "project$ROWS" "$PY" "$REF" project --model "$WORK/model.safetensors" --inp "$IN" --out "$WORK/out.npy" \
            --threads "$THREADS"
    fi
done
rm -f "$WORK/out.npy"

if [ "$QUICK" = 0 ]; then
    echo "== 4. retrieval, 10,000 queries x 1,000,000 gallery, top-10 and exact ranks" >&2
    load retrieval
    run retr env BENCH_NO_SGEMM=1 "$B/bench_eval" 10000 1000000
    run retr "$PY" "$REF" retrieval --nq 10000 --ng 1000000 --threads "$THREADS"
    if "$BUILD/cmcr" info | grep -q "bfloat16.*built in (oneDNN)"; then # stretch: bf16 scores, exact ranks
        run retr env BENCH_NO_SGEMM=1 BENCH_BF16=1 "$B/bench_eval" 10000 1000000
    fi
fi
echo "== sgemm peak again (the peak used is the higher of the two, to be fair under load)" >&2
run sgemm_end "$B/bench_sgemm" 2048 "$THREADS" 5
load end

"$PY" - "$RES" "$QUICK" <<'PYEOF'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
res = {}
for ln in lines:
    if ln.startswith("RESULT "):
        kv = dict(x.split("=", 1) for x in ln.split()[1:])
        kv.setdefault("impl", "cmcr")
        res[(kv["label"], kv["impl"])] = kv
    elif not ln.startswith("RESULT"):
        print(ln)
peaks = [float(v["gflops"]) for (l, i), v in res.items() if l.startswith("sgemm")]
peak = max(peaks)
D, H = 512, 1024
def flop(label, kv):  # GFLOP of one unit of work (step / whole run)
    if label == "project" or label.startswith("project"):
        return 2.0 * (D * H + H * D) * int(kv["rows"]) / 1e9
    return float(kv["gflop"])
def unit(label):
    return "samples/s" if label.startswith("train") else "rows/s" if label.startswith("project") else "queries/s"
rows = []
hdr = ["benchmark", "cmcr", "pytorch", "ratio", "cmcr GFLOP/s", "% of sgemm peak", "peak RSS cmcr / pytorch"]
for label in dict.fromkeys(l for l, _ in res):
    if label.startswith("sgemm"):
        continue
    c, p = res.get((label, "cmcr")), res.get((label, "pytorch"))
    if not c or not p:
        continue
    cs, ps = float(c["sec"]), float(p["sec"])
    if label.startswith("project"):
        c["rate"] = f'{int(c["rows"]) / cs:.2f}'
    cr, pr = float(c["rate"]), float(p["rate"])
    g = flop(label, c) / cs
    rows.append([label, f"{cr:,.0f} {unit(label)}", f"{pr:,.0f}", f"{cr / pr:.2f}x", f"{g:.1f}", f"{100 * g / peak:.0f}%",
                 f'{int(c["rss_kib"]) / 1024:,.0f} / {int(p["rss_kib"]) / 1024:,.0f} MiB'])
print(f"\nsgemm peak {peak:.1f} GFLOP/s (n=2048, median of 5; start / end of the run: "
      + " / ".join(f"{x:.1f}" for x in peaks) + ")")
w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
fmt = lambda r: "| " + " | ".join(str(x).ljust(w[i]) for i, x in enumerate(r)) + " |"
print(fmt(hdr)); print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in rows:
    print(fmt(r))
# scaling: seconds per run as sizes double
print("\nscaling (seconds per step / per run; x = time ratio to the previous row):")
for name, labels in [("training, batch", sorted({l for l, _ in res if l.startswith("train")}, key=lambda l: int(l[5:]))),
                     ("aggregation, nq=16384, M", sorted({l for l, _ in res if l.startswith("agg16384x")}, key=lambda l: int(l.split("x")[1]))),
                     ("aggregation, nq=4096, M", sorted({l for l, _ in res if l.startswith("agg4096x")}, key=lambda l: int(l.split("x")[1]))),
                     ("aggregation, M=32768, nq", sorted({l for l, _ in res if l.startswith("agg") and l.endswith("x32768")}, key=lambda l: int(l[3:].split("x")[0]))),
                     ("aggregation, M=65536, nq", sorted({l for l, _ in res if l.startswith("agg") and l.endswith("x65536")}, key=lambda l: int(l[3:].split("x")[0])))]:
    if len(labels) < 2:
        continue
    prev = None
    for l in labels:
        c, p = res.get((l, "cmcr")), res.get((l, "pytorch"))
        cs, ps = float(c["sec"]), float(p["sec"]) if p else float("nan")
        x = f"  x{cs / prev[0]:.2f} / x{ps / prev[1]:.2f}" if prev else ""
        print(f"  {name} {l}: cmcr {cs:.3f} s, pytorch {ps:.3f} s{x}")
        prev = (cs, ps)
# targets
print("\ntargets (measured, not tuned for):")
t = res.get(("train4096", "cmcr")), res.get(("train4096", "pytorch"))
if all(t):
    g = float(t[0]["gflop"]) / float(t[0]["sec"])
    r = float(t[0]["rate"]) / float(t[1]["rate"])
    print(f"  training step >= 2x PyTorch samples/s: {r:.2f}x -> {'met' if r >= 2 else 'NOT met'}")
    print(f"  training step >= 70% of sgemm peak: {100 * g / peak:.0f}% -> {'met' if g >= 0.7 * peak else 'NOT met'}")
    m = int(t[0]["rss_kib"]) * 1024 / float(t[0]["base_bytes"])
    print(f"  training peak RSS <= 1.5x (inputs + parameters + Adam state = {float(t[0]['base_bytes']) / 2**20:.0f} MiB): "
          f"{m:.2f}x -> {'met' if m <= 1.5 else 'NOT met'}")
    mem = sorted((int(kv["rows"]), int(kv["rss_kib"]) * 1024 / float(kv["base_bytes"])) for (l, i), kv in res.items()
                 if i == "cmcr" and "rows" in kv and (l == "train4096" or l.startswith("rows")))
    print("    by overlap rows (batch 4096): " + ", ".join(f"{r:,} rows {x:.2f}x" for r, x in mem))
    need = 2 * float(t[1]["rate"]) * float(t[0]["gflop"]) / float(t[0]["batch"])
    print(f"    (2x PyTorch means {need:.0f} GFLOP/s in float32: {100 * need / peak:.0f}% of the sgemm peak;")
    print(f"     a step of {float(t[1]['sec']) / 2:.3f} s, while the step's matrix products alone take "
          f"{float(t[0]['products_sec']):.3f} s here)")
for (l, i), c in res.items():
    if i == "cmcr-bf16" and (l, "cmcr") in res:
        f, p = res[(l, "cmcr")], res.get((l, "pytorch"))
        g = float(c["gflop"]) / float(c["sec"])
        print(f"  {l} in bfloat16 (oneDNN): {float(c['sec']):.2f} s, {g:.0f} GFLOP/s = "
              f"{float(f['sec']) / float(c['sec']):.2f}x cmcr float32"
              + (f", {float(p['sec']) / float(c['sec']):.2f}x PyTorch float32" if p else "")
              + (f", {float(res[(l, 'pytorch-bf16-autocast')]['sec']) / float(c['sec']):.2f}x PyTorch bf16 autocast"
                 if (l, "pytorch-bf16-autocast") in res else ""))
for l in [l for l, i in res if i == "cmcr" and (l.startswith("agg") or l.startswith("retr"))]:
    c = res[(l, "cmcr")]
    g = float(c["gflop"]) / float(c["sec"])
    print(f"  {l} >= 80% of sgemm peak: {100 * g / peak:.0f}% -> {'met' if g >= 0.8 * peak else 'NOT met'}")
PYEOF
echo "(raw results: $RES)"
