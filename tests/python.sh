#!/usr/bin/env bash
# The Python package's tests (python/tests, pytest) against this build's libcmcr
# ($CMCR_LIBRARY, set by ctest). Skipped (77) when Debian's python3 lacks cffi, NumPy or
# pytest (scripts/install-deps.sh installs them). Writes nothing into the source tree (no
# bytecode, no pytest cache).
set -u
PY=${CMCR_PYTHON:-/usr/bin/python3}
SRC=${CMCR_SOURCE_DIR:?CMCR_SOURCE_DIR not set}
if ! "$PY" -c 'import cffi, numpy, pytest' 2>/dev/null; then
    echo "SKIPPED: $PY lacks cffi, numpy or pytest (Debian: python3-cffi python3-numpy python3-pytest)"
    exit 77
fi
export PYTHONPATH="$SRC/python${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1
exec "$PY" -m pytest -q -p no:cacheprovider -r s "$SRC/python/tests" "$@"
