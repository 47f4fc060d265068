#!/usr/bin/env bash
# The installed library can be used by others: `cmake --install` into a temporary prefix, then
# a small C program built against it through pkg-config (cmcr.pc) and another through CMake's
# find_package(cmcr); both run. libcmcr exports only the public API: a program that calls an
# internal function does not link, `nm -D` lists cmcr_ symbols only, and every function of
# the header is exported. Then a static libcmcr, built here from the sources, through
# find_package (not in a sanitizer build: it would take minutes there).
. "$(dirname "$0")/lib.sh"
BUILD=${CMCR_BUILD_DIR:?CMCR_BUILD_DIR not set}
SRC=${CMCR_SOURCE_DIR:?CMCR_SOURCE_DIR not set}
# a sanitizer build's library needs the programs built with the same sanitizers
SAN=${CMCR_SANITIZE:+-fsanitize=$CMCR_SANITIZE}
scratch install

cat >"$T/prog.c" <<'C'
#include <cmcr.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    float x[4] = {3, 4, 0, 0};
    cmcr_normalize_rows(x, 1, 4);
    if (strcmp(cmcr_version(), CMCR_VERSION_STRING) != 0 || x[0] != 0.6f || x[1] != 0.8f) return 1;
    cmcr_train_params p = cmcr_train_default_params(); /* links the trainer (MPI, oneDNN) too */
    printf("cmcr %s %g\n", cmcr_version(), p.tau);
    return 0;
}
C
printf '#include <cmcr.h>\nvoid *core_xmalloc(unsigned long);\nint main(void) { return core_xmalloc(1) != 0; }\n' >"$T/internal.c"

# use_prefix P KIND: programs built against the install in P (KIND shared or static) run.
use_prefix() {
    local P=$1 kind=$2 pc pcdir flags
    pc=$(find "$P" -name cmcr.pc | head -1)
    [ -n "$pc" ] || { fail "$kind: no cmcr.pc installed"; return; }
    [ -f "$P/include/cmcr.h" ] || fail "$kind: no include/cmcr.h installed"
    pcdir=$(dirname "$pc")
    flags="$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs cmcr) -Wl,-rpath,$(dirname "$pcdir")"
    rm -f "$T/prog"
    # (a static libcmcr through pkg-config means `pkg-config --static`, which also asks for the
    # static-link packages of libzip's own dependencies, -lbz2 -lssl -lz: not installed here,
    # so the static install is used through find_package only)
    [ "$kind" = shared ] && { cc $SAN -o "$T/prog" "$T/prog.c" $flags 2>"$T/cc.log" ||
        fail "$kind: build through pkg-config: $(head -3 "$T/cc.log")"; }
    if [ -x "$T/prog" ]; then
        "$T/prog" | grep -q "^cmcr " || fail "$kind: the pkg-config program did not run"
        # the same command line must refuse a program that calls an internal function
        if [ "$kind" = shared ] && cc $SAN -o "$T/internal" "$T/internal.c" $flags 2>/dev/null; then
            fail "a program linked an internal function (core_xmalloc) of libcmcr"
        fi
    fi
    rm -rf "$T/cm"
    mkdir -p "$T/cm"
    cp "$T/prog.c" "$T/cm/prog.c"
    printf 'cmake_minimum_required(VERSION 3.21)\nproject(uses_cmcr C)\nfind_package(cmcr REQUIRED)\nadd_executable(prog prog.c)\ntarget_link_libraries(prog PRIVATE cmcr::cmcr)\n' \
        >"$T/cm/CMakeLists.txt"
    if cmake -S "$T/cm" -B "$T/cm/build" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_FLAGS="$SAN" >"$T/cm.log" 2>&1 &&
        cmake --build "$T/cm/build" >>"$T/cm.log" 2>&1; then
        "$T/cm/build/prog" | grep -q "^cmcr " || fail "$kind: the find_package program did not run"
    else
        fail "$kind: build through find_package(cmcr): $(grep -m3 -i error "$T/cm.log")"
    fi
}

P=$T/shared
cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1 || fail "cmake --install: $(tail -3 "$T/install.log")"
lib=$(find "$P" -name 'libcmcr.so.*' | head -1)
[ -n "$lib" ] || fail "no libcmcr.so.N installed"
[ -x "$P/bin/cmcr" ] && "$P/bin/cmcr" --version >/dev/null 2>&1 || fail "the installed cmcr does not run"
if [ -n "$lib" ]; then
    others=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^cmcr_' | tr '\n' ' ')
    [ -z "$others" ] || fail "libcmcr exports non-API symbols: $others"
    readelf -d "$lib" | grep -q 'SONAME.*libcmcr\.so\.[0-9]' || fail "libcmcr has no versioned SONAME"
    # and every function of the header is exported (a declaration without CMCR_API is not)
    missing=$(comm -23 <(grep -o '\bcmcr_[a-z0-9_]*(' "$P/include/cmcr.h" | tr -d '(' | sort -u) \
                       <(nm -D --defined-only "$lib" | awk '{print $3}' | sort -u) | tr '\n' ' ')
    [ -z "$missing" ] || fail "declared in cmcr.h but not exported: $missing"
fi
use_prefix "$P" shared

if [ -z "$SAN" ]; then
    if cmake -S "$SRC" -B "$T/sb" -DBUILD_SHARED_LIBS=OFF -DCMCR_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >"$T/sb.log" 2>&1 &&
        cmake --build "$T/sb" -j"$(nproc)" >>"$T/sb.log" 2>&1 &&
        cmake --install "$T/sb" --prefix "$T/static" >>"$T/sb.log" 2>&1; then
        use_prefix "$T/static" static
    else
        fail "static build and install: $(grep -m3 -i error "$T/sb.log")"
    fi
fi
finish install
