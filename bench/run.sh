#!/usr/bin/env bash
# run.sh - hpass benchmarks against C and the Lua peers.
#
#   bench/run.sh            full run: 1,000,000 ints, heaps 0/256/1024 MiB,
#                           7 rounds; prints the machine, the tables and every
#                           target with PASS/FAIL, and writes
#                           docs/bench-results.md, docs/spawn-vs-heap.dat and
#                           docs/spawn-vs-heap.png
#   bench/run.sh --quick    small N, small heaps, 3 rounds (for CI, well under
#                           a minute); the targets are printed, not judged
#
# Exit status: 0, also when a target is missed (the report says PASS or
# FAIL for each); 1 when a benchmark program failed or could not be built.
#
# The rounds of the different implementations are interleaved (round 1 of
# each, then round 2 of each, ...) so that drift in the machine's speed hits
# all of them alike; the ratios are ratios of medians from this one run.
# Spawning at the smallest heap gets 3x the rounds (each 1/3 as long).
#
# Missing packages (lua5.3, lua-posix, lua-luv, gnuplot-nox, ...) are
# installed with apt-get when running as root; otherwise that peer is
# skipped with a printed line.  Overrides: BENCH_N, BENCH_ROUNDS,
# BENCH_HEAPS (comma-separated MiB, ascending), BENCH_SPAWNS, BENCH_MAXSEC,
# and HPASS_MODDIR (a folder holding hpass/core.so; by default `make all`
# is run and build/lua5.4 is used).
set -u

usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; }

quick=0
for a in "$@"; do
  case $a in
    --quick) quick=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $a" >&2; usage >&2; exit 2 ;;
  esac
done

bench=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$bench/.." && pwd)

if [ $quick = 1 ]; then
  mode=quick N=50000 ROUNDS=3 HEAPS=0,64 SPAWNS=10 MAXSEC=0.2 TMO=60 CAPMIB=8 LIVE=200
else
  mode=full N=1000000 ROUNDS=7 HEAPS=0,256,1024 SPAWNS=200 MAXSEC=2 TMO=600 CAPMIB=100 LIVE=2000
fi
N=${BENCH_N:-$N} ROUNDS=${BENCH_ROUNDS:-$ROUNDS} HEAPS=${BENCH_HEAPS:-$HEAPS}
SPAWNS=${BENCH_SPAWNS:-$SPAWNS} MAXSEC=${BENCH_MAXSEC:-$MAXSEC}

work=$(mktemp -d "${TMPDIR:-/tmp}/hpass-bench.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
results=$work/results
: >"$results"
status=0

say() { printf 'bench: %s\n' "$*" >&2; }
fatal() { say "FATAL: $*"; exit 1; }
skip() {  # key reason: record and print a skipped benchmark
  printf 'SKIP %s %s\n' "$1" "$2" >>"$results"
  say "skipping $1: $2"
}

# {{{ packages
apt_updated=0
install_pkgs() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  local opts=(-y -qq -o DPkg::Lock::Timeout=300)
  if DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" \
       >>"$work/apt.log" 2>&1; then
    return 0
  fi
  if [ $apt_updated = 0 ]; then
    apt_updated=1
    apt-get update -qq -o DPkg::Lock::Timeout=300 >>"$work/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" \
      >>"$work/apt.log" 2>&1 && return 0
  fi
  return 1
}
need() {  # "test command" package...: true when the test passes (installing if needed)
  local test=$1
  shift
  bash -c "$test" >/dev/null 2>&1 && return 0
  say "installing $* ..."
  install_pkgs "$@" || true
  bash -c "$test" >/dev/null 2>&1
}

need 'command -v gcc' gcc || fatal "gcc is missing and cannot be installed"
need 'command -v lua5.4 && test -r /usr/include/lua5.4/lua.h' lua5.4 liblua5.4-dev ||
  fatal "lua5.4 (and liblua5.4-dev) missing and cannot be installed"
command -v timeout >/dev/null 2>&1 || fatal "timeout (coreutils) is missing"
LUA54=$(command -v lua5.4)

