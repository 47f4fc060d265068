#!/usr/bin/env bash
# Run the README's quick start on a pristine Debian 12, as a new user would.
#
#   scripts/fresh-machine.sh [--keep]      (as root; needs network access to Debian's mirror)
#
# Builds a minimal Debian 12 root (debootstrap --variant=minbase bookworm), mounts /proc,
# /sys and /dev in it, unpacks `git archive HEAD` of this checkout into /root/cmcr there, and
# runs the two commands of the README's "Quick start" block, read from the README itself, in
# that root as root. The test data beside the checkout (../shared, when present) is mounted
# read-only at the same place relative to it (/root/shared), so the tests that need it run in
# the root too, and the second command is the whole test suite. Then it compares the recall table `cmcr demo` printed with the one in the
# README. A package installed by hand on this machine cannot hide a missing install step:
# the root starts with none of them. Prints one result line per step and exits non-zero if
# any failed; everything is unmounted and removed on every exit path (--keep leaves the root
# in place for a look after a failure, and says where).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
keep=0
[ "${1:-}" = "--keep" ] && keep=1

[ "$(id -u)" -eq 0 ] || { echo "fresh-machine: must run as root (debootstrap, chroot, mount)" >&2; exit 2; }
command -v debootstrap >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

work=$(mktemp -d /var/tmp/cmcr-fresh-XXXXXX)
root=$work/root
cleanup() {
    local m
    for m in root/shared dev/pts dev sys proc; do
        if mountpoint -q "$root/$m" 2>/dev/null; then umount -l "$root/$m" || echo "fresh-machine: cannot unmount $root/$m"; fi
    done
    if [ "$keep" -eq 1 ]; then
        echo "fresh-machine: root kept in $root"
    elif grep -q " $work/" /proc/self/mountinfo; then # never delete through a mount (the test data)
        echo "fresh-machine: something is still mounted under $work: not removed, unmount and remove it by hand"
    else
        rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The quick start: the first two command lines of the README's first ```sh block after
# "## Quick start".
mapfile -t cmds < <(awk '/^## Quick start/ {q=1} q && /^```sh/ {b=1; next} b && /^```/ {exit}
                         b && NF {print}' README.md)
[ "${#cmds[@]}" -eq 2 ] || { echo "fresh-machine: README's quick start has ${#cmds[@]} commands, expected 2" >&2; exit 1; }

step() { # step NAME SECONDS-START RC
    printf 'fresh-machine: %-40s %s (%d s)\n' "$1" "$([ "$3" -eq 0 ] && echo passed || echo "FAILED (exit $3)")" \
        "$(($(date +%s) - $2))"
}

t=$(date +%s)
rc=0
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 || rc=$?
step "debootstrap --variant=minbase bookworm" "$t" "$rc"
[ "$rc" -eq 0 ] || { tail -20 "$work/debootstrap.log"; exit 1; }

# What a new Debian 12 machine has: the release, its updates and its security archive.
cat >"$root/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf"
# What the Debian installer writes and debootstrap does not: without it "localhost" does not
# resolve in the root (Selenium reaches chromedriver at localhost in the browser test).
[ -s "$root/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mkdir -p "$root/root/cmcr"
git -C "$src" archive HEAD | tar -x -C "$root/root/cmcr"
# The test data, read-only: a bind mount on the same file system would not stop
# `rm --one-file-system` at cleanup, a read-only one does (and cleanup unmounts it first).
if [ -d "$src/../shared/data" ]; then
    mkdir -p "$root/root/shared"
    if mount --bind "$src/../shared" "$root/root/shared" && mount -o remount,ro,bind "$root/root/shared" &&
        [ ! -w "$root/root/shared" ]; then # access() says EROFS, also to root
        echo "fresh-machine: test data: $(cd "$src/../shared" && pwd) mounted read-only at /root/shared"
    else # the plain suite runs only here in CI (.ci/run): its data tests must not skip silently
        umount -l "$root/root/shared" 2>/dev/null || true
        echo "fresh-machine: FAILED: could not mount the test data read-only at /root/shared"
        exit 1
    fi
fi

failed=0
for i in 0 1; do
    t=$(date +%s)
    rc=0
    chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 TERM=dumb bash -c "cd /root/cmcr && ${cmds[$i]}" >"$work/cmd$i.log" 2>&1 || rc=$?
    step "README command $((i + 1))" "$t" "$rc"
    if [ "$rc" -ne 0 ]; then
        failed=1
        echo "--- ${cmds[$i]}"
        tail -40 "$work/cmd$i.log"
    fi
done
[ "$failed" -eq 0 ] || exit 1
grep -E "tests passed|tests failed" "$work/cmd1.log" | sed "s/^/fresh-machine: ctest in the root: /"

# The demo's recall table (its lines with '|') against the README's.
readme_table=$(awk '/^```$/ && r {exit} r {print} /^What `cmcr demo` prints/ {w=1} w && /^```$/ {r=1}' README.md |
               grep -E '\|' || true)
demo_table=$(grep -E '\|' "$work/cmd0.log" || true)
if [ -n "$demo_table" ] && [ "$demo_table" = "$readme_table" ]; then
    echo "fresh-machine: the demo's recall table is identical to the README's"
else
    echo "fresh-machine: FAILED: the demo's recall table differs from the README's:"
    diff <(echo "$readme_table") <(echo "$demo_table") || true
    exit 1
fi
echo "fresh-machine: both README commands passed on a pristine Debian 12"
