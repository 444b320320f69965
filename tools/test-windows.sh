#!/usr/bin/env bash
#
# tools/test-windows.sh - cross-build hpass for Windows and run
# tests/windows under wine.
#
#   tools/test-windows.sh                build everything, run the tests
#   tools/test-windows.sh --lua-only     build Lua only, smoke-test lua.exe
#
# Steps: (1) install the mingw-w64 cross compiler and wine when missing,
# (2) fetch Lua 5.4's source the way Debian distributes it, (3) build
# lua54.dll and lua.exe with Lua's own mingw target, on msvcrt.dll and on
# the UCRT, (4) build hpass/core.dll against them, also with the other C
# runtime than Lua's, (5) run tests/windows/run.lua under wine in a
# throw-away prefix, then the C runtime tests with each mismatched pair.
# Everything lands in build/windows/.  Steps 1-3 are cached, and step 4
# is redone only when a source changed, so a re-run costs about one
# wineboot plus the tests.
#
# Any failure (apt, patch, make, the compiler, wine, a test) stops the
# script with a non-zero exit status and the output that explains it.

set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$root/build/windows
host=x86_64-w64-mingw32
cc=$host-gcc
lua_pkg=lua5.4
lua_only=0

for a in "$@"; do
  case $a in
    --lua-only) lua_only=1 ;;
    -h|--help) sed -n '3,20p' "$0"; exit 0 ;;
    *) echo "test-windows: unknown option: $a" >&2; exit 2 ;;
  esac
done

