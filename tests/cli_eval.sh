#!/bin/bash
# cli_eval.sh - smoke test of `cmcr eval retrieval|zeroshot`: table and JSON values on a hand
# example, the same numbers through an identity-like model, and one-line errors.
. "$(dirname "$0")/lib.sh"
need_numpy "to write the inputs"
scratch cli-eval

# Queries q0 = q1 = (3,2,1,0), q2 = (1,2,3,0); gallery = first three unit vectors; classes = I4.
# By row: ranks 1, 2 (tie with g0, lower index first), 1.
# By label (ql 0 1 0, gl 0 1 1): q0 -> g0 rank 1 (AP 1); q1 -> g1, g2 ranks 2, 3
# (AP (1/2 + 2/3)/2); q2 -> g0 rank 3 (AP 1/3).
"$PY" - "$T" <<'EOF' || { echo "FAIL: could not write inputs"; exit 1; }
import sys, numpy as np
d = sys.argv[1]
q = np.array([[3, 2, 1, 0], [3, 2, 1, 0], [1, 2, 3, 0]], np.float32)
np.save(d + "/q.npy", q)
np.save(d + "/g.npy", np.eye(4, dtype=np.float32)[:3])
np.save(d + "/g2.npy", np.eye(4, dtype=np.float32)[:2])
np.save(d + "/g5.npy", np.ones((3, 5), np.float32))
np.save(d + "/classes.npy", np.eye(4, dtype=np.float32))
np.save(d + "/ql.npy", np.array([0, 1, 0], np.int64))
np.save(d + "/gl.npy", np.array([0, 1, 1], np.int32))
np.save(d + "/gl_short.npy", np.array([0, 1], np.int64))
np.save(d + "/lf.npy", np.array([0.0, 1.0, 2.0], np.float32))
np.save(d + "/y.npy", np.array([[0], [1], [2]], np.int64))
np.save(d + "/ybad.npy", np.array([0, 4, 1], np.int64))
open(d + "/names.txt", "w").write("plane\nbed\nchair\nlamp\n")
open(d + "/names_crlf.txt", "wb").write(b"plane\r\nbed\r\nchair\r\nlamp")  # edited on Windows, no final newline
open(d + "/qlabels_crlf.txt", "wb").write(b"q-zero\r\nq-one\r\nq-two\r\n")
open(d + "/glabels_crlf.txt", "wb").write(b"g-zero\r\ng-one\r\ng-two\r\n")
# A one-layer model whose heads are identity: Linear(4,4) = I, BN with mean 0 and var 1-eps,
# so f(x) = normalize(relu(x)) = normalize(x) on these non-negative inputs.
import json, struct
ts = {}
for h in ("Head_A", "Head_B"):
    ts[h + ".net.0.weight"] = np.eye(4, dtype=np.float32)
    ts[h + ".net.0.bias"] = np.zeros(4, np.float32)
    ts[h + ".net.1.weight"] = np.ones(4, np.float32)
    ts[h + ".net.1.bias"] = np.zeros(4, np.float32)
    ts[h + ".net.1.running_mean"] = np.zeros(4, np.float32)
    ts[h + ".net.1.running_var"] = np.full(4, 1 - 1e-5, np.float32)
    ts[h + ".net.1.num_batches_tracked"] = np.array(1, np.int64)
header, blobs, off = {}, [], 0
for k, v in ts.items():
    b = v.tobytes()
    header[k] = {"dtype": "F32" if v.dtype == np.float32 else "I64", "shape": list(v.shape),
                 "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(d + "/model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
EOF

# check_json FILE PYTHON-EXPRESSION: the expression sees the parsed object as `r`.
check_json() {
    "$PY" -c 'import json, sys, math
r = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2])
sys.exit(0 if ok else 1)' "$1" "$2" || fail "$1: $2 (got: $(tr -d '\n' < "$1"))"
}

# --- retrieval by row, table
"$BIN" eval retrieval --query "$T/q.npy" --gallery "$T/g.npy" --both-directions > "$T/t1" 2> "$T/e1" \
    || fail "retrieval table exited $? ($(cat "$T/e1"))"
grep -Eq '^query->gallery +3 +3 +66\.67 +100\.00 +100\.00 +1\.0 +1\.33 +83\.33$' "$T/t1" \
    || fail "retrieval table row: $(cat "$T/t1")"
grep -Eq '^gallery->query +3 +3 +66\.67 +100\.00 +100\.00 +1\.0 +1\.33 +83\.33$' "$T/t1" \
    || fail "reverse direction row: $(cat "$T/t1")"
grep -q 'ground truth: by row' "$T/t1" || fail "ground truth line missing"

