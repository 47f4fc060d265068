#!/usr/bin/env bash
# An optional dependency whose CMake package fails to configure switches itself off with one
# line, instead of stopping cmcr's configure (a fresh Debian 12 without the OpenCL headers
# made oneDNN's package stop it); required with -DCMCR_DNNL=ON, the same failure stops it.
# The broken package is a dnnl-config.cmake that fails on purpose, found first through
# CMAKE_PREFIX_PATH.
. "$(dirname "$0")/lib.sh"
SRC=${CMCR_SOURCE_DIR:?CMCR_SOURCE_DIR not set}
scratch optional
mkdir -p "$T/prefix/lib/cmake/dnnl"
echo 'message(FATAL_ERROR "dnnl broken on purpose")' >"$T/prefix/lib/cmake/dnnl/dnnl-config.cmake"
common=(-S "$SRC" -DCMAKE_PREFIX_PATH="$T/prefix" -DBUILD_TESTING=OFF -DCMCR_MPI=OFF)

cmake "${common[@]}" -B "$T/auto" >"$T/auto.log" 2>&1 || fail "AUTO: configure stopped: $(grep -m1 -A2 'CMake Error' "$T/auto.log")"
lines=$(grep -c "^-- cmcr: oneDNN" "$T/auto.log")
[ "$lines" -eq 1 ] || fail "AUTO: $lines lines about oneDNN, expected 1"
grep -q "^-- cmcr: oneDNN .* off (not usable: .*dnnl broken on purpose" "$T/auto.log" ||
    fail "AUTO: no one-line 'off' naming the failure: $(grep 'cmcr: oneDNN' "$T/auto.log")"

cmake "${common[@]}" -B "$T/on" -DCMCR_DNNL=ON >"$T/on.log" 2>&1 && fail "ON: configure passed with a broken oneDNN"
grep -q "dnnl broken on purpose" "$T/on.log" || fail "ON: the failure is not shown"

cmake "${common[@]}" -B "$T/off" -DCMCR_DNNL=OFF >"$T/off.log" 2>&1 || fail "OFF: configure stopped"
grep -q "^-- cmcr: oneDNN .* off (CMCR_DNNL=OFF)" "$T/off.log" || fail "OFF: not said"
finish build_optional
