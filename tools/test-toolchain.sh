#!/usr/bin/env bash
#
# tools/test-toolchain.sh - build a Lua, the C modules busted needs and
# hpass with another C library, Lua or CPU than the host's, and run the
# suite on that interpreter.
#
#   tools/test-toolchain.sh FLAVOUR [--prepare] [SPEC ...]
#                                   (default: tests/spec/*_spec.lua)
#
#   musl     Lua 5.4 with musl-gcc (Debian's musl-tools)
#   m32      Lua 5.4 with `gcc -m32` (glibc, 32-bit x86; gcc-multilib)
#   lua5.5   Lua 5.5.0 with gcc (tools/lua55-src.sh), in build/lua5.5-deps;
#            `make test LUA_VERSION=5.5` runs it with --prepare, which
#            builds Lua and the modules only (make builds hpass)
#   aarch64  Lua 5.4 for 64-bit ARM, glibc, run under qemu-user
#   mips     Lua 5.4 for 32-bit big-endian MIPS, glibc, under qemu-user
#
# A static interpreter cannot load C modules, and a module built for
# one C library or CPU cannot load into another's process, so everything
# is built with the flavour's compiler and linked dynamically: Lua (5.4
# from Debian's source: the upstream tarball with Debian's security
# patches; 5.5 from ../shared), the C modules busted and the suite load
# (LuaFileSystem and LuaSocket from Debian's source; for lua-term and
# lua-system, whose sources the mirror does not always serve,
# tools/musl-standins.c), hpass, its test module and the test programs.
# busted's Lua files are Debian's (/usr/share/lua/5.4); Lua 5.5 gets a
# copy where tools/lua55-loopvars.lua has rewritten what 5.5 refuses.
#
# The cross flavours compile with Zig's C compiler (tools/get-zig.sh;
# Debian's cross gcc packages conflict with gcc-multilib, which m32
# needs) against glibc 2.36, Debian 12's, and run on Debian's own
# cross-built C library (libc6-arm64-cross, libc6-mips-cross), which each
# program names as its loader and library path.  The kernel starts them
# through binfmt_misc and qemu-user-static, registered here as
# systemd-binfmt would at boot (as root); so the Lua children and test
# programs the suite starts are emulated too.
#
# Everything lands in build/FLAVOUR/; the sources, the interpreter and
# the C modules are cached, hpass and the test programs are rebuilt on
# every run.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=$root/build/musl/src
flavour=${1:-}
shift || true
prepare=0
if [ "${1:-}" = --prepare ]; then prepare=1; shift; fi
out=$root/build/$flavour
[ "$flavour" = lua5.5 ] && out=$root/build/lua5.5-deps
say () { printf 'test-%s: %s\n' "$flavour" "$*"; }
die () { printf 'test-%s: error: %s\n' "$flavour" "$*" >&2; exit 1; }
is_root () { [ "$(id -u)" -eq 0 ]; }

lua=5.4
hpflags=
qemu=
case $flavour in
  musl)
    cc=musl-gcc
    pkgs=(musl-tools:musl-gcc) ;;
  m32)
    cc="gcc -m32"
    # qemu-user for a kernel built without 32-bit support (below)
    pkgs=(gcc-multilib:/usr/lib/gcc/x86_64-linux-gnu/12/32/crtbegin.o
          qemu-user-static:qemu-i386-static)
    # pwritev2 through its system call, whose offset is split in two
    # longs: what 32-bit systems with an older C library run
    hpflags=-DHPASS_PWRITEV2=2 ;;
  lua5.5)
    cc=gcc
    lua=5.5
    l55=$("$root/tools/lua55-src.sh") || exit 1  # first: stops when missing
    pkgs=() ;;
  aarch64|mips)
    if [ "$flavour" = aarch64 ]; then
      zt=aarch64-linux-gnu.2.36 zm=aarch64-linux-musl sys=/usr/aarch64-linux-gnu
      ld=ld-linux-aarch64.so.1 qemu=aarch64
      pkgs=(libc6-arm64-cross:$sys/lib/$ld)
    else
      zt=mips-linux-gnueabihf.2.36 zm=mips-linux-musleabihf sys=/usr/mips-linux-gnu
      ld=ld.so.1 qemu=mips
      pkgs=(libc6-mips-cross:$sys/lib/$ld)
    fi
    pkgs+=(npm:npm qemu-user-static:qemu-$qemu-static)
    cc=$out/cc ;;
  *) die "usage: tools/test-toolchain.sh musl|m32|lua5.5|aarch64|mips [--prepare] [SPEC ...]" ;;
