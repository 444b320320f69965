#!/bin/sh
# Install hpass with LuaRocks from this checkout into a temporary tree, for
# each Lua version given (default: 5.1 5.2 5.3 5.4), and run examples/fdpass.lua
# with only that tree on the module paths.  Offline: LuaRocks gets a server
# list that points nowhere, so anything it tried to fetch would fail.
#   tools/luarocks-check.sh [VERSION ...]
set -eu
# only the paths set below may decide where hpass comes from
unset LUA_INIT LUA_INIT_5_2 LUA_INIT_5_3 LUA_INIT_5_4 LUA_PATH_5_2 LUA_PATH_5_3 \
      LUA_PATH_5_4 LUA_CPATH_5_2 LUA_CPATH_5_3 LUA_CPATH_5_4
cd "$(dirname "$0")/.."
src=$(pwd)
versions=${*:-5.1 5.2 5.3 5.4}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

fail() { echo "luarocks-check: $*" >&2; exit 1; }

luarocks lint hpass-scm-1.rockspec || fail "luarocks lint failed"

for v in $versions; do
  echo "--- Lua $v"
  tree=$work/tree-$v
  copy=$work/src-$v
  # build from a copy, so the objects LuaRocks leaves next to the sources
  # stay out of the checkout
  mkdir -p "$copy"
  tar -C "$src" --exclude=./build --exclude=./.git -cf - . | tar -C "$copy" -xf -
  (cd "$copy" && luarocks --lua-version="$v" --only-server="$work/no-server" \
     make --tree="$tree" hpass-scm-1.rockspec) || fail "luarocks make failed for Lua $v"

  lua=lua$v
  lpath="$tree/share/lua/$v/?.lua;$tree/share/lua/$v/?/init.lua"
  cpath="$tree/lib/lua/$v/?.so"
  # the module must come from the tree (no ';;': no default paths)
  where=$(cd "$work" && LUA_PATH=$lpath LUA_CPATH=$cpath "$lua" -e \
    'io.write(debug.getinfo(require("hpass").inherited, "S").source)') ||
    fail "hpass does not load from the tree for Lua $v"
  case $where in
    "@$tree/"*) ;;
    *) fail "hpass loaded from $where, not from the tree" ;;
  esac
  # pipeline's body is a file of its own, loaded by the first call
  where=$(cd "$work" && LUA_PATH=$lpath LUA_CPATH=$cpath "$lua" -e \
    'require("hpass").pipeline({{"true"}})
     io.write(debug.getinfo(require("hpass.pipeline"), "S").source)') ||
    fail "hpass.pipeline does not run from the tree for Lua $v"
  case $where in
    "@$tree/"*) ;;
    *) fail "hpass.pipeline loaded from $where, not from the tree" ;;
  esac

  # the example: 8 questions from the parent, 8 answers from the child
  runs="$lua"
  [ "$v" = 5.1 ] && command -v luajit >/dev/null 2>&1 && runs="$runs luajit"
  for interp in $runs; do
    out=$work/out-$v-$interp
    status=0
    (cd "$work" && LUA_PATH=$lpath LUA_CPATH=$cpath \
       "$interp" "$src/examples/fdpass.lua") >"$out" 2>&1 || status=$?
    lines=$(wc -l <"$out")
    answers=$(grep -c '^Dad, the square root of [0-9]* is [0-9.]*\.$' "$out" || true)
    if [ "$status" -ne 0 ] || [ "$lines" -ne 16 ] || [ "$answers" -ne 8 ]; then
      cat "$out" >&2
      fail "$interp: exit $status, $lines lines, $answers answers (want 0, 16, 8)"
    fi
    echo "$interp: examples/fdpass.lua from the tree: exit 0, 16 lines"
  done
done
echo "luarocks-check: ok ($versions)"
