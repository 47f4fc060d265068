#!/usr/bin/env bash
# Install what cmcr needs to build and test on Debian 12 (as root, or with sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Build: compiler, CMake, OpenBLAS (OpenMP build), libzip, cJSON, and the media and text
# front ends' libraries (libjpeg-turbo, libpng, zlib, PCRE2, utf8proc; libsndfile, libsoxr and
# FFTW3 for audio). Tests: cmocka, and Debian's PyTorch + NumPy for the interop and parity
# tests, Pillow and regex for the encoders' references (image resize, CLIP tokenizer),
# torchaudio and soundfile for CLAP's (mel, decoding). Optional for a build: Open MPI
# (distributed runs; without it cmcr runs as one process) and oneDNN (float32 and bfloat16
# products; without it --precision bf16 is refused). oneDNN's CMake package also needs the
# OpenCL headers (ocl-icd-opencl-dev, only a Recommends of libdnnl-dev, so skipped by
# --no-install-recommends). Fuzzing (scripts/fuzz.sh): clang with its libFuzzer and
# sanitizer runtimes. The fresh-machine check (scripts/fresh-machine.sh) brings its own
# debootstrap. The Python package (python/cmcr, docs/python.md): cffi, which it loads libcmcr
# with (ABI mode: nothing compiled), NumPy, and pytest for its tests. cmcr serve: libmicrohttpd
# (its HTTP server); its API test talks to it with curl, its browser test drives Debian's
# Chromium headless through chromium-driver and python3-selenium, and its load test runs wrk.
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config \
    libopenblas-openmp-dev libzip-dev libcjson-dev \
    libjpeg62-turbo-dev libpng-dev zlib1g-dev libpcre2-dev libutf8proc-dev \
    libsndfile1-dev libsoxr-dev libfftw3-dev libmicrohttpd-dev \
    libopenmpi-dev openmpi-bin libdnnl-dev ocl-icd-opencl-dev \
    libcmocka-dev python3 python3-numpy python3-torch python3-pil python3-regex \
    python3-torchaudio python3-soundfile python3-cffi python3-pytest \
    curl chromium chromium-driver python3-selenium wrk \
    clang libclang-rt-14-dev >/dev/null
