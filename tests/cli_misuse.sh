#!/usr/bin/env bash
# Misuse never harms a file (issue 13). Every refused command must exit non-zero (and not by a
# signal), print exactly one line on stderr that names the file (or the flag), change no input
# and leave no new file (output, checkpoint, metrics log or temporary) behind, which also shows
# that it was refused before any work. Classes:
#   2  a file never decides where we write (train --resume and a crafted checkpoint)
#   3  an input is never destroyed (an output that is an input, by name, hard link or symlink)
#   4  outputs are checked before the work (format from the name; SIGINT/SIGTERM clean up)
#   6  checked arithmetic and strict numbers (flags and numbers stored in checkpoints)
#   8  names and paths from files never reach the terminal raw (a checkpoint's recorded paths,
#      metadata values in inspect); a path that is not UTF-8 still trains
#   9  a short resume, kill-free, so that the sanitizer pass covers it (LeakSanitizer)
# Prints the table that docs/errors.md reproduces. Small data: runs in seconds.
. "$(dirname "$0")/lib.sh"
PY=${CMCR_PYTHON:-python3}
"$PY" -c 'import json, struct' 2>/dev/null || { echo "SKIPPED: needs python3 to edit a checkpoint"; exit 77; }
scratch misuse
cd "$T" || exit 1

# A small world and a model trained on it (8 steps per epoch), with its checkpoint.
"$BIN" synth --out w --dim-a 16 --dim-b 16 --latent 8 --concepts 10 --clusters 2 --overlap 400 --memory-a 100 \
    --memory-b 100 --test 40 --oracle 20 --diag 20 >/dev/null 2>err.txt || { cat err.txt; echo "FAIL: synth"; exit 1; }
TR=(train --overlap-a w/overlap_a.npy --overlap-b w/overlap_b.npy --memory-a w/memory_a.npy
    --memory-b w/memory_b.npy --preset ulip-clip --out-dim 16 --batch 50 --epochs 2 --threads 1 --cache-dir none
    --quiet)
"$BIN" "${TR[@]}" --out m.safetensors --checkpoint m.safetensors.ckpt 2>err.txt ||
    { cat err.txt; echo "FAIL: cannot make the model"; exit 1; }
echo victim >victim.safetensors
cp w/overlap_a.npy data.safetensors # a one-tensor input with a model's name

# edit SRC DST KEY VALUE: a copy of checkpoint SRC with one metadata entry replaced (KEY "out":
# the output path recorded in cmcr.data; "cfg.NAME": a field of the training parameters, as
# raw JSON).
edit() {
    "$PY" - "$@" <<'EOF'
import json, struct, sys
src, dst, key, val = sys.argv[1:5]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
meta = h["__metadata__"]
if key == "out":
    d = json.loads(meta["cmcr.data"]); d["out"] = val; meta["cmcr.data"] = json.dumps(d)
elif key.startswith("path."):
    d = json.loads(meta["cmcr.data"]); d[key[5:]]["path"] = val; meta["cmcr.data"] = json.dumps(d)
elif key.startswith("cfg."):
    c = json.loads(meta["cmcr.train_config"]); c[key[4:]] = json.loads(val)
    meta["cmcr.train_config"] = json.dumps(c)
else:
    meta[key] = val
hb = json.dumps(h).encode()
hb += b" " * (-len(hb) % 8)
open(dst, "wb").write(struct.pack("<Q", len(hb)) + hb + b[8 + n:])
EOF
}

snapshot() { find . -type f ! -name err.txt ! -name '*.snap' | sort | xargs md5sum; }
# restore: the files as they were before the checks (so that a harmed input, on code that
# harms it, cannot make the later checks fail for another reason).
restore() { find . -mindepth 1 ! -name '*.snap' -delete; tar xf fixtures.snap; }

echo "| class | command | exit | message |"
echo "|---|---|---|---|"
# refused CLASS FILE CMD...: run CMD and check it was refused as above; FILE must be named.
refused() {
    local class=$1 file=$2; shift 2
    snapshot >before.snap
    "$BIN" "$@" >/dev/null 2>err.txt
    local rc=$? what="$class: $*" shown="$*"
    shown=${shown/"${TR[*]}"/train TR...} # TR...: the training flags above
    echo "| $class | \`cmcr $shown\` | $rc | \`$(cat err.txt)\` |"
    [ $rc -ne 0 ] || fail "$what: accepted"
    [ $rc -lt 128 ] || fail "$what: killed by a signal ($rc)"
    [ "$(wc -l <err.txt)" -eq 1 ] || fail "$what: $(wc -l <err.txt) lines on stderr"
    ! LC_ALL=C grep -q '[[:cntrl:]]' <(tr -d '\n' <err.txt) || fail "$what: control characters on stderr"
    grep -qF -- "$file" err.txt || fail "$what: message does not name $file"
    snapshot >after.snap
    cmp -s before.snap after.snap || { fail "$what: files changed: $(diff before.snap after.snap | tr '\n' ' ')"; restore; }
}