esac
mkdir -p "$out"

# 1. Packages: the compiler, apt-get source's helpers, the suite's tools.
"$root/tools/deps.sh" "${pkgs[@]}" dpkg-dev:dpkg-source gcc:gcc \
  make:make perl:prove procps:ps lua-busted:busted util-linux:prlimit
[ -d /usr/share/lua/5.4/busted ] || die "busted's Lua files for 5.4 are missing"
if [ -n "$qemu" ]; then
  zig=$("$root/tools/get-zig.sh")
  export ZIG_GLOBAL_CACHE_DIR=$root/build/zig/cache
  export ZIG_LOCAL_CACHE_DIR=$root/build/zig/cache
  # One command for make and the scripts: the target, and where its
  # programs find their loader and C library.  (This Zig links a shared
  # library's atexit with a null __dso_handle, so glibc runs hpass's exit
  # handler only at exit: hpass keeps itself loaded once it has one, see
  # hp_pinself.)
  cat > "$cc" <<EOS
#!/bin/sh
exec "$zig" cc -target $zt "\$@" -Wl,--dynamic-linker=$sys/lib/$ld -Wl,-rpath,$sys/lib
EOS
  chmod +x "$cc"
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-$qemu ]; then
    is_root || die "qemu-$qemu is not registered with binfmt_misc; as root: cat /usr/lib/binfmt.d/qemu-$qemu.conf > /proc/sys/fs/binfmt_misc/register"
    [ -e /proc/sys/fs/binfmt_misc/register ] ||
      mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
      die "cannot mount binfmt_misc"
    cat "/usr/lib/binfmt.d/qemu-$qemu.conf" > /proc/sys/fs/binfmt_misc/register ||
      die "registering qemu-$qemu with binfmt_misc failed"
    say "registered qemu-$qemu with binfmt_misc"
  fi
fi

