# tests/lib.sh - sourced by the shell tests of the CLI (tests/cli_*.sh, tests/mpi/cli_*.sh):
# the binary, a failure counter, a scratch directory, a Python with numpy, the verdict.
set -u
BIN=${CMCR_BIN:?CMCR_BIN not set}
fails=0

# fail MESSAGE: count one failed check and say which.
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# scratch NAME: T = a new directory /tmp/cmcr-NAME-XXXXXX, removed when the script exits.
scratch() {
    T=$(mktemp -d "/tmp/cmcr-$1-XXXXXX") || exit 1
    trap 'rm -rf "$T"' EXIT
}

# need_numpy WHAT: PY = the first of $CMCR_PYTHON, python3, /usr/bin/python3 that has numpy;
# without one, skip the test (exit 77, which ctest reports as skipped), saying what needed it.
need_numpy() {
    local p
    PY=""
    for p in "${CMCR_PYTHON:-}" python3 /usr/bin/python3; do
        if [ -n "$p" ] && "$p" -c 'import numpy' >/dev/null 2>&1; then PY=$p; return 0; fi
    done
    echo "SKIPPED: needs python3 with numpy $1 (tried \$CMCR_PYTHON, python3, /usr/bin/python3)"
    exit 77
}

# refusal WHAT COMMAND...: COMMAND must be refused. Prints a table row for the docs, then
# checks: exit non-zero and not by a signal; exactly one line on stderr, without control
# bytes, containing every string of the array NAMES (set before the call); no out.* output
# and no temporary file left in the current directory.
refusal() {
    local what=$1 f rc lines
    shift
    rm -f out.npy out.safetensors out.pt
    "$@" >/dev/null 2>err.txt
    rc=$?
    lines=$(wc -l <err.txt)
    echo "| $what | \`${*#"$BIN" }\` | $rc | \`$(cat err.txt)\` |"
    [ $rc -ne 0 ] || fail "$what: accepted"
    [ $rc -lt 128 ] || fail "$what: killed by a signal (crash)"
    [ "$lines" -eq 1 ] || fail "$what: $lines lines on stderr"
    for f in "${NAMES[@]}"; do grep -qF -- "$f" err.txt || fail "$what: message does not name $f"; done
    ! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' err.txt || fail "$what: raw control bytes on stderr"
    ! ls out.* 2>/dev/null | grep -q . || fail "$what: left an output file"
    ! ls ./*.tmp.* 2>/dev/null | grep -q . || fail "$what: left a temporary file"
}

# close A B TOL: the .npy files have the same shape and differ by at most TOL (needs PY).
close() {
    "$PY" - "$@" <<'EOF' || fail "$1 vs $2 (tolerance $3)"
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape, (a.shape, b.shape)
d = float(np.abs(a.astype(np.float64) - b).max())
print(f"  {sys.argv[1]} vs {sys.argv[2]}: {a.shape}, max abs difference {d:.3g}")
assert d <= float(sys.argv[3]), d
EOF
}

# finish NAME: the verdict line, and exit 0 only when no check failed.
finish() {
    if [ "$fails" -eq 0 ]; then
        echo "$1: all checks passed"
        exit 0
    fi
    echo "$1: $fails check(s) failed"
    exit 1
}
