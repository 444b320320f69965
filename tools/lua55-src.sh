#!/bin/sh
#
# tools/lua55-src.sh - unpack Lua 5.5.0 into build/lua5.5/src and print
# that folder (its headers are at the top: lua.h, luaconf.h, lauxlib.h).
#
# Lua 5.5.0 is no Debian package yet, so the sources come from
# ../shared/third_party/lua-5.5.0.tar.gz beside the checkout, where CI
# puts them (LUA55_TARBALL names another place).  A checkout without it
# stops here with a message saying so.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
tarball=${LUA55_TARBALL:-$root/../shared/third_party/lua-5.5.0.tar.gz}
dir=$root/build/lua5.5/src
if [ ! -f "$dir/lua.h" ]; then
  if [ ! -f "$tarball" ]; then
    echo "lua55-src: no Lua 5.5 sources: $tarball is missing" >&2
    echo "lua55-src: set LUA55_TARBALL to a lua-5.5.0.tar.gz (Lua's repository layout, onelua.c at the top)" >&2
    exit 1
  fi
  rm -rf "$dir" && mkdir -p "$dir"
  tar -xzf "$tarball" -C "$dir" --strip-components=1
  [ -f "$dir/onelua.c" ] && [ -f "$dir/lua.h" ] ||
    { echo "lua55-src: $tarball has no onelua.c and lua.h at its top" >&2; exit 1; }
fi
echo "$dir"
