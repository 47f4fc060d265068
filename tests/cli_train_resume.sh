#!/usr/bin/env bash
# cmcr train never loses work: a run killed with SIGKILL at random points, or stopped with
# Ctrl-C (SIGINT), resumes from its newest checkpoint to exactly the model of the
# uninterrupted run (same seed and threads); bad inputs are refused before any work.
. "$(dirname "$0")/lib.sh"
need_numpy "to make test data"
scratch resume

"$PY" - "$T" <<'EOF'
import sys, numpy as np
d = sys.argv[1]
r = np.random.default_rng(5)
for name, shape in [("oa", (4096, 96)), ("ob", (4096, 64)), ("ma", (3000, 96)), ("mb", (2500, 64))]:
    np.save(f"{d}/{name}.npy", r.standard_normal(shape).astype(np.float32))
bad = r.standard_normal((10, 96)).astype(np.float32); bad[4, 7] = np.nan
np.save(f"{d}/nan.npy", bad)
np.save(f"{d}/short.npy", r.standard_normal((100, 64)).astype(np.float32))
np.save(f"{d}/empty.npy", np.zeros((0, 64), np.float32))
EOF

ARGS=(--overlap-a "$T/oa.npy" --overlap-b "$T/ob.npy" --memory-a "$T/ma.npy" --memory-b "$T/mb.npy"
      --layers 2 --hidden 256 --out-dim 128 --batch 512 --epochs 8 --threads 2 --seed 9
      --checkpoint-every 3 --cache-dir "$T/cache" --quiet)

"$BIN" train "${ARGS[@]}" --out "$T/full.pt" --checkpoint "$T/full.ckpt" || fail "uninterrupted run failed"
total=64 # 4096 rows / batch 512 x 8 epochs

# Start a run with a metrics log and send it a signal once it has logged $2 steps (progress,
# not wall time, decides: the machine's speed varies). Prints the run's exit code.
interrupt_at() {
    local name=$1 step=$2 sig=$3
    rm -f "$T/$name.pt" "$T/$name.ckpt" "$T/$name.jsonl"
    "$BIN" train "${ARGS[@]}" --out "$T/$name.pt" --checkpoint "$T/$name.ckpt" --metrics "$T/$name.jsonl" \
        2>"$T/$name.err" &
    local pid=$!
    while kill -0 $pid 2>/dev/null; do
        if [ -f "$T/$name.jsonl" ] && [ "$(wc -l <"$T/$name.jsonl")" -ge "$step" ]; then
            kill "-$sig" $pid 2>/dev/null
            break
        fi
        sleep 0.01
    done
    wait $pid
    echo $?
}

# SIGKILL at random points of the run (after the first checkpoint, at step 3), then resume.
killed=0
for i in 1 2 3; do
    at=$((4 + RANDOM % (total - 14)))
    rc=$(interrupt_at "k$i" $at KILL)
    if [ "$rc" -ne 137 ]; then echo "run $i finished before the kill (rc $rc); not counted"; continue; fi
    ls "$T" | grep -q "k$i.ckpt.tmp" && echo "run $i: a partial temporary checkpoint was left (expected after SIGKILL; never read)"
    "$BIN" inspect "$T/k$i.ckpt" >/dev/null || fail "checkpoint of killed run $i does not load"
    "$BIN" train --resume "$T/k$i.ckpt" --out "$T/k$i.pt" --threads 2 --cache-dir "$T/cache" --quiet \
        --checkpoint "$T/k$i.ckpt" || fail "resume of run $i failed"
    if cmp -s "$T/full.pt" "$T/k$i.pt"; then
        echo "run $i: killed after step $at of $total, resumed: final model identical to the uninterrupted run"
        killed=$((killed + 1))
    else
        fail "run $i: resumed model differs from the uninterrupted run"
    fi
done
[ $killed -ge 1 ] || fail "no run was killed mid-way"

# Ctrl-C: exit 130 with a checkpoint, then resume.
rc=$(interrupt_at c $((total / 2)) INT)
if [ "$rc" -eq 130 ]; then
    grep -q "continue with: cmcr train --resume $T/c.ckpt --out $T/c.pt" "$T/c.err" ||
        fail "Ctrl-C message does not say how to resume: $(cat "$T/c.err")"
    "$BIN" train --resume "$T/c.ckpt" --out "$T/c.pt" --threads 2 --cache-dir "$T/cache" --quiet ||
        fail "resume after Ctrl-C failed"
    cmp -s "$T/full.pt" "$T/c.pt" && echo "Ctrl-C after step $((total / 2)), resumed: identical" \
        || fail "model resumed after Ctrl-C differs"
else
    cat "$T/c.err"
    fail "Ctrl-C run ended with rc $rc, expected 130"
fi

# A checkpoint from before a parameter existed (here: no "bf16" in its record) resumes with
# that parameter's default.
"$PY" - "$T/full.ckpt" "$T/old.ckpt" <<'EOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
cfg = json.loads(h["__metadata__"]["cmcr.train_config"])
del cfg["bf16"]
h["__metadata__"]["cmcr.train_config"] = json.dumps(cfg, separators=(",", ":"))
hb = json.dumps(h).encode()
hb += b" " * (-len(hb) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(hb)) + hb + b[8 + n:])
EOF
"$BIN" train --resume "$T/old.ckpt" --out "$T/old.pt" --threads 2 --cache-dir "$T/cache" --quiet 2>"$T/e" \
    || fail "a checkpoint without the bf16 field does not resume: $(cat "$T/e")"
