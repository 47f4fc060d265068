#!/usr/bin/env bash
# Make a test fixture once per build tree: tests/fixture.sh OUT SCRIPT [ARGS...] runs
# `$CMCR_PYTHON SCRIPT --out DIR ARGS...` into a temporary folder and renames it to OUT, with
# the sha256 of the reference scripts (scripts/*.py) in OUT/stamp. When OUT's stamp matches
# the scripts of this source tree, nothing runs: large fixtures (full-size encoder weights)
# are made once, and again only when a reference script changes. Never writes into the
# source tree. Exits 77 (skipped) when Debian's PyTorch, NumPy or Pillow is missing.
set -euo pipefail
out=$1
script=$2
shift 2
py=${CMCR_PYTHON:-/usr/bin/python3}
src=${CMCR_SOURCE_DIR:?}
stamp=$(cat "$src"/scripts/*.py | sha256sum | cut -d' ' -f1)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ]; then
    echo "fixture $out: up to date ($stamp)"
    exit 0
fi
if ! "$py" -c 'import torch, numpy, PIL, regex' 2>/dev/null; then
    echo "SKIP: $py lacks torch, numpy, PIL or regex (scripts/install-deps.sh installs them)"
    exit 77
fi
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
"$py" "$src/scripts/$script" --out "$tmp" "$@"
echo "$stamp" > "$tmp/stamp"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "fixture $out: made by $script in $(( $(date +%s) - start )) s"
