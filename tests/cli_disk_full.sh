#!/usr/bin/env bash
# Out of space in mid-write: `cmcr convert` (npy, safetensors, pt writers), `cmcr project`
# (the streaming npy writer) and `cmcr synth` (one atomic file after another) run under a
# file-size limit (ulimit -f; bash counts it in 1024-byte blocks, not POSIX's 512) with SIGXFSZ
# ignored, so that write() fails with EFBIG ("File too large") as it would with ENOSPC on a
# full disk. Each must exit non-zero (not by a signal) with exactly one line on stderr that
# names the output file and says what happened, and leave neither the output nor any
# temporary (*.tmp.*) behind. Limits at several points (0, inside the header, inside the data,
# past the data) reach the failure at different write calls and at the final flush. Files
# that synth completed before the failure must stay intact.
. "$(dirname "$0")/lib.sh"
scratch diskfull
cd "$T" || exit 1

# Inputs, made without a limit: a small world (f32 .npy files) and a model trained on it.
"$BIN" synth --out w --dim-a 64 --dim-b 64 --overlap 400 --memory-a 200 --memory-b 200 --test 50 \
    --oracle 50 --diag 50 >/dev/null 2>synth.err || { cat synth.err; echo "FAIL: cannot make inputs"; exit 1; }
"$BIN" train --overlap-a w/overlap_a.npy --overlap-b w/overlap_b.npy --memory-a w/memory_a.npy \
    --memory-b w/memory_b.npy --preset ulip-clip --out-dim 64 --epochs 1 --batch 100 --threads 1 \
    --cache-dir none --checkpoint-every 0 --out m.safetensors >/dev/null 2>train.err ||
    { cat train.err; echo "FAIL: cannot make the model"; exit 1; }
size() { stat -c %s "$1"; }

# run LIMIT_KIB OUTDIR OUTFILE WHAT -- CMD...: run CMD under the limit and check the failure.
run() {
    local lim=$1 dir=$2 out=$3 what=$4
    shift 5
    rm -rf "$dir"
    mkdir -p "$dir"
    # The limit applies to the subshell only; SIGXFSZ ignored there (and so in the command).
    # stderr goes through a pipe: a file would be subject to the limit too.
    local err rc lines
    err=$( ( trap '' XFSZ; ulimit -f "$lim"; exec "$@" ) 2>&1 >/dev/null )
    rc=$?
    printf '%s\n' "$err" | sed '/^$/d' >err.txt
    lines=$(wc -l <err.txt)
    printf '| %s | %s | %d | `%s` |\n' "$what" "$lim" "$rc" "$(head -1 err.txt)"
    [ $rc -ne 0 ] || fail "$what (limit $lim KiB): exit 0 although the output cannot fit"
    [ $rc -lt 128 ] || fail "$what (limit $lim KiB): killed by a signal ($rc)"
    [ "$lines" -eq 1 ] || { fail "$what (limit $lim KiB): $lines lines on stderr"; cat err.txt; }
    grep -qF "$out" err.txt || fail "$what (limit $lim KiB): message does not name $out"
    grep -qiE "File too large|No space left" err.txt || fail "$what (limit $lim KiB): message does not say why"
    [ ! -e "$out" ] || fail "$what (limit $lim KiB): left the output $out"
    local tmps
    tmps=$(find "$dir" -name '*.tmp.*' | head -3)
    [ -z "$tmps" ] || fail "$what (limit $lim KiB): left temporary file(s): $tmps"
}

# Limits from 0 up to just short of the output's size (each output here is larger than the
# input's n whole KiB: a conversion of it, or its projection to the same width); the last ones
# let all the data through and fail at the final flush.
in=w/overlap_a.npy
n=$(( $(size $in) / 1024 ))
echo "| command | limit (KiB) | exit | message |"
echo "|---|---|---|---|"
for ext in npy safetensors pt; do
    for lim in 0 1 $((n / 2)) $((n - 1)) $n; do
        run "$lim" o o/x.$ext "convert to .$ext" -- "$BIN" convert "$in" o/x.$ext
    done
done
for lim in 0 1 $((n / 2)) $((n - 1)) $n; do
    run "$lim" o o/p.npy "project (npy writer)" -- "$BIN" project --model m.safetensors --side a --in "$in" \
        --out o/p.npy --block 64
done
# synth: overlap_a.npy (first file) fails; then a limit that lets the small files through and
# stops at the first big one (memory_a.npy, 2000 rows), after overlap_*.npy were written.
run 0 o o/w/overlap_a.npy "synth (first file)" -- "$BIN" synth --out o/w --dim-a 64 --dim-b 64 \
    --overlap 400 --memory-a 200 --memory-b 200 --test 50 --oracle 50 --diag 50
run 150 o o/w/memory_a.npy "synth (a later file)" -- "$BIN" synth --out o/w --dim-a 64 --dim-b 64 \
    --overlap 400 --memory-a 2000 --memory-b 200 --test 50 --oracle 50 --diag 50
# What synth completed before the failure is intact (same bytes as an unlimited run), and the
# world is visibly incomplete (no world.json).
"$BIN" synth --out full --dim-a 64 --dim-b 64 --overlap 400 --memory-a 2000 --memory-b 200 --test 50 \
    --oracle 50 --diag 50 >/dev/null 2>&1 || fail "synth without a limit failed"
done_files=$(cd o/w && ls)
[ -n "$done_files" ] || fail "synth (a later file): no file was completed before the failure (test setup)"
for f in $done_files; do
    cmp -s "o/w/$f" "full/$f" || fail "synth (a later file): $f differs from an unlimited run"
done
[ ! -e o/w/world.json ] || fail "synth (a later file): wrote world.json although a file failed"

finish cli_disk_full
