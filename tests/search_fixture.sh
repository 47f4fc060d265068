#!/usr/bin/env bash
# Make the connections the search, localisation and serve tests use (ctest fixture "search"):
# tests/search_fixture.sh OUT writes OUT/clap_clip.safetensors (side a 512 wide, the small
# CLAP's width; side b 96 wide, the small CLIP's) and OUT/ulip_clip.safetensors (a: CLIP 96,
# b: the small PointBERT's 512), each trained by cmcr synth + cmcr train on a generated world.
# The encoders have random weights, so these connections check mechanics, not meaning. About
# 10 s; made again on every ctest run, into a temporary folder renamed into place.
set -euo pipefail
out=$1
BIN=${CMCR_BIN:?}
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
world() { # NAME DIM_A DIM_B PRESET
    "$BIN" synth --out "$tmp/$1" --dim-a "$2" --dim-b "$3" --overlap 4096 --memory-a 4000 --memory-b 4000 \
        --test 200 --oracle 200 --diag 200 --concepts 50 --clusters 5 >/dev/null
    "$BIN" train --overlap-a "$tmp/$1/overlap_a.npy" --overlap-b "$tmp/$1/overlap_b.npy" \
        --memory-a "$tmp/$1/memory_a.npy" --memory-b "$tmp/$1/memory_b.npy" --preset "$4" \
        --epochs 5 --batch 1024 --quiet --out "$tmp/$1.safetensors"
    rm -rf "$tmp/$1" "$tmp/$1.safetensors.ckpt"
}
world clap_clip 512 96 clap-clip
world ulip_clip 96 512 ulip-clip
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
ls "$out"