start=$(date +%s.%N)
elapsed () { awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'; }
say () { printf 'test-windows: [%s] %s\n' "$(elapsed)" "$*"; }
die () { printf 'test-windows: error: %s\n' "$*" >&2; exit 1; }
is_root () { [ "$(id -u)" -eq 0 ]; }

mkdir -p "$out"

# ---------------------------------------------------------------------
# 1. Packages.  wine (the /usr/bin/wine wrapper) plus wine64 (the 64-bit
# loader) is enough for 64-bit programs: no i386 architecture, no wine32.
# --no-install-recommends keeps out fonts, gecko and the like that a
# console test never uses.  dpkg-dev is what "apt-get source" normally
# unpacks with; we unpack by hand, but it also brings patch(1).
# ---------------------------------------------------------------------
pkgs=(gcc-mingw-w64-x86-64 wine wine64 dpkg-dev)
# A Lua of this machine's reads the source list from the rockspec
# (tools/sources.lua, step 4); any version does.
hostlua=
for l in lua5.4 lua5.3 lua5.2 lua5.1 luajit lua; do
  if command -v "$l" > /dev/null; then hostlua=$l; break; fi
done
[ -n "$hostlua" ] || { hostlua=lua5.4; pkgs+=(lua5.4); }
missing=()
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! is_root; then
    die "missing packages; as root run: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  fi
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
for t in "$cc" "$host-strip" "$host-objdump" wine wineserver patch "$hostlua"; do
  command -v "$t" > /dev/null || die "$t not found after installing packages"
done

# ---------------------------------------------------------------------
# 2. Lua's source, from Debian's source archive.  apt-get source needs a
# deb-src entry; we add one for each Debian entry the machine already
# uses (same mirror, suites, components and key), in a file of our own.
# ---------------------------------------------------------------------
srcdir=$out/src

add_deb_src () {
  local codename list822 listone
  # shellcheck disable=SC1091
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || die "cannot tell the Debian release from /etc/os-release"
  list822=/etc/apt/sources.list.d/hpass-deb-src.sources
  listone=/etc/apt/sources.list.d/hpass-deb-src.list
  {
    # deb822 files: copy each enabled "deb" stanza of this release with
    # its Types line changed to deb-src (Signed-By, even a multi-line
    # inline key, comes along unchanged).
    for f in /etc/apt/sources.list.d/*.sources; do
      if [ ! -e "$f" ] || [ "$f" = "$list822" ]; then continue; fi
      awk -v cn="$codename" '
        function flush () {
          if (n > 0 && deb && suite && !off) {
            print "Types: deb-src"
            for (i = 1; i <= n; i++) print s[i]
            print ""
          }
          n = 0; deb = 0; suite = 0; off = 0
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        /^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1; next }
        /^Suites:/ { for (i = 2; i <= NF; i++) if (index($i, cn) == 1) suite = 1 }
        /^Enabled:[ \t]*no/ { off = 1 }
        { s[++n] = $0 }
        END { flush() }' "$f"
    done
  } > "$list822.tmp"
  {
    # One-line files: "deb [opts] uri suite comps" -> "deb-src ...".
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      if [ ! -e "$f" ] || [ "$f" = "$listone" ]; then continue; fi
      awk -v cn="$codename" '
        $1 == "deb" {
          k = 2
          if ($2 ~ /^\[/) while (k <= NF && $k !~ /\]$/) k++
          if ($2 ~ /^\[/) k++
          if (index($(k + 1), cn) == 1) { $1 = "deb-src"; print }
        }' "$f"
    done
  } > "$listone.tmp"
  [ -s "$list822.tmp" ] || [ -s "$listone.tmp" ] ||
    die "no Debian '$codename' entry found in /etc/apt/sources.list*"
  for f in "$list822" "$listone"; do
    if [ -s "$f.tmp" ]; then mv "$f.tmp" "$f"; say "wrote $f"
    else rm -f "$f.tmp"
    fi
  done
  apt-get update -qq
}

if ! ls "$srcdir"/${lua_pkg}_*.orig.tar.gz > /dev/null 2>&1; then
  if [ -z "$(apt-cache showsrc $lua_pkg 2>/dev/null)" ]; then
    is_root || die "no deb-src entry for $lua_pkg; as root add one (Types: deb-src) for your Debian mirror and run apt-get update"
    add_deb_src
    [ -n "$(apt-cache showsrc $lua_pkg 2>/dev/null)" ] ||
      die "apt-cache showsrc $lua_pkg finds nothing after adding deb-src"
  fi
  # Download next to the cache and move it in only when complete, so an
  # interrupted run never leaves a half cache behind.
  rm -rf "$srcdir.tmp" && mkdir -p "$srcdir.tmp"
  # apt downloads as _apt when it may write there, else warns
  if is_root && id _apt > /dev/null 2>&1; then chown _apt "$srcdir.tmp"; fi
  (cd "$srcdir.tmp" && apt-get source --download-only -q $lua_pkg)
  ls "$srcdir.tmp"/${lua_pkg}_*.orig.tar.gz > /dev/null ||
    die "apt-get source gave no orig tarball"
  rm -rf "$srcdir" && mv "$srcdir.tmp" "$srcdir"
fi
newest () { printf '%s\n' "$@" | sort -V | tail -1; }
orig=$(newest "$srcdir"/${lua_pkg}_*.orig.tar.gz)
debtar=$(newest "$srcdir"/${lua_pkg}_*.debian.tar.*)
if [ ! -f "$orig" ] || [ ! -f "$debtar" ]; then
  die "incomplete source cache in $srcdir"
fi

# ---------------------------------------------------------------------
# 3. Lua for Windows.  Debian's full patch stack does not cross-build
# (0001 rewrites the Makefiles for libtool and Debian's install paths,
# 0002 makes luaconf.h include a header generated by Debian's build), so
# we build the pristine upstream tarball and apply only the patches that
# fix security bugs, picked from debian/patches/series by their names.
# For 5.4.4-3+deb12u1 that is:
#   applied  0004-cve-2022-28805  heap overflow in the parser with a
#                                 <const> _ENV (upstream fix)
#   applied  0005-cve-2022-33099  stack overflow when an error happens
#                                 while handling an error (upstream fix)
#   skipped  0001-build-system    Debian/libtool build, Linux only
#   skipped  0002-lua-modules-paths  Debian's multiarch module paths
#   skipped  0003-extern_C        C++ linkage convenience, not a fix
# ---------------------------------------------------------------------
#
# Lua is built twice: on msvcrt.dll (mingw's default) in build/windows,
# and on the UCRT in build/windows/lua-ucrt, for the C runtime tests of
# step 5.  The compiler's own specs with msvcrt swapped for ucrt link a
# program or DLL against ucrtbase.dll.
# ---------------------------------------------------------------------
$cc -dumpspecs | sed 's/-lmsvcrt/-lucrt/g' > "$out/ucrt.specs"
ucrtflags="-specs=$out/ucrt.specs -D_UCRT"
luaucrt=$out/lua-ucrt
stamp="orig=${orig##*/} debian=${debtar##*/} cc=$($cc -dumpversion) recipe=3"
if [ "$(cat "$out/.lua-stamp" 2>/dev/null)" != "$stamp" ] ||
   [ ! -f "$out/lua.exe" ] || [ ! -f "$out/lua54.dll" ] ||
   [ ! -f "$luaucrt/lua.exe" ] || [ ! -f "$luaucrt/lua54.dll" ]; then
  say "building Lua from ${orig##*/}"
  rm -f "$out/.lua-stamp"
  work=$out/lua-build
  rm -rf "$work" && mkdir -p "$work"
  tar -xzf "$orig" -C "$work"
  tar -xf "$debtar" -C "$work"
  top=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'lua-*' | head -1)
  if [ -z "$top" ] || [ ! -f "$top/src/Makefile" ]; then
    die "unexpected layout in ${orig##*/}"
  fi
  applied=0
  while read -r p _; do
    case $p in ''|'#'*) continue ;; esac
    case ${p,,} in
      *cve*)
        say "applying debian/patches/$p"
        patch -d "$top" -p1 --forward --batch < "$work/debian/patches/$p"
        applied=$((applied + 1)) ;;
      *) say "skipping debian/patches/$p (not a security fix)" ;;
    esac
  done < "$work/debian/patches/series"
  # Lua's mingw target hard-codes "strip --strip-unneeded" for the DLL
  # and passes it to a sub-make, where it beats our command line; a
  # "strip" first in PATH makes that the cross strip.
  mkdir -p "$out/tools"
  ln -sf "$(command -v "$host-strip")" "$out/tools/strip"
  # AR/RANLIB here only serve luac.exe's static liblua.a: the mingw
  # target sets its own "AR=$(CC) -shared -o" to link lua54.dll.
  rm -rf "$luaucrt" && mkdir -p "$luaucrt"
  for variant in msvcrt ucrt; do
    if [ $variant = ucrt ]; then dest=$luaucrt; flags=$ucrtflags
    else dest=$out; flags=""
    fi
    make -C "$top/src" clean > /dev/null 2>&1
    PATH="$out/tools:$PATH" make -C "$top/src" mingw \
      CC="$cc -std=gnu99 $flags" AR="$host-ar rcu" RANLIB="$host-ranlib" \
      > "$work/make.log" 2>&1 ||
      { cat "$work/make.log"; die "make mingw ($variant) failed"; }
    for f in lua.exe lua54.dll; do
      [ -s "$top/src/$f" ] ||
        { cat "$work/make.log"; die "make mingw ($variant) made no $f"; }
      cp "$top/src/$f" "$dest/$f"
    done
  done
  mkdir -p "$out/include"
  cp "$top"/src/{lua.h,luaconf.h,lualib.h,lauxlib.h} "$out/include/"
  echo "$applied security patches" > "$out/lua-patches.txt"
  echo "$stamp" > "$out/.lua-stamp"
