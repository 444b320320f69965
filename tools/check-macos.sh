#!/usr/bin/env bash
#
# tools/check-macos.sh - compile and link hpass.core for macOS as a user
# would, with Apple's own libc headers, and check what the bundle needs
# from the system against the oldest macOS it supports.
#
#   tools/check-macos.sh SOURCE.c ...        (make check-macos passes them)
#
# The C compiler is Zig's (tools/get-zig.sh), which carries the headers
# of macOS's libc and links Mach-O without an Apple SDK.  The Lua headers
# are Lua 5.5.0's own (tools/lua55-src.sh): Debian's luaconf.h includes
# a header of Debian's.  For each target below, at its oldest supported
# macOS:
#   1. every source compiles with the Makefile's warnings ($WARN) and
#      -Werror, once with the headers' default visibility and once with
#      -D_DARWIN_C_SOURCE, and with -Wunguarded-availability, which makes
#      a call to anything the headers mark newer than that macOS an error;
#   2. the objects link into a loadable module with Lua's API left to the
#      interpreter, as LuaRocks links one on macOS (-undefined
#      dynamic_lookup; with -shared, since this Zig's linker does not make
#      -bundle files; dlopen, which Lua's require uses, takes either), which
#      must export luaopen_hpass_core and record that macOS as its minimum;
#   3. every symbol the bundle leaves for the system to resolve, other
#      than Lua's API, is in tools/macos-symbols.txt with the macOS
#      release that brought it, no later than the target's.
# The oldest releases: 10.13 for x86-64, the oldest deployment target
# Apple's current Xcode still builds for (hpass itself needs 10.12, for
# clock_gettime), and 11.0 for arm64, the first macOS on Apple silicon.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say () { printf 'check-macos: %s\n' "$*"; }
die () { printf 'check-macos: error: %s\n' "$*" >&2; exit 1; }
[ $# -gt 0 ] || die "usage: tools/check-macos.sh SOURCE.c ..."
WARN=${WARN:--std=c99 -Wall -Wextra -Werror}
targets="x86_64-macos.10.13 aarch64-macos.11.0"

"$root/tools/deps.sh" npm:npm llvm:llvm-nm llvm:llvm-objdump
zig=$("$root/tools/get-zig.sh")
luainc=$("$root/tools/lua55-src.sh")
export ZIG_GLOBAL_CACHE_DIR=$root/build/zig/cache
export ZIG_LOCAL_CACHE_DIR=$root/build/zig/cache
symbols=$root/tools/macos-symbols.txt
out=$root/build/macos

# "10.13" -> 1013, "11.0" -> 1100
vnum () { local a=${1%%.*} b=${1#*.}; b=${b%%.*}; echo $((a * 100 + b)); }

for t in $targets; do
  arch=${t%%-*}
  min=${t#*-macos.}
  for vis in default darwin; do
    flags=()
    [ $vis = darwin ] && flags=(-D_DARWIN_C_SOURCE)
    dir=$out/$arch-$vis
    rm -rf "$dir" && mkdir -p "$dir"
    for f in "$@"; do
      # as LuaRocks builds: -O2 -fPIC and the rockspec's defines
      # shellcheck disable=SC2086
      "$zig" cc -target "$t" $WARN -Wunguarded-availability -fPIC -O2 \
        -D_GNU_SOURCE "${flags[@]}" -I"$luainc" -c "$root/$f" \
        -o "$dir/$(basename "$f" .c).o" ||
        die "$f does not compile for $t ($vis visibility)"
    done
  done
  bundle=$out/$arch/hpass/core.so
  mkdir -p "$(dirname "$bundle")"
  "$zig" cc -target "$t" -shared -undefined dynamic_lookup -o "$bundle" \
    "$out/$arch-default"/*.o || die "the $t module does not link"
  hdr=$(llvm-objdump --macho --private-headers "$bundle")
  grep -q ' DYLIB ' <<< "$hdr" || die "$bundle is no Mach-O library"
  # LC_BUILD_VERSION (minos) or LC_VERSION_MIN_MACOSX (version)
  got=$(awk '/LC_BUILD_VERSION|LC_VERSION_MIN_MACOSX/ {f = 1}
             f && ($1 == "minos" || $1 == "version") {print $2; exit}' <<< "$hdr")
  [ "$(vnum "$got")" = "$(vnum "$min")" ] ||
    die "$bundle records macOS $got as its minimum, not $min"
  llvm-nm --defined-only --extern-only "$bundle" | grep -q ' _luaopen_hpass_core$' ||
    die "$bundle does not export luaopen_hpass_core"
  bad=0
  while read -r sym; do
    name=${sym#_}
    name=${name%%\$*}
    case $name in lua_*|luaL_*) continue ;; esac
    since=$(awk -v s="$name" '$1 == s {print $2; exit}' "$symbols")
    if [ -z "$since" ]; then
      echo "  $sym: not in tools/macos-symbols.txt (add it with the macOS release that has it)"
      bad=1
    elif [ "$since" != - ] && [ "$(vnum "$since")" -gt "$(vnum "$min")" ]; then
      echo "  $sym: macOS $since, later than $min"
      bad=1
    fi
  done < <(llvm-nm --undefined-only "$bundle" | awk '{print $NF}')
  [ $bad = 0 ] || die "$bundle needs what macOS $min may not have"
  say "$t: $# sources compiled (default and _DARWIN_C_SOURCE), bundle linked, $(llvm-nm --undefined-only "$bundle" | wc -l) undefined symbols checked"
done