# --- retrieval by row, JSON
"$BIN" eval retrieval --query "$T/q.npy" --gallery "$T/g.npy" --json > "$T/j1" || fail "retrieval --json exited $?"
check_json "$T/j1" 'r["ground_truth"] == "row" and r["model"] is None and len(r["results"]) == 1'
check_json "$T/j1" 'abs(r["results"][0]["recall@1"] - 2/3) < 1e-12 and r["results"][0]["recall@5"] == 1'
check_json "$T/j1" 'r["results"][0]["median_rank"] == 1 and abs(r["results"][0]["mean_rank"] - 4/3) < 1e-12'
check_json "$T/j1" 'abs(r["results"][0]["map"] - (1 + 1/2 + 1) / 3) < 1e-12 and r["results"][0]["queries"] == 3'

# --- the same through the identity model
"$BIN" eval retrieval --model "$T/model.safetensors" --query-side a --gallery-side b --query "$T/q.npy" \
    --gallery "$T/g.npy" --json > "$T/j2" 2> "$T/e2" || fail "retrieval with --model exited $? ($(cat "$T/e2"))"
check_json "$T/j2" 'r["model"].endswith("model.safetensors") and abs(r["results"][0]["map"] - 5/6) < 1e-12'

# --- retrieval by label
"$BIN" eval retrieval --query "$T/q.npy" --gallery "$T/g.npy" --query-labels "$T/ql.npy" \
    --gallery-labels "$T/gl.npy" --json > "$T/j3" || fail "retrieval by label exited $?"
check_json "$T/j3" 'r["ground_truth"] == "label" and r["results"][0]["median_rank"] == 2'
check_json "$T/j3" 'abs(r["results"][0]["map"] - (1 + (1/2 + 2/3) / 2 + 1/3) / 3) < 1e-12'
check_json "$T/j3" 'abs(r["results"][0]["recall@1"] - 1/3) < 1e-12 and r["results"][0]["mean_rank"] == 2'

# --- --precision bf16: the same numbers (ties and all), or refused without oneDNN
for gt in row label; do
    lab=(); [ $gt = label ] && lab=(--query-labels "$T/ql.npy" --gallery-labels "$T/gl.npy")
    if "$BIN" info | grep -q "bfloat16.*: built in (oneDNN)"; then
        "$BIN" eval retrieval --query "$T/q.npy" --gallery "$T/g.npy" "${lab[@]}" --precision bf16 --json \
            > "$T/jb" 2> "$T/eb" || fail "bf16 retrieval by $gt exited $? ($(cat "$T/eb"))"
        want=$T/j1; [ $gt = label ] && want=$T/j3
        "$PY" - "$want" "$T/jb" <<'EOF2' || fail "bf16 retrieval by $gt differs from f32"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
keys = ["recall@1", "recall@5", "recall@10", "median_rank", "mean_rank", "map", "queries"]
assert b["precision"] == "bf16", b
assert all(a["results"][0][k] == b["results"][0][k] for k in keys), (a, b)
assert b["results"][0]["pairs_scored_bf16"] > 0
EOF2
    else
        "$BIN" eval retrieval --query "$T/q.npy" --gallery "$T/g.npy" "${lab[@]}" --precision bf16 > /dev/null \
            2> "$T/eb" && fail "bf16 retrieval without oneDNN exited 0"
        grep -q oneDNN "$T/eb" || fail "bf16 refusal does not name oneDNN: $(cat "$T/eb")"
    fi
done

# --- zero-shot: ranks 1, 2, 1; class 3 has no inputs
"$BIN" eval zeroshot --inputs "$T/q.npy" --classes "$T/classes.npy" --labels "$T/y.npy" --per-class \
    --class-names "$T/names.txt" > "$T/t4" 2> "$T/e4" || fail "zeroshot table exited $? ($(cat "$T/e4"))"
grep -Eq '^top-1 accuracy +66\.67%$' "$T/t4" || fail "top-1 line: $(cat "$T/t4")"
grep -Eq '^top-5 accuracy +100\.00%$' "$T/t4" || fail "top-5 line: $(cat "$T/t4")"
grep -Eq '^ +1 +bed +1 +0\.00$' "$T/t4" || fail "per-class row of bed: $(cat "$T/t4")"
grep -Eq '^ +3 +lamp +0 +-$' "$T/t4" || fail "per-class row of lamp: $(cat "$T/t4")"
"$BIN" eval zeroshot --inputs "$T/q.npy" --classes "$T/classes.npy" --labels "$T/y.npy" --per-class --json \
    > "$T/j4" || fail "zeroshot --json exited $?"