have_luaposix=0
if need 'lua5.3 -e "require [[posix]]" && test -r /usr/include/lua5.3/lua.h' \
     lua5.3 liblua5.3-dev lua-posix; then
  have_luaposix=1
  LUA53=$(command -v lua5.3)
else
  skip luaposix "lua5.3 with lua-posix (and liblua5.3-dev) not available"
fi
have_luv=0
if need 'lua5.4 -e "require [[luv]]"' lua-luv; then
  have_luv=1
else
  skip luv "lua-luv for Lua 5.4 not available"
fi
have_gnuplot=0
if [ $mode = full ]; then
  if need 'command -v gnuplot' gnuplot-nox; then have_gnuplot=1
  else skip plot "gnuplot (gnuplot-nox) not available, no PNG"; fi
fi
# }}}

# {{{ build
CFLAGS_B=(-O2 -std=c99 -Wall -Wextra -Werror)
gcc "${CFLAGS_B[@]}" -o "$work/spawn" "$bench/spawn.c" || fatal "building spawn.c failed"
gcc "${CFLAGS_B[@]}" -o "$work/ints" "$bench/ints.c" || fatal "building ints.c failed"
mkdir -p "$work/5.4" "$work/5.3"
gcc "${CFLAGS_B[@]}" -fPIC -shared -I/usr/include/lua5.4 -o "$work/5.4/benchclock.so" \
  "$bench/benchclock.c" || fatal "building benchclock.c for Lua 5.4 failed"
if [ $have_luaposix = 1 ]; then
  gcc "${CFLAGS_B[@]}" -fPIC -shared -I/usr/include/lua5.3 -o "$work/5.3/benchclock.so" \
    "$bench/benchclock.c" || fatal "building benchclock.c for Lua 5.3 failed"
fi

moddir=${HPASS_MODDIR:-}
if [ -z "$moddir" ]; then
  if [ -f "$root/Makefile" ]; then
    make --no-print-directory -C "$root" all >&2 || fatal "building hpass (make all) failed"
  fi
  for d in "$root/build/lua5.4" "$root"; do
    if [ -f "$d/hpass/core.so" ]; then moddir=$d; break; fi
  done
fi
[ -n "$moddir" ] && [ -f "$moddir/hpass/core.so" ] ||
  fatal "hpass/core.so not found (build hpass first, or set HPASS_MODDIR)"

unset LUA_INIT LUA_INIT_5_3 LUA_INIT_5_4 LUA_PATH_5_3 LUA_PATH_5_4
export LUA_PATH="$bench/?.lua;$root/lua/?.lua;;"
export LUA_CPATH_5_4="$work/5.4/?.so;$moddir/?.so;;"
export LUA_CPATH_5_3="$work/5.3/?.so;;"

"$LUA54" -e 'require "hpass"' || fatal "require \"hpass\" fails (module in $moddir)"
# How this build starts children (hpass_posix.h), as the module says in
# a string of its own.  Beside it, hpass built for the other paths this
# machine can run, each measured as its own implementation:
#   hpass_posix_spawn  posix_spawn + addclosefrom_np (glibc >= 2.34)
#   hpass_procwalk     the vfork child closing by a walk of /proc/self/fd
#   hpass_closeloop    the vfork child closing every number up to the limit
spawnpath() { grep -a -o 'hpass-spawn-path: [[:print:]]*' "$1/hpass/core.so" | sed 's/^hpass-spawn-path: //'; }
hpass_path=$(spawnpath "$moddir")
[ -n "$hpass_path" ] || hpass_path="posix_spawn+addclosefrom_np (a build older than the choice)"
alt_impls=""
altbuild() {  # impl cflags...: build hpass into build/bench-<impl>
  local impl=$1
  shift
  if [ ! -f "$root/Makefile" ]; then
    skip "$impl" "not in a checkout, nothing to build it from"
  elif make --no-print-directory -C "$root" VARIANT="bench-$impl" \
         CFLAGS="-O2 -g $*" all >&2; then
    alt_impls="$alt_impls $impl"
  else
    skip "$impl" "building hpass with $* failed"
  fi
}
if [ "$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ split($2, v, "."); print (v[1] * 100 + v[2] >= 234) }')" = 1 ]; then
  altbuild hpass_posix_spawn -DHPASS_SPAWN=HPASS_SPAWN_CLOSEFROM