fi

# ---------------------------------------------------------------------
# 4. hpass/core.dll.  hpass_posix.c is listed on purpose: it must compile
# to nothing here.  Linking against lua54.dll itself (ld reads a DLL's
# exports directly) keeps the module tied to the interpreter's DLL, so
# both share one Lua state implementation and one C runtime.
# ---------------------------------------------------------------------
# The rockspec's Windows sources (the binding's files and the Windows
# backend), then its POSIX ones, which must compile to nothing here; every
# header.
srcs=$("$hostlua" "$root/tools/sources.lua" win32 unix) ||
  die "tools/sources.lua could not read the sources from the rockspec"
hdrs=$(cd "$root" && echo *.h)
if [ $lua_only -eq 0 ]; then
  # shellcheck disable=SC2086
  for f in $srcs $hdrs; do
    [ -f "$root/$f" ] || die "$f is missing"
  done
  mkdir -p "$out/hpass"
  # The Makefile's warnings, so mingw sees what gcc sees on Linux.
  warn="-std=c99 -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes
        -Wshadow -Wpointer-arith -Wdeclaration-after-statement"
  # Rebuilt only when a source, the flags or the compiler changed.
  # shellcheck disable=SC2086
  hpstamp=$( (cd "$root" && cat $srcs $hdrs tests/windows/testaid.c; echo "$warn recipe=2";
              $cc --version; cat "$out/.lua-stamp") | sha256sum)
  # The same two DLLs twice more, each with a C runtime other than
  # Lua's (which hpass must handle, see "C streams" in hpass_win32.c):
  # in ucrt/ on the UCRT for the msvcrt Lua, and in lua-ucrt/ on msvcrt
  # for the UCRT Lua.
  ucrt=$out/ucrt
  if [ "$(cat "$out/.hpass-stamp" 2>/dev/null)" != "$hpstamp" ] ||
     [ ! -f "$out/hpass/core.dll" ] || [ ! -f "$out/testaid.dll" ] ||
     [ ! -f "$ucrt/hpass/core.dll" ] || [ ! -f "$ucrt/testaid.dll" ] ||
     [ ! -f "$luaucrt/hpass/core.dll" ] || [ ! -f "$luaucrt/testaid.dll" ]; then
    say "building hpass/core.dll (msvcrt, ucrt, and msvcrt for the UCRT Lua)"
    rm -f "$out/.hpass-stamp" "$out/hpass/core.dll" "$out/testaid.dll"
    rm -rf "$ucrt" "$luaucrt/hpass" "$luaucrt/testaid.dll"
    mkdir -p "$ucrt/hpass" "$luaucrt/hpass"
    for variant in msvcrt ucrt luaucrt; do
      case $variant in
        msvcrt) dest=$out; crtflags=""; lualib=$out ;;
        ucrt) dest=$ucrt; crtflags=$ucrtflags; lualib=$out ;;
        luaucrt) dest=$luaucrt; crtflags=""; lualib=$luaucrt ;;
      esac
      # shellcheck disable=SC2086
      (cd "$root" && $cc $warn $crtflags -O2 -shared \
         -I"$out/include" -o "$dest/hpass/core.dll" \
         $srcs \
         -L"$lualib" -llua54 -lws2_32 -ladvapi32) ||
        die "cross-compiling hpass ($variant) failed"
      [ -s "$dest/hpass/core.dll" ] || die "no hpass/core.dll ($variant) was made"
      # A test-only helper module (see the file), never part of hpass; it
      # links the Windows backend too, to call its stream functions
      # directly.
      # shellcheck disable=SC2086
      $cc $warn $crtflags -O2 -shared -I"$out/include" -I"$root" \
        -o "$dest/testaid.dll" "$root/tests/windows/testaid.c" \
        "$root/hpass_win32.c" "$root/hpass_win32_send.c" \
        "$root/hpass_poll_win32.c" \
        -L"$lualib" -llua54 -lshell32 -lws2_32 -ladvapi32 ||
        die "cross-compiling tests/windows/testaid.c ($variant) failed"
    done
    # The mismatches must be real: each pair of Lua and hpass on two
    # runtimes.
    # (The import lists go to a variable: grep -q ending a pipe early
    # would fail it under pipefail.)
    dlls () { "$host-objdump" -p "$1" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr '[:upper:]' '[:lower:]'; }
    on_ucrt () {
      local imports
      imports=" $(dlls "$1" | tr '\n' ' ') "
      [[ $imports != *" msvcrt.dll "* ]] && [[ $imports == *" api-ms-win-crt-"* ]]
    }
    for f in "$out/lua54.dll" "$out/hpass/core.dll" "$luaucrt/hpass/core.dll" \
             "$luaucrt/testaid.dll"; do
      if on_ucrt "$f"; then die "${f#"$out"/} is not linked against msvcrt"; fi
    done
    for f in "$luaucrt/lua54.dll" "$ucrt/hpass/core.dll" "$ucrt/testaid.dll"; do
      on_ucrt "$f" || die "${f#"$out"/} is not linked against ucrt"
    done
    echo "$hpstamp" > "$out/.hpass-stamp"
  else
    say "hpass/core.dll is up to date"
  fi
  # The Lua front module, copied so the build folder holds one complete
  # install; LUA_PATH below points the tests and their children at it.
  [ -f "$root/lua/hpass.lua" ] || die "lua/hpass.lua is missing"
  rm -rf "$out/lua"
  mkdir -p "$out/lua" && cp "$root/lua/hpass.lua" "$out/lua/"