# Every file the checks use, made now.
edit m.safetensors.ckpt x.safetensors.ckpt out "$T/victim.safetensors"
cp x.safetensors.ckpt evil.ckpt
ln w/overlap_b.npy hard.npy
ln -s w/memory_a.npy sym.jsonl
cp m.safetensors.ckpt ck.safetensors
tar cf fixtures.snap --exclude='*.snap' .

# ---- 2: a file never decides where we write
refused 2 evil.ckpt train --resume evil.ckpt --cache-dir none --quiet
snapshot | grep -v ' ./x\.' >before.snap
"$BIN" train --resume x.safetensors.ckpt --cache-dir none --quiet 2>err.txt ||
    fail "2: resume to the default output failed: $(cat err.txt)"
[ -s x.safetensors ] || fail "2: resume did not write the default output x.safetensors"
snapshot | grep -v ' ./x\.' >after.snap
cmp -s before.snap after.snap || fail "2: resume wrote where the checkpoint said: $(diff before.snap after.snap | tr '\n' ' ')"
restore
echo "| 2 | \`cmcr train --resume x.safetensors.ckpt\` (records out=victim.safetensors) | 0 | wrote x.safetensors |"

# ---- 3: an input is never destroyed
refused 3 w/overlap_a.npy "${TR[@]}" --out o.safetensors --checkpoint w/overlap_a.npy
refused 3 w/memory_b.npy "${TR[@]}" --out o.safetensors --metrics w/memory_b.npy
refused 3 sym.jsonl "${TR[@]}" --out o.safetensors --metrics sym.jsonl
refused 3 data.safetensors "${TR[@]}" --pseudo-a data.safetensors --pseudo-b w/overlap_b.npy --out data.safetensors
refused 3 ck.safetensors train --resume ck.safetensors --out ck.safetensors --cache-dir none --quiet
refused 3 hard.npy project --model m.safetensors --side b --in w/overlap_b.npy --out hard.npy
refused 3 w/../w/test_y.npy similarity --model m.safetensors --a w/test_x.npy --side-a a --b w/test_y.npy \
    --side-b b --top-k 0 --out w/../w/test_y.npy
refused 3 ./w/memory_a.npy aggregate --queries w/overlap_a.npy --memory w/memory_a.npy --out ./w/memory_a.npy
refused 3 m.safetensors convert m.safetensors m.safetensors

# ---- 4: outputs checked before the work
refused 4 x.npy "${TR[@]}" --out x.npy --metrics x.jsonl
refused 4 p.safetensors project --model m.safetensors --side a --in w/test_x.npy --out p.safetensors
refused 4 s.safetensors similarity --model m.safetensors --a w/test_x.npy --side-a a --b w/test_y.npy --side-b b \
    --top-k 0 --out s.safetensors
refused 4 a.pt aggregate --queries w/overlap_a.npy --memory w/memory_a.npy --out a.pt

