#!/bin/bash
# bench/search.sh [--quick] - exact top-k over a gallery: a gallery of 1,000,000 random
# normalised rows of 512 floats (2 GB, written through cmcr's gallery writer by
# bench/bench_search.c) and 64 random normalised queries; the median time per query of
# cmcr_gallery_topk (k = 10) for one query alone and for 64 at once, against NumPy (matrix
# product + argpartition + sort of the k) and PyTorch (matmul + topk) on the same data (the
# same mapped pages of the gallery file) and the same thread count, and the time to load the
# gallery (mapped, every row checked finite; the file in the page cache). The processes take
# turns, three rounds of (cmcr, then NumPy and PyTorch), so that load from other jobs falls on
# all three; the medians over the rounds and the rounds' range are printed. The three agree on
# the top 10 of each query. The ratios are what to read. See docs/benchmarks.md.
#
# Environment: BENCH_THREADS (default: nproc), BENCH_BUILD (default: <repo>/build-bench),
# BENCH_TMP (default: /tmp/cmcr-bench-search), PYTHON (default: /usr/bin/python3 with torch
# and numpy), BENCH_NO_BUILD=1.
set -euo pipefail
RUNS=5
ROUNDS=3
ROWS=1000000
for arg in "$@"; do
    case "$arg" in
    --quick) RUNS=3; ROUNDS=1; ROWS=100000 ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/search.sh [--quick]" >&2; exit 2 ;;
    esac
done
. "$(dirname "$0")/lib.sh"
bench_setup search "torch numpy" bench_search
DIM=512 NQ=64 K=10
G=$WORK/g$ROWS.safetensors
if [ ! -f "$G" ]; then
    echo "writing $G ..."
    "$BUILD/bench/bench_search" write "$G" "$ROWS" "$DIM" 1
fi
"$PY" -c "
import numpy as np
r = np.random.default_rng(2)
q = r.standard_normal(($NQ, $DIM)).astype(np.float32)
np.save('$WORK/q.npy', q / np.linalg.norm(q, axis=1, keepdims=True))"
echo "gallery $ROWS x $DIM, $NQ queries, k = $K, $THREADS threads; $ROUNDS rounds of (cmcr, then NumPy and PyTorch), each the median of $RUNS runs"
: >"$WORK/all.txt"
for round in $(seq "$ROUNDS"); do
    "$BUILD/bench/bench_search" run "$G" "$WORK/q.npy" "$K" "$RUNS" "$WORK/cmcr_idx.npy" >>"$WORK/all.txt"
    "$PY" - "$G" "$WORK" "$K" "$RUNS" "$THREADS" >>"$WORK/all.txt" <<'PYEOF'
import json, struct, sys, time, warnings
import numpy as np, torch
path, work, k, runs, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
warnings.filterwarnings("ignore")  # torch on a read-only mapping: it is only read
raw = open(path, "rb")
n, = struct.unpack("<Q", raw.read(8))
h = json.loads(raw.read(n))
b, e = h["embeddings"]["data_offsets"]
E = np.memmap(path, np.float32, "r", 8 + n + b, tuple(h["embeddings"]["shape"]))  # the pages cmcr maps
T = torch.from_numpy(E)
Q = np.load(f"{work}/q.npy")
def numpy_topk(q):
    s = q @ E.T
    part = np.argpartition(-s, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(s, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)
def torch_topk(q):
    return torch.topk(torch.from_numpy(q) @ T.T, k, dim=1).indices.numpy()
def med(f, q):
    t = []
    for _ in range(runs):
        t0 = time.perf_counter(); out = f(q); t.append(time.perf_counter() - t0)
    return sorted(t)[len(t) // 2], out
for name, f in (("numpy", numpy_topk), ("torch", torch_topk)):
    t1, _ = med(f, Q[:1])
    t64, idx = med(f, Q)
    np.save(f"{work}/{name}_idx.npy", idx)
    print(f"{name}_1_s {t1:.5f}")
    print(f"{name}_64_s {t64:.5f}")
PYEOF
done
# The median over the rounds, and the rounds' range.
get() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/all.txt" | median; }
spread() { awk -v k="$1" -v n="$2" '$1 == k { v = 1000 * $2 / n; if (!c++ || v < lo) lo = v; if (v > hi) hi = v } END { printf "%.1f-%.1f", lo, hi }' "$WORK/all.txt"; }
ms() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%8.2f ms", 1000 * t / n }'; }
printf '%-28s %s (rounds %s)\n' "cmcr gallery load (mapped)" "$(ms "$(get load_s)" 1)" "$(spread load_s 1)"
for nq in 1 64; do
    c=$(get "topk_${nq}_s") n=$(get "numpy_${nq}_s") t=$(get "torch_${nq}_s")
    printf '%-28s cmcr %s  NumPy %s  PyTorch %s  per query; NumPy/cmcr %s, PyTorch/cmcr %s\n' "top-$K, $nq quer$([ "$nq" = 1 ] && echo y || echo ies) at once" \
        "$(ms "$c" "$nq")" "$(ms "$n" "$nq")" "$(ms "$t" "$nq")" "$(ratio "$n" "$c")" "$(ratio "$t" "$c")"
    echo "    rounds (ms per query): cmcr $(spread "topk_${nq}_s" "$nq"), NumPy $(spread "numpy_${nq}_s" "$nq"), PyTorch $(spread "torch_${nq}_s" "$nq")"
done
"$PY" -c "
import numpy as np
c, n, t = (np.load('$WORK/' + x + '_idx.npy') for x in ('cmcr', 'numpy', 'torch'))
same = lambda a, b: sum(set(x) == set(y) for x, y in zip(a, b))
print(f'  the same top $K: cmcr = NumPy for {same(c, n)} of {len(c)} queries, cmcr = PyTorch for {same(c, t)}; '
      f'first query, in order: {(c[0] == n[0]).all() and (c[0] == t[0]).all()}')"
