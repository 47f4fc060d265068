#!/usr/bin/env bash
# The installed library can be used by others: `cmake --install` into a temporary prefix, then
# a small C program built against it through pkg-config (cmcr.pc) and another through CMake's
# find_package(cmcr); both run. libcmcr exports only the public API: a program that calls an
# internal function does not link, and `nm -D` lists cmcr_ symbols only.
. "$(dirname "$0")/lib.sh"
BUILD=${CMCR_BUILD_DIR:?CMCR_BUILD_DIR not set}
# a sanitizer build's library needs the programs built with the same sanitizers
SAN=${CMCR_SANITIZE:+-fsanitize=$CMCR_SANITIZE}
scratch install
P=$T/prefix
cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1 || { cat "$T/install.log"; fail "cmake --install"; finish install; }
pc=$(find "$P" -name cmcr.pc | head -1)
lib=$(find "$P" -name 'libcmcr.so.*' | head -1)
[ -n "$pc" ] || fail "no cmcr.pc installed"
[ -x "$P/bin/cmcr" ] || fail "no bin/cmcr installed"
[ -f "$P/include/cmcr.h" ] || fail "no include/cmcr.h installed"
[ -n "$lib" ] || fail "no libcmcr.so.N installed"
if [ -n "$lib" ]; then
    others=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^cmcr_' | tr '\n' ' ')
    [ -z "$others" ] || fail "libcmcr exports non-API symbols: $others"
    readelf -d "$lib" | grep -q 'SONAME.*libcmcr\.so\.[0-9]' || fail "libcmcr has no versioned SONAME"
    # and every function of the header is exported (a declaration without CMCR_API is not)
    missing=$(comm -23 <(grep -o '\bcmcr_[a-z0-9_]*(' "$P/include/cmcr.h" | tr -d '(' | sort -u) \
                       <(nm -D --defined-only "$lib" | awk '{print $3}' | sort -u) | tr '\n' ' ')
    [ -z "$missing" ] || fail "declared in cmcr.h but not exported: $missing"
fi
"$P/bin/cmcr" --version >/dev/null 2>&1 || fail "the installed cmcr does not run"

cat >"$T/prog.c" <<'C'
#include <cmcr.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    float x[4] = {3, 4, 0, 0};
    cmcr_normalize_rows(x, 1, 4);
    if (strcmp(cmcr_version(), CMCR_VERSION_STRING) != 0 || x[0] != 0.6f || x[1] != 0.8f) return 1;
    printf("cmcr %s\n", cmcr_version());
    return 0;
}
C
PKG_CONFIG_PATH=$(dirname "$pc") cc $SAN -o "$T/prog" "$T/prog.c" $(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs cmcr) \
    -Wl,-rpath,"$(dirname "$lib")" 2>"$T/cc.log" || fail "build through pkg-config: $(cat "$T/cc.log")"
[ -x "$T/prog" ] && { "$T/prog" | grep -q "^cmcr " || fail "the pkg-config program did not run"; }

printf '#include <cmcr.h>\nvoid *core_xmalloc(unsigned long);\nint main(void) { return core_xmalloc(1) != 0; }\n' >"$T/internal.c"
if cc $SAN -o "$T/internal" "$T/internal.c" $(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs cmcr) 2>/dev/null; then
    fail "a program linked an internal function (core_xmalloc) of libcmcr"
fi

mkdir -p "$T/cm"
cp "$T/prog.c" "$T/cm/prog.c"
cat >"$T/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(uses_cmcr C)
find_package(cmcr REQUIRED)
add_executable(prog prog.c)
target_link_libraries(prog PRIVATE cmcr::cmcr)
CM
if cmake -S "$T/cm" -B "$T/cm/build" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_FLAGS="$SAN" >"$T/cm.log" 2>&1 &&
    cmake --build "$T/cm/build" >>"$T/cm.log" 2>&1; then
    "$T/cm/build/prog" | grep -q "^cmcr " || fail "the find_package program did not run"
else
    fail "build through find_package(cmcr): $(tail -5 "$T/cm.log")"
fi
finish install
