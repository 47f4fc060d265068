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

# finish NAME: the verdict line, and exit 0 only when no check failed.
finish() {
    if [ "$fails" -eq 0 ]; then
        echo "$1: all checks passed"
        exit 0
    fi
    echo "$1: $fails check(s) failed"
    exit 1
}