else
  skip hpass_posix_spawn "no addclosefrom_np (glibc < 2.34) to compare with"
fi
if [ "$(uname -s)" = Linux ]; then
  altbuild hpass_procwalk -DHPASS_HAVE_CLOSE_RANGE=0
  altbuild hpass_closeloop -DHPASS_HAVE_CLOSE_RANGE=0 -DHPASS_HAVE_PROCFD=0
fi
probe() {
  "$LUA54" -e "local hpass = require 'hpass'
    local r, w = hpass.pipe()
    local ok = pcall(function () assert($1) end)
    os.exit(ok and 0 or 1)" >/dev/null 2>&1
}
have_setvbuf=0 have_bulk=0 have_stream=0
if probe "type(w.setvbuf) == 'function' and type(w.flush) == 'function'"; then
  have_setvbuf=1
else
  skip hpass_buffered "h:setvbuf / h:flush not available in this hpass"
fi
if probe "type(hpass.write_ints) == 'function' and type(hpass.read_ints) == 'function'"; then
  have_bulk=1
else
  skip hpass_bulk "hpass.write_ints / hpass.read_ints not available in this hpass"
fi
if probe "w:write_ints({5}) and w:close() and (function (t) return r:read_ints(1, t) == t end)({})"; then
  have_stream=1
else
  skip hpass_stream "hpass.read_ints(h, n, t) not available in this hpass"
fi
# }}}

# {{{ machine
machine=$work/machine
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "cores: $(nproc) online ($(grep -c '^processor' /proc/cpuinfo) listed)"
  echo "memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "kernel: $(uname -srm)"
  echo "glibc: $(getconf GNU_LIBC_VERSION 2>/dev/null || echo unknown)"
  echo "THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)"
  echo "compiler: $(gcc --version | head -1)"
  echo "lua5.4: $("$LUA54" -v 2>&1 | head -1)"
  if [ $have_luaposix = 1 ]; then
    echo "lua5.3: $("$LUA53" -v 2>&1 | head -1)"
    echo "luaposix: $("$LUA53" -e 'io.write(require("posix").version)')"
  fi
  if [ $have_luv = 1 ]; then
    echo "luv: $(dpkg-query -W -f='${Version}' lua-luv 2>/dev/null || echo '?')" \
         "(libuv $("$LUA54" -e 'io.write(require("luv").version_string())'))"
  fi
  echo "hpass: ${moddir#"$root"/}/hpass/core.so"
  echo "spawn path: $hpass_path (hpass)"
  for impl in $alt_impls; do
    echo "$impl: build/bench-$impl/hpass/core.so, spawn path $(spawnpath "$root/build/bench-$impl")"
  done
  echo "descriptor limit: $(ulimit -Sn) soft, $(ulimit -Hn) hard (hpass_closeloop closes up to the soft one, or the hard one when that is at most 65536)"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15-min load average before the run)"
  echo "run: bench/run.sh${1:+ $*} (N=$N, rounds=$ROUNDS, heaps=$HEAPS MiB, <=$SPAWNS spawns or ${MAXSEC}s per round)"
} >"$machine"
say "$(sed -n 's/^cpu: //p' "$machine"), $(nproc) cores; $mode run: N=$N, $ROUNDS rounds, heaps $HEAPS MiB"
load0=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load0" 'BEGIN { exit !(l > 1.0) }'; then
  say "WARNING: load average $load0 before the run: other work is running, timings will be noisy"
fi
# }}}

# {{{ running
run() {  # name timeout-seconds command...: append its results, note failures
  local name=$1 tmo=$2 rc
  shift 2
  if timeout -k 10 "$tmo" "$@" >"$work/out" 2>"$work/err"; then
    cat "$work/out" >>"$results"
  else
    rc=$?
    cat "$work/out" >>"$results"
    [ $rc = 124 ] && rc="124, timed out after ${tmo}s"
    printf 'FAIL %s exit status %s\n' "$name" "$rc" >>"$results"
    say "FAILED: $name (exit status $rc): $*"
    sed 's/^/  | /' "$work/err" >&2
    status=1
  fi
}

