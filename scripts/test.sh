#!/usr/bin/env bash
# Build cmcr with warnings as errors and run every test under ctest.
#   scripts/test.sh                      release build in build/, all tests
#   CMCR_SANITIZE=address,undefined scripts/test.sh [ctest args]
#                                        sanitizer build in build-sanitize/ (extra args go to ctest),
#                                        built without MPI and oneDNN: it also tests the build
#                                        without the optional dependencies
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${CMCR_SANITIZE:-}" ]; then
    dir=build-sanitize
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMCR_WERROR=ON -DCMCR_SANITIZE="$CMCR_SANITIZE" \
        -DCMCR_MPI=OFF -DCMCR_DNNL=OFF
else
    dir=build
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMCR_WERROR=ON
fi
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j1 "$@"
