#!/usr/bin/env bash
# OpenBLAS kernel selection through the CLI: a user's OPENBLAS_CORETYPE is never overridden,
# and results are correct on every kernel set cmcr may choose (the default, SkylakeX, Haswell):
# `cmcr info` names the kernels, and test_blas's sgemm check passes on each.
set -u
BIN=${CMCR_BIN:?CMCR_BIN not set}
TEST_BLAS="$(dirname "$BIN")/tests/test_blas"
fails=0
out=$(OPENBLAS_CORETYPE=Prescott "$BIN" info)
echo "$out"
echo "$out" | grep -q "kernels Prescott" || { echo "FAIL: the user's OPENBLAS_CORETYPE was overridden"; fails=$((fails + 1)); }
echo "$out" | grep -q "set by the user" || { echo "FAIL: info does not say the user chose the kernels"; fails=$((fails + 1)); }
"$BIN" info
# The re-exec path: pretend OpenBLAS picked its generic Prescott kernels on this CPU.
if grep -qw avx2 /proc/cpuinfo; then
    out=$(CMCR_TEST_BLAS_CORE=Prescott "$BIN" info)
    echo "$out"
    echo "$out" | grep -Eq "kernels (SkylakeX|Haswell).*chosen by cmcr: OpenBLAS picked the slow Prescott" \
        || { echo "FAIL: cmcr did not restart itself with faster kernels"; fails=$((fails + 1)); }
fi
for core in "" SkylakeX Haswell; do
    if grep -q avx512f /proc/cpuinfo || [ "$core" != SkylakeX ]; then
        if [ -n "$core" ]; then OPENBLAS_CORETYPE=$core "$TEST_BLAS" | grep kernels; rc=${PIPESTATUS[0]}
        else "$TEST_BLAS" | grep kernels; rc=${PIPESTATUS[0]}; fi
        [ "$rc" -eq 0 ] || { echo "FAIL: sgemm wrong on kernels '${core:-default}'"; fails=$((fails + 1)); }
    fi
done
if [ $fails -eq 0 ]; then echo "1 passed, 0 failed"; exit 0; fi
echo "0 passed, 1 failed"
exit 1