fifo=$work/ctl
mkfifo "$fifo" || fatal "mkfifo failed"

spawn_impls="c_posix_spawn c_fork_exec hpass"
spawn_impls="$spawn_impls$alt_impls"
# The closeloop child's cost grows with the descriptor limit: measured
# also where it closes up to 1024, as under systemd's and most
# distributions' defaults (soft 1024; a hard limit above 65536 is not
# closed up to, see hpass_spawn_posix.c).
soft=$(ulimit -Sn)
case " $alt_impls " in
  *" hpass_closeloop "*)
    if [ "$soft" = unlimited ] || [ "$soft" -gt 1024 ]; then
      spawn_impls="$spawn_impls hpass_closeloop_1024"
    fi ;;
esac
[ $have_luaposix = 1 ] && spawn_impls="$spawn_impls luaposix"
[ $have_luv = 1 ] && spawn_impls="$spawn_impls luv"
spawn_impls="$spawn_impls os_execute"

int_impls="c_perint c_nosig c_batch hpass_perint"
[ $have_setvbuf = 1 ] && int_impls="$int_impls hpass_buffered"
[ $have_bulk = 1 ] && int_impls="$int_impls hpass_bulk"
[ $have_stream = 1 ] && int_impls="$int_impls hpass_stream"
[ $have_luaposix = 1 ] && int_impls="$int_impls luaposix_perint"
int_impls="$int_impls popen_buffered"

mem_impls="hpass_perint"
[ $have_setvbuf = 1 ] && mem_impls="$mem_impls hpass_buffered"

spawn() {  # impl heaps spawns-per-round
  case $1 in
    c_posix_spawn) run "spawn/$1" "$TMO" "$work/spawn" posix_spawn "$2" "$3" 1 "$MAXSEC" ;;
    c_fork_exec) run "spawn/$1" "$TMO" "$work/spawn" fork "$2" "$3" 1 "$MAXSEC" ;;
    luaposix) run "spawn/$1" "$TMO" "$LUA53" "$bench/spawn.lua" "$1" "$2" "$3" 1 "$MAXSEC" ;;
    hpass_live|hpass_nolive) run "spawn/$1" "$TMO" "$LUA54" "$bench/spawn.lua" "$1" "$2" "$3" 1 "$MAXSEC" ;;
    hpass_closeloop_1024)  # the same build under the usual default limit
      ( ulimit -n 1024 &&
        LUA_CPATH_5_4="$work/5.4/?.so;$root/build/bench-hpass_closeloop/?.so;;" \
          run "spawn/$1" "$TMO" "$LUA54" "$bench/spawn.lua" "$1" "$2" "$3" 1 "$MAXSEC" ) ;;
    hpass_?*)
      LUA_CPATH_5_4="$work/5.4/?.so;$root/build/bench-$1/?.so;;" \
        run "spawn/$1" "$TMO" "$LUA54" "$bench/spawn.lua" "$1" "$2" "$3" 1 "$MAXSEC" ;;
    *) run "spawn/$1" "$TMO" "$LUA54" "$bench/spawn.lua" "$1" "$2" "$3" 1 "$MAXSEC" ;;
  esac
}
reverse() { local out="" w; for w in $1; do out="$w $out"; done; echo "$out"; }