cmp -s "$T/full.pt" "$T/old.pt" || fail "the checkpoint without the bf16 field resumed to another model"

# Resume refuses other data.
"$PY" -c "import numpy as np; a=np.load('$T/oa.npy'); a[0,0]+=1; np.save('$T/oa2.npy', a)"
if "$BIN" train --resume "$T/full.ckpt" --overlap-a "$T/oa2.npy" --out "$T/other.pt" --quiet 2>"$T/e"; then
    fail "resume accepted other data"
else grep -q "other data" "$T/e" || fail "unclear message for other data: $(cat "$T/e")"; fi

# --precision bf16: a different model from float32's, recorded in the model, and a killed
# bf16 run resumes (in bf16) to exactly its uninterrupted model. Without bf16 it is refused.
if "$BIN" info | grep -q "bfloat16.*: built in (oneDNN)"; then
    "$BIN" train "${ARGS[@]}" --precision bf16 --out "$T/full16.pt" --checkpoint "$T/full16.ckpt" \
        || fail "bf16 run failed"
    cmp -s "$T/full.pt" "$T/full16.pt" && fail "bf16 trained the same bits as float32 (did it run?)"
    "$BIN" inspect "$T/full16.ckpt" | grep -q '"bf16":true' || fail "the bf16 checkpoint does not record bf16"
    "$BIN" inspect "$T/full.ckpt" | grep -q '"bf16":false' || fail "the float32 checkpoint does not record bf16 off"
    ARGS+=(--precision bf16)
    rc=$(interrupt_at b16 $((total / 2)) KILL)
    if [ "$rc" -eq 137 ]; then
        "$BIN" train --resume "$T/b16.ckpt" --out "$T/b16.pt" --threads 2 --cache-dir "$T/cache" --quiet \
            --checkpoint "$T/b16.ckpt" || fail "resume of the bf16 run failed"
        cmp -s "$T/full16.pt" "$T/b16.pt" && echo "bf16 run killed after step $((total / 2)), resumed: identical" \
            || fail "resumed bf16 model differs from the uninterrupted bf16 run"
    else
        echo "bf16 run finished before the kill (rc $rc); resume not checked"
    fi
    unset 'ARGS[${#ARGS[@]}-1]' 'ARGS[${#ARGS[@]}-2]'
else
    if "$BIN" train "${ARGS[@]}" --precision bf16 --out "$T/b.pt" 2>"$T/e"; then fail "bf16 accepted without oneDNN"
    else grep -q "oneDNN" "$T/e" || fail "unclear bf16 refusal: $(cat "$T/e")"; fi
fi

# Bad inputs: refused with one line, before any work.
check_bad() {
    local what=$1 pattern=$2; shift 2
    if "$BIN" train "$@" --out "$T/bad.pt" --quiet 2>"$T/e"; then fail "$what: accepted"; return; fi
    [ "$(wc -l <"$T/e")" -eq 1 ] || fail "$what: expected one line, got: $(cat "$T/e")"
    grep -q "$pattern" "$T/e" || fail "$what: message lacks '$pattern': $(cat "$T/e")"
    echo "$what -> $(cat "$T/e")"
}
check_bad "row counts differ" "rows but" --overlap-a "$T/oa.npy" --overlap-b "$T/short.npy" --memory-a "$T/ma.npy" --memory-b "$T/mb.npy"
check_bad "memory width differs" "wide" --overlap-a "$T/oa.npy" --overlap-b "$T/ob.npy" --memory-a "$T/mb.npy" --memory-b "$T/mb.npy"
check_bad "NaN row" "row 4" --overlap-a "$T/nan.npy" --overlap-b "$T/ob.npy" --memory-a "$T/ma.npy" --memory-b "$T/mb.npy"
check_bad "empty memory" "empty.npy" --overlap-a "$T/oa.npy" --overlap-b "$T/ob.npy" --memory-a "$T/ma.npy" --memory-b "$T/empty.npy"
check_bad "missing memory" "memory-b" --overlap-a "$T/oa.npy" --overlap-b "$T/ob.npy" --memory-a "$T/ma.npy"
check_bad "width vs model" "expects 512" --overlap-a "$T/oa.npy" --overlap-b "$T/ob.npy" --memory-a "$T/ma.npy" --memory-b "$T/mb.npy" --in-a 512
check_bad "bad precision" "f32 or bf16" --overlap-a "$T/oa.npy" --overlap-b "$T/ob.npy" --memory-a "$T/ma.npy" --memory-b "$T/mb.npy" --precision f16
check_bad "bad temperature" "tau" --overlap-a "$T/oa.npy" --overlap-b "$T/ob.npy" --memory-a "$T/ma.npy" --memory-b "$T/mb.npy" --tau 0
[ -e "$T/bad.pt" ] && fail "a refused run left an output file"

finish cli_train_resume