check_json "$T/j4" 'abs(r["top1"] - 2/3) < 1e-12 and r["top5"] == 1 and r["inputs"] == 3 and r["classes"] == 4'
check_json "$T/j4" '[c["top1"] for c in r["per_class"]] == [1, 0, 1, None]'

# --- text files of names and labels edited on Windows ("\r\n"): the "\r" is not part of a name
"$BIN" eval zeroshot --inputs "$T/q.npy" --classes "$T/classes.npy" --labels "$T/y.npy" --per-class \
    --class-names "$T/names_crlf.txt" > "$T/t5" 2> "$T/e5" || fail "zeroshot with CRLF names exited $? ($(cat "$T/e5"))"
cmp -s "$T/t4" "$T/t5" || fail "CRLF class names print differently: $(od -c "$T/t5" | head)"
"$BIN" similarity --model "$T/model.safetensors" --a "$T/q.npy" --side-a a --b "$T/g.npy" --side-b b --top-k 1 \
    --labels-a "$T/qlabels_crlf.txt" --labels-b "$T/glabels_crlf.txt" > "$T/s1" 2> "$T/es1" \
    || fail "similarity with CRLF labels exited $? ($(cat "$T/es1"))"
grep -q $'\r' "$T/s1" && fail "similarity labels keep the \\r of CRLF lines: $(od -c "$T/s1" | head)"
grep -q 'q-two' "$T/s1" && grep -q 'g-two' "$T/s1" || fail "similarity lacks the labels: $(cat "$T/s1")"

# --- errors: non-zero exit, nothing on stdout, exactly one line on stderr
expect_error() { # expected-code description command...
    local code=$1 what=$2
    shift 2
    "$@" > "$T/out" 2> "$T/err"
    local rc=$?
    [ "$rc" = "$code" ] || fail "$what: exit $rc, expected $code ($(cat "$T/err"))"
    [ -s "$T/out" ] && fail "$what: printed on stdout: $(cat "$T/out")"
    [ "$(wc -l < "$T/err")" = 1 ] || fail "$what: expected one line on stderr, got: $(cat "$T/err")"
    grep -q -- "$WANT" "$T/err" || fail "$what: message lacks '$WANT': $(cat "$T/err")"
}
R="$BIN eval retrieval --query $T/q.npy"
WANT="g5.npy rows are 5 wide"; expect_error 1 "width mismatch" $R --gallery "$T/g5.npy"
WANT="3 queries and only 2 gallery rows"; expect_error 1 "more queries than gallery" $R --gallery "$T/g2.npy"
WANT="2 labels for the 3 rows"; expect_error 1 "label count" $R --gallery "$T/g.npy" --query-labels "$T/ql.npy" \
    --gallery-labels "$T/gl_short.npy"
WANT="integers"; expect_error 1 "float labels" $R --gallery "$T/g.npy" --query-labels "$T/lf.npy" \
    --gallery-labels "$T/gl.npy"
WANT="--gallery-labels"; expect_error 2 "one label file" $R --gallery "$T/g.npy" --query-labels "$T/ql.npy"
WANT="need --model"; expect_error 2 "side without model" $R --gallery "$T/g.npy" --query-side a
WANT="--gallery-side is required"; expect_error 2 "missing side" $R --gallery "$T/g.npy" \
    --model "$T/model.safetensors" --query-side a
WANT="missing.npy"; expect_error 1 "missing file" $R --gallery "$T/missing.npy"
WANT="label 4 of input 1"; expect_error 1 "label out of range" "$BIN" eval zeroshot --inputs "$T/q.npy" \
    --classes "$T/classes.npy" --labels "$T/ybad.npy"
WANT="3 names for 4 classes"; head -3 "$T/names.txt" > "$T/names3.txt"
expect_error 1 "class name count" "$BIN" eval zeroshot --inputs "$T/q.npy" --classes "$T/classes.npy" \
    --labels "$T/y.npy" --class-names "$T/names3.txt"
WANT="unknown mode"; expect_error 2 "unknown mode" "$BIN" eval nonsense
WANT="--precision must be f32 or bf16, not 'f16'"
expect_error 2 "bad precision" "$BIN" eval retrieval --query "$T/q.npy" --gallery "$T/g.npy" --precision f16
"$BIN" eval > "$T/out" 2> "$T/err" && fail "eval without a mode exited 0"
grep -q retrieval "$T/err" && grep -q zeroshot "$T/err" || fail "eval without a mode: usage lacks the modes"
"$BIN" eval zeroshot --help > "$T/out" || fail "eval zeroshot --help exited $?"
grep -q -- '--classes-side' "$T/out" || fail "zeroshot --help lacks --classes-side"

finish cli_eval