# The smallest heap (normally 0) is where hpass is compared with C
# posix_spawn to 10 %, and where a round is cheap: it gets nine times the
# rounds, each a ninth as long, in alternating order (ABC..., ...CBA).
# This machine's speed drifts by more than 10 % within a minute; short
# rounds taken in turn put every implementation under the same drift.
heap0=${HEAPS%%,*}
sweep=${HEAPS#"$heap0"}
sweep=${sweep#,}
spawns0=$(( (SPAWNS + 8) / 9 ))
rounds0=$(( ROUNDS * 9 ))
say "spawn at heap $heap0 MiB: $rounds0 rounds of <=$spawns0 spawns ($spawn_impls)"
for r in $(seq 1 "$rounds0"); do
  order=$spawn_impls
  [ $((r % 2)) = 0 ] && order=$(reverse "$spawn_impls")
  for impl in $order; do spawn "$impl" "$heap0" "$spawns0"; done
done

for r in $(seq 1 "$ROUNDS"); do
  if [ -n "$sweep" ]; then
    say "round $r/$ROUNDS: spawn ($spawn_impls) at heaps $sweep MiB"
    for impl in $spawn_impls; do spawn "$impl" "$sweep" "$SPAWNS"; done
  fi
  say "round $r/$ROUNDS: $N ints ($int_impls)"
  for impl in $int_impls; do
    case $impl in
      c_perint) run "ints/$impl" "$TMO" "$work/ints" perint "$N" 1 ;;
      c_nosig) run "ints/$impl" "$TMO" "$work/ints" nosig "$N" 1 ;;
      c_batch) run "ints/$impl" "$TMO" "$work/ints" batch "$N" 1 ;;
      luaposix_perint) run "ints/$impl" "$TMO" "$LUA53" "$bench/ints_parent.lua" "$impl" "$N" 1 "$fifo" ;;
      *) run "ints/$impl" "$TMO" "$LUA54" "$bench/ints_parent.lua" "$impl" "$N" 1 "$fifo" ;;
    esac
  done
  say "round $r/$ROUNDS: $N write+read pairs in one process (C, hpass)"
  run pairs/c "$TMO" "$work/ints" pairs "$N" 1
  run pairs/hpass "$TMO" "$LUA54" "$bench/pairs.lua" "$N" 1
  say "round $r/$ROUNDS: spawn with $LIVE live children and with none (hpass, C)"
  # whole rounds (the start of 2,000 children must not weigh on a short
  # one), each beside a round of the same length with none
  BENCH_LIVE=$LIVE spawn hpass_live "$heap0" "$SPAWNS"
  spawn hpass_nolive "$heap0" "$SPAWNS"
  BENCH_LIVE=$LIVE spawn c_posix_spawn "$heap0" "$SPAWNS"
  BENCH_LIVE=0 spawn c_posix_spawn "$heap0" "$SPAWNS"
  say "round $r/$ROUNDS: capture $CAPMIB MiB (hpass_capture popen_read)"
  for impl in hpass_capture popen_read; do
    run "capture/$impl" "$TMO" "$LUA54" "$bench/capture.lua" "$impl" "$CAPMIB"
  done
  say "round $r/$ROUNDS: memory"
  run mem/bare "$TMO" "$LUA54" "$bench/mem.lua" bare
  run mem/hpass "$TMO" "$LUA54" "$bench/mem.lua" hpass
  run mem/trivial "$TMO" "$LUA54" "$bench/mem.lua" trivial
  for impl in $mem_impls; do
    run "mem/$impl" "$TMO" "$LUA54" "$bench/ints_parent.lua" "$impl" "$N" 1 - mem
  done
done
# }}}

# {{{ report
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15-min load average after the run)" >>"$machine"
report_args=("$results" "$machine" "$mode" "$HEAPS" "$N" "$ROUNDS" "$CAPMIB")
write_docs=0
if [ $mode = full ] && [ $status = 0 ]; then
  write_docs=1
  mkdir -p "$root/docs"
  report_args+=("$root/docs/bench-results.md" "$root/docs/spawn-vs-heap.dat")
fi
echo
"$LUA54" "$bench/report.lua" "${report_args[@]}"
rc=$?
[ $rc = 0 ] || { say "report.lua failed (exit status $rc)"; status=1; }
if [ $write_docs = 1 ]; then
  if [ $have_gnuplot = 1 ]; then
    "$bench/plot.sh" "$root/docs/spawn-vs-heap.dat" "$root/docs/spawn-vs-heap.png" >&2 ||
      say "plot.sh failed; no PNG"
  fi
  say "wrote docs/bench-results.md and docs/spawn-vs-heap.dat"
elif [ $mode = full ]; then
  say "a benchmark failed: docs/ left as it was"
fi
[ $status = 0 ] || exit 1
exit 0
# }}}