# A signal during a long command removes its temporary file: project a large input one row at
# a time, and signal it once its (full-size, pre-allocated) temporary exists.
"$PY" - <<'EOF'
import struct
rows, cols = 100000, 16
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
with open("big.npy", "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
    f.write(struct.pack("<%df" % cols, *([0.25] * cols)) * rows)
EOF
# signalled WHAT OUT SIG COMMAND...: run COMMAND (which writes OUT), signal it once a temporary
# file of OUT exists, and check that it ended by the signal and left neither OUT nor any
# temporary file (up to three tries, in case it finishes first).
signalled() {
    local what=$1 out=$2 sig=$3 caught=0 try pid rc left
    shift 3
    for try in 1 2 3; do
        rm -f "$out"
        # (exec'd with SIGINT at its default: a non-interactive shell starts background jobs with it ignored)
        "$PY" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
            "$BIN" "$@" 2>err.txt &
        pid=$!
        while kill -0 $pid 2>/dev/null && ! ls "$out".tmp.* >/dev/null 2>&1; do sleep 0.002; done
        kill -"$sig" $pid 2>/dev/null
        wait $pid
        rc=$?
        [ $rc -ge 128 ] || continue # finished first: try again
        caught=1
        left=$(ls "$out"* 2>/dev/null)
        echo "| 4 | \`cmcr $what ... $out\`, SIG$sig | $rc | (no output; left: ${left:-nothing}) |"
        [ -z "$left" ] || fail "4: SIG$sig during $what left $left"
        break
    done
    [ $caught -eq 1 ] || fail "4: $what finished before SIG$sig three times"
}
for sig in INT TERM; do
    signalled project big_out.npy $sig project --model m.safetensors --side a --in big.npy --out big_out.npy --block 1
done
# a .pt: libzip, left to write the file itself, used a temporary name of its own that no
# signal handler knew (it was left behind)
"$PY" -c 'import numpy as np; np.save("huge.npy", np.full((2000000, 16), 0.25, np.float32))'
signalled convert huge.pt INT convert huge.npy huge.pt
rm -f huge.npy

# ---- 6: checked arithmetic, strict numbers
refused 6 epochs "${TR[@]}" --out o.safetensors --epochs 1152921504606846976
refused 6 --threads "${TR[@]}" --out o.safetensors --threads 4294967297
refused 6 --layers "${TR[@]}" --out o.safetensors --layers 4294967298
refused 6 --seed "${TR[@]}" --out o.safetensors --seed -1
refused 6 --top-k "${TR[@]}" --out o.safetensors --top-k -3
refused 6 --tau "${TR[@]}" --out o.safetensors --tau 0
refused 6 --lr "${TR[@]}" --out o.safetensors --lr nan
refused 6 --lr "${TR[@]}" --out o.safetensors --lr ' 0.001'
edit m.safetensors.ckpt step.ckpt cmcr.step 12abc
refused 6 step.ckpt train --resume step.ckpt --out o.safetensors --cache-dir none --quiet
edit m.safetensors.ckpt seed.ckpt cfg.seed '"1x"'
refused 6 seed.ckpt train --resume seed.ckpt --out o.safetensors --cache-dir none --quiet
edit m.safetensors.ckpt epochs.ckpt cfg.epochs 1e300
refused 6 epochs.ckpt train --resume epochs.ckpt --out o.safetensors --cache-dir none --quiet

# ---- 8: names from files never reach the terminal raw; odd but valid paths still work
edit m.safetensors.ckpt ctl.safetensors.ckpt path.overlap-a "$(printf '\033[31mRED\033[0m\nsecond line')"
refused 8 ctl.safetensors.ckpt train --resume ctl.safetensors.ckpt --cache-dir none --quiet
cp w/overlap_a.npy "$(printf 'caf\351.npy')"
if "$BIN" train --overlap-a "$(printf 'caf\351.npy')" "${TR[@]:3}" --out latin1.safetensors 2>err.txt; then
    "$BIN" inspect latin1.safetensors | grep -q 'caf[^ ]*xe9\.npy' || fail "8: the non-UTF-8 path is not recorded escaped"
    echo "| 8 | \`cmcr train --overlap-a caf\\xe9.npy ...\` (a path that is not UTF-8) | 0 | trains; the path is recorded as caf\\xe9.npy |"
else
    fail "8: training from a path that is not UTF-8 failed: $(cat err.txt)"
fi
"$PY" -c '
import json, struct
h = json.dumps({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                "__metadata__": {"note": "line1\nforged listing line\tTAB"}}).encode()
h += b" " * (-len(h) % 8)
open("meta_nl.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"\0" * 4)
'
"$BIN" inspect meta_nl.safetensors >out.txt 2>&1 || fail "8: inspect of a value with a newline failed: $(cat out.txt)"
grep -q '^forged' out.txt && fail "8: inspect printed a metadata value's newline raw"
grep -qF 'line1\x0aforged listing line\x09TAB' out.txt || fail "8: inspect does not show the value escaped: $(cat out.txt)"
# (a metrics log and an aggregation cache that would be written during the work show that
# the refusal came before it)
refused 4 nodir/o.safetensors "${TR[@]}" --out nodir/o.safetensors --metrics probe.jsonl
refused 4 nd/m.jsonl "${TR[@]}" --out o.safetensors --metrics nd/m.jsonl --cache-dir aggcache
"$BIN" "${TR[@]}" --epochs 1 --out tty.safetensors --metrics /dev/stdout >out.txt 2>err.txt ||
    fail "4: --metrics /dev/stdout refused: $(cat err.txt)"
grep -q '"step":1' out.txt || fail "4: --metrics /dev/stdout wrote no step"

# ---- 9: a fast resume (the sanitizer pass runs it; the minute-long cli_train_resume it skips):
# from the final checkpoint, to the identical model, with --metrics appended to.
echo '{"earlier":"line"}' >r.jsonl
cp m.safetensors m0.safetensors
if "$BIN" train --resume m.safetensors.ckpt --metrics r.jsonl --cache-dir none --quiet 2>err.txt; then
    cmp -s m0.safetensors m.safetensors || fail "9: resume from the final checkpoint changed the model"
    grep -q earlier r.jsonl || fail "9: --metrics truncated its log instead of appending"
    echo "| 9 | \`cmcr train --resume m.safetensors.ckpt --metrics r.jsonl\` | 0 | (LSan-clean; log appended) |"
else
    fail "9: resume failed: $(cat err.txt)"
fi
# and from the middle of a run (the checkpoint's step set back to 4 of 16: the real resume
# path, 12 steps, under LeakSanitizer in the sanitizer pass)
edit m.safetensors.ckpt mid.safetensors.ckpt cmcr.step 4
"$BIN" train --resume mid.safetensors.ckpt --cache-dir none 2>err.txt ||
    fail "9: resume from step 4 failed: $(cat err.txt)"
grep -q "from step 4" err.txt && [ -s mid.safetensors ] || fail "9: resume from step 4 did not run: $(cat err.txt)"
"$BIN" "${TR[@]}" --out fresh.safetensors --metrics r.jsonl --checkpoint fresh.ckpt 2>err.txt ||
    fail "9: a fresh run with --metrics failed: $(cat err.txt)"
grep -q earlier r.jsonl || fail "9: --metrics truncated its log on a fresh run instead of appending"

finish cli_misuse
