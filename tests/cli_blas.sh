#!/usr/bin/env bash
# OpenBLAS kernel selection through the CLI: a user's OPENBLAS_CORETYPE is never overridden,
# and results are correct on every kernel set cmcr may choose (the default, SkylakeX, Haswell):
# `cmcr info` names the kernels, and test_blas's sgemm check passes on each.
. "$(dirname "$0")/lib.sh"
TEST_BLAS="$(dirname "$BIN")/tests/test_blas"
out=$(OPENBLAS_CORETYPE=Prescott "$BIN" info)
echo "$out"
echo "$out" | grep -q "kernels Prescott" || fail "the user's OPENBLAS_CORETYPE was overridden"
echo "$out" | grep -q "set by the user" || fail "info does not say the user chose the kernels"
"$BIN" info
# The re-exec path: pretend OpenBLAS picked its generic Prescott kernels on this CPU.
if grep -qw avx2 /proc/cpuinfo; then
    out=$(CMCR_TEST_BLAS_CORE=Prescott "$BIN" info)
    echo "$out"
    echo "$out" | grep -Eq "kernels (SkylakeX|Haswell).*chosen by cmcr: OpenBLAS picked the slow Prescott" \
        || fail "cmcr did not restart itself with faster kernels"
fi
for core in "" SkylakeX Haswell; do
    if grep -q avx512f /proc/cpuinfo || [ "$core" != SkylakeX ]; then
        if [ -n "$core" ]; then OPENBLAS_CORETYPE=$core "$TEST_BLAS" | grep kernels; rc=${PIPESTATUS[0]}
        else "$TEST_BLAS" | grep kernels; rc=${PIPESTATUS[0]}; fi
        [ "$rc" -eq 0 ] || fail "sgemm wrong on kernels '${core:-default}'"
    fi
done
finish cli_blas