# 2. Sources from Debian's archive (with a deb-src entry, which
# tools/deb-src.sh adds when there is none).
pkgsrc="lua-filesystem lua-socket"
[ "$lua" = 5.4 ] && pkgsrc="lua5.4 $pkgsrc"
mkdir -p "$src"
# Only the upstream tarball is needed for the C modules; Lua also needs
# Debian's patches.  The mirror sometimes lacks a package's Debian part,
# which fails apt-get source after the tarball has arrived: that is kept.
srcname () {  # binary package -> source package
  apt-cache showsrc "$1" 2>/dev/null | sed -n '1s/^Package: //p'
}
for p in $pkgsrc; do
  if [ -z "$(srcname "$p")" ]; then
    is_root || die "no deb-src entry for $p; as root run tools/deb-src.sh"
    "$root/tools/deb-src.sh" || exit 1
  fi
  s=$(srcname "$p")
  [ -n "$s" ] || die "apt-cache showsrc $p finds nothing"
  ls "$src"/${s}_*.orig.tar.* > /dev/null 2>&1 && continue
  say "downloading the source of $p ($s)"
  rm -rf "$src/tmp" && mkdir -p "$src/tmp"
  if is_root && id _apt > /dev/null 2>&1; then chown _apt "$src/tmp"; fi
  (cd "$src/tmp" && apt-get source --download-only -q "$p" > /dev/null 2>&1) || true
  ls "$src"/tmp/${s}_*.orig.tar.* > /dev/null 2>&1 ||
    die "apt-get source $p gave no upstream tarball"
  mv "$src"/tmp/* "$src/" && rmdir "$src/tmp"
done
unpack () {  # binary package -> prints the folder of its upstream source
  local s dir
  s=$(srcname "$1")
  dir=$src/$s
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    tar -xf "$(ls "$src"/${s}_*.orig.tar.* | sort -V | tail -1)" -C "$dir" \
      --strip-components=1 || die "unpacking the source of $1 failed"
  fi
  echo "$dir"
}

# 3. Lua: 5.4 is the pristine sources plus Debian's security patches
# (its other patches rewrite the build for libtool and Debian's paths, as
# in tools/test-windows.sh), compiled as Lua's makefile does for Linux;
# 5.5 is onelua.c, as its README says.  -Wl,-E exports the API to modules.
luadir=$out/lua
inc=$luadir/include
if [ ! -x "$luadir/lua" ]; then
  say "building Lua $lua with $cc"
  rm -rf "$out/lua-src"
  mkdir -p "$inc"
  if [ "$lua" = 5.5 ]; then
    $cc -std=c99 -O2 -DLUA_USE_LINUX -DMAKE_LUA -o "$luadir/lua" "$l55/onelua.c" \
      -Wl,-E -lm -ldl || die "building Lua 5.5 failed"
    cp "$l55"/{lua.h,luaconf.h,lualib.h,lauxlib.h} "$inc/"
  else
    cp -r "$(unpack lua5.4)" "$out/lua-src"
    debtar=$(ls "$src"/lua5.4_*.debian.tar.* 2>/dev/null | sort -V | tail -1)
    [ -n "$debtar" ] || die "Debian's patches for lua5.4 did not download"
    mkdir -p "$out/lua-deb" && tar -xf "$debtar" -C "$out/lua-deb"
    for pt in $(grep -i cve "$out/lua-deb/debian/patches/series" || true); do
      patch -s -d "$out/lua-src" -p1 < "$out/lua-deb/debian/patches/$pt" ||
        die "patch $pt failed"
    done
    (cd "$out/lua-src/src" &&
     $cc -std=gnu99 -O2 -DLUA_COMPAT_5_3 -DLUA_USE_LINUX -o "$luadir/lua" \
       $(ls ./*.c | grep -v '^./luac\.c$') -Wl,-E -lm -ldl) ||
      die "building Lua with $cc failed"
    cp "$out/lua-src/src"/{lua.h,luaconf.h,lualib.h,lauxlib.h} "$inc/"
  fi
fi
# A kernel built without IA32 emulation cannot run 32-bit x86 programs
# (exec fails with ENOEXEC): they then run under qemu-user, registered
# with binfmt_misc for i386 ELF executables and shared objects, and the
# suite runs as under the other emulated flavours.
emulated=
if [ "$flavour" = m32 ] && { [ -e /proc/sys/fs/binfmt_misc/qemu-i386 ] ||
                             ! "$luadir/lua" -e '' 2>/dev/null; }; then
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-i386 ]; then
    is_root || die "this kernel runs no 32-bit programs, and registering qemu-i386 needs root"
    [ -e /proc/sys/fs/binfmt_misc/register ] ||
      mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
      die "cannot mount binfmt_misc"
    printf '%s' ':qemu-i386:M::\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00:\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-i386-static:F' \
      > /proc/sys/fs/binfmt_misc/register ||
      die "registering qemu-i386 with binfmt_misc failed"
    say "this kernel runs no 32-bit programs: registered qemu-i386 with binfmt_misc"
  fi
  emulated=1
fi
"$luadir/lua" -e 'assert(package.loadlib)' ||
  die "the $flavour interpreter does not run"
cmods=$out/cmod
so () {  # output.so sources... : one C module, built with $cc
  local o=$1; shift
  mkdir -p "$(dirname "$o")"
  $cc -O2 -fPIC -shared -I"$inc" -o "$o" "$@"
}

# 4. The C modules busted and the suite load.
if [ ! -f "$cmods/.done" ]; then
  say "building lfs, socket.core, mime.core and the stand-ins with $cc"
  rm -rf "$cmods"
  d=$(unpack lua-filesystem)
  if [ "$lua" = 5.5 ]; then
    # LuaFileSystem 1.8 stops at an #error past Lua 5.4, in its reading
    # of Lua files, whose layout (luaL_Stream) 5.5 keeps: its 5.2-5.4
    # branch is taken for 5.5 too
    sed 's/LUA_VERSION_NUM >= 502 && LUA_VERSION_NUM <= 504/LUA_VERSION_NUM >= 502/' \
      "$d/src/lfs.c" > "$out/lfs-55.c"
    so "$cmods/lfs.so" -I"$d/src" "$out/lfs-55.c"
  else
    so "$cmods/lfs.so" "$d/src/lfs.c"
  fi
  # lua-term's and lua-system's sources are not always on the mirror:
  # a stand-in with the four functions busted calls
  so "$cmods/term/core.so" "$root/tools/musl-standins.c"
  mkdir -p "$cmods/system" && cp "$cmods/term/core.so" "$cmods/system/core.so"
  d=$(unpack lua-socket)
  so "$cmods/socket/core.so" -DLUASOCKET_API='__attribute__((visibility("default")))' \
    "$d"/src/{luasocket,timeout,buffer,io,auxiliar,compat,options,inet,except,select,tcp,udp,usocket}.c
  so "$cmods/socket/unix.so" "$d"/src/{buffer,compat,auxiliar,options,timeout,io,usocket,unix,unixdgram,unixstream}.c
  so "$cmods/mime/core.so" -DMIME_API='__attribute__((visibility("default")))' \
    "$d"/src/{mime,compat}.c
  touch "$cmods/.done"
fi

# 5. busted's Lua files: Debian's for 5.4; for 5.5 a copy of what busted
# loads, with the loops 5.5 refuses rewritten.
lpath=/usr/share/lua/5.4
if [ "$lua" = 5.5 ]; then
  lpath=$out/share
  if [ ! -f "$lpath/.done" ]; then
    say "copying busted's Lua files for Lua 5.5"
    rm -rf "$lpath" && mkdir -p "$lpath"
    for m in busted luassert say pl cliargs term system mediator.lua \
             dkjson.lua socket socket.lua ltn12.lua mime.lua cliargs.lua; do
      [ -e "/usr/share/lua/5.4/$m" ] && cp -rL "/usr/share/lua/5.4/$m" "$lpath/"
    done
    find "$lpath" -name '*.lua' -print0 |
      xargs -0 "$luadir/lua" "$root/tools/lua55-loopvars.lua" ||
      die "busted's files do not compile on Lua 5.5"
    touch "$lpath/.done"
  fi
fi

# 6. What make test, and the run below, need to find it all.
variant=${out#"$root/build/"}/hpass
testbin=$root/tests/bin
[ -n "$qemu" ] && testbin=$out/bin
envfile=$out/env
cat > "$envfile" <<EOS
LUA_PATH='$root/lua/?.lua;$lpath/?.lua;$lpath/?/init.lua'
LUA_CPATH='$root/build/$variant/?.so;$cmods/?.so'
HPASS_TEST_LUA='$luadir/lua'
HPASS_TEST_BIN='$testbin'
EOS
if [ $prepare = 1 ]; then
  say "prepared $("$luadir/lua" -v 2>&1)"
  exit 0
fi

# 7. hpass, sigpeer (the test module) and the test programs with the
# flavour's compiler and the Makefile's warnings, in build/FLAVOUR/hpass
# and build/FLAVOUR/bin.  For the natively run flavours the programs in
# tests/bin serve: they are only ever exec'd.
say "building hpass and the test helpers with $cc"
make --no-print-directory -C "$root" CC="$cc" LUA_INCDIR="$inc" CFLAGS="-O2 -g $hpflags" \
  VARIANT=$variant TEST_BIN="$testbin" all test-helpers > /dev/null ||
  die "building hpass with $cc failed"
if [ -n "$qemu" ]; then
  # relpeer and portpeer must start with every descriptor taken, where a
  # dynamic program cannot open its libraries: static, on Zig's musl
  for p in relpeer portpeer; do
    "$zig" cc -target "$zm" -static -std=c99 -Wall -Wextra \
      -Werror -O2 -o "$testbin/$p" "$root/tests/peers/$p.c" ||
      die "building $p statically failed"
  done
fi
"$luadir/lua" -e "package.cpath = '$root/build/$variant/?.so'" \
  -e 'require "hpass.core"' || die "the $flavour build of hpass does not load"

# 8. The suite, on the flavour's interpreter, with only its modules on
# the C path.
say "running the suite on $("$luadir/lua" -v 2>&1) built with $cc"
specs=("$@")
if [ ${#specs[@]} -eq 0 ] && [ -n "$emulated" ] && [ -n "${HPASS_EMULATED_TESTS:-}" ]; then
  read -r -a specs <<< "$HPASS_EMULATED_TESTS"
  say "emulated: only ${specs[*]}"
fi
[ ${#specs[@]} -gt 0 ] || specs=("$root"/tests/spec/*_spec.lua)
cd "$root"
set -a
# shellcheck disable=SC1090
. "$envfile"
set +a
for v in 5_2 5_3 5_4 5_5; do unset "LUA_PATH_$v" "LUA_CPATH_$v" "LUA_INIT_$v"; done
unset LUA_INIT
# Two tests of tests/spec/sockets_spec.lua assume glibc: one compares
# strerror's text ("Too many open files"; musl says "No file descriptors
# available"), one sends 253 handles in one message, one more than musl's
# sendmsg takes (HP_MAXFDS is 252 there).  They are left out by name,
# and this line goes when they compare errno values and use the limit the
# module states.
# The event-loop tests of tests/spec/deadline_spec.lua need luv and cqueues,
# which exist here only as Debian's glibc x86-64 builds: left out by name
# on every flavour here (the loops' pollfd side is covered by make test).
skip="--filter-out=luv%spolls --filter-out=cqueues%.poll"
# Three more compare glibc's words for ECHILD ("No child processes"; musl
# says "No child process") or expect fdopen to refuse a read end opened
# for writing, which musl's does not check.
if [ "$flavour" = musl ]; then
  skip="$skip --filter-out=receiver%shas%sno%sroom --filter-out=recv_handle%sraise%son%smisuse"
  skip="$skip --filter-out=EMFILE%swhen%sthis%sprocess%shas%sreached"
  skip="$skip --filter-out=no%shandle,%sor%smore%sthan%s253"
  skip="$skip --filter-out=whose%sstatus%ssomeone%selse%stook"
  skip="$skip --filter-out=tofile%(%):%san%sOS%sfailure%sreturns"
  say "left out (they assume glibc): $skip"
fi
# Under emulation each start of a Lua child or test program costs an
# emulator's start: the spawn-heavy tests run the counts check-valgrind
# uses (docs/testing.md).
# What qemu-user 7.2 cannot emulate (docs/testing.md): pwritev2 (ENOSYS:
# hpass's writes take their fallback, which portable_spec is told to
# expect), vfork (run as fork: with no descriptor left for the report
# pipe, a child's report through the shared memory never arrives), a
# process's view of its own signal state in /proc (the emulator's), and
# SO_PASSPIDFD (refused with ENOPROTOOPT), and a child started with every
# number below its soft limit taken (the emulator needs descriptors of
# its own to start, and crashes).  The four tests that need those are
# left out by name.
if [ -n "$qemu$emulated" ]; then
  export HPASS_STRESS_CYCLES=1000 HPASS_ZOMBIE_SPAWNS=200 HPASS_CHURN_SPAWNS=30 \
         HPASS_BIG_MIB=8 HPASS_EXPECT_QEMU=1
  skip="$skip --filter-out=failed%sstart%swith%sone%sdescriptor%snumber%sleft"
  skip="$skip --filter-out=children%sget%sSIGPIPE%sdefault%sand%sunblocked"
  skip="$skip --filter-out=closes%sa%spidfd%sthat%sarrives"
  skip="$skip --filter-out=more%shandles%sthan%sthe%ssoft%slimit%sleaves"
  say "left out (qemu-user cannot emulate them): $skip"
fi
exec prove --exec "$luadir/lua /usr/bin/busted -o TAP $skip" "${specs[@]}"