fi

# ---------------------------------------------------------------------
# 5. Wine.  A fresh prefix each run: nothing from an earlier run (or from
# the user's ~/.wine) can make a test pass.  No display, no debug
# channels, no Mono/Gecko (wineboot would offer to install them), no
# desktop menu entries, and no winedbg: a crashing program must end, as
# it does on Windows, not hang the run waiting for a debugger.  A fresh prefix is ~700 MB under $TMPDIR and
# wineboot takes most of the run; unpacking a cached one was slower.
# ---------------------------------------------------------------------
WINEPREFIX=$(mktemp -d "${TMPDIR:-/tmp}/hpass-wine.XXXXXX")
export WINEPREFIX WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe,winedbg.exe=d"
unset DISPLAY WAYLAND_DISPLAY
cleanup () {
  wineserver -k > /dev/null 2>&1 || true
  wineserver -w > /dev/null 2>&1 || true
  rm -rf "$WINEPREFIX"
}
trap cleanup EXIT

# Z: is / in a new prefix, so a Unix path maps to a Windows one directly.
winpath () { local p=${1//\//\\}; printf 'Z:%s' "$p"; }

say "creating wine prefix"
if ! wine wineboot --init > "$out/wineboot.log" 2>&1; then
  cat "$out/wineboot.log"; die "wineboot failed"
fi

smoke=$(wine "$out/lua.exe" -e 'io.write(_VERSION, " ", package.config:sub(1, 1))' 2>&1) ||
  die "lua.exe failed under wine: $smoke"
[ "$smoke" = "Lua 5.4 \\" ] || die "unexpected lua.exe output under wine: $smoke"
say "lua.exe runs under wine: $smoke"

if [ $lua_only -eq 1 ]; then
  say "done in $(elapsed)"
  exit 0
fi

runner=$root/tests/windows/run.lua
[ -f "$runner" ] || die "tests/windows/run.lua is missing"
test_dir=$(winpath "$root/tests/windows")
lua_path="$(winpath "$out/lua")\?.lua;;"

# run_suite WHAT LOG LUADIR CPATHDIR CRT [FILES]: run.lua under LUADIR's
# lua.exe with modules from CPATHDIR, testaid's C runtime CRT, and only
# FILES when given.  The paths go through the environment, which every
# child inherits too; ";;" keeps lua.exe's defaults after ours.  timeout:
# a hung test must fail the run, not stall it.  Then the exit status and
# the closing "N passed, N failed" line are checked.
run_suite () {
  local what=$1 log=$2 luadir=$3 cdir=$4 crt=$5 files=${6:-} rc summary
  say "running $what"
  set +e
  (cd "$out" &&
   env -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u LUA_INIT -u LUA_INIT_5_4 \
     HPASS_TEST_LUA="$(winpath "$luadir/lua.exe")" HPASS_TEST_DIR="$test_dir" \
     HPASS_TEST_FILES="$files" HPASS_TEST_CRT="$crt" \
     LUA_PATH="$lua_path" LUA_CPATH="$(winpath "$cdir")\\?.dll;;" \
     timeout 300 wine "$luadir/lua.exe" "$(winpath "$runner")") > "$log" 2>&1
  rc=$?
  set -e
  tr -d '\r' < "$log"
  summary=$(tr -d '\r' < "$log" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1 || true)
  [ $rc -ne 124 ] || die "$what: the tests took longer than 300s"
  [ $rc -eq 0 ] || die "$what: the tests exited with status $rc"
  [ -n "$summary" ] || die "$what: no 'N passed, N failed' line in the test output"
  case $summary in
    0\ passed*) die "$what: no test ran" ;;
    *' 0 failed') ;;
    *) die "$what: tests failed: $summary" ;;
  esac
  say "ok ($what): $summary"
}

run_suite "tests/windows" "$out/test.log" "$out" "$out" msvcrt.dll
# The files that touch Lua files again, with each mismatched pair.
run_suite "test_io and test_crt, hpass on ucrt, Lua on msvcrt" \
  "$out/test-ucrt.log" "$out" "$ucrt" ucrtbase.dll "test_io.lua test_crt.lua"
run_suite "test_io and test_crt, Lua on ucrt, hpass on msvcrt" \
  "$out/test-lua-ucrt.log" "$luaucrt" "$luaucrt" msvcrt.dll "test_io.lua test_crt.lua"
say "done in $(elapsed)"
