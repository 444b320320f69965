#!/usr/bin/env bash
# run.sh - hpass benchmarks against Lua's own floor, C and the Lua peers.
#
#   bench/run.sh            full run (10 to 20 minutes): prints the machine,
#                           the tables and every target with PASS/FAIL, and
#                           writes docs/bench-results.md, docs/spawn-vs-heap.dat
#                           and docs/spawn-vs-heap.png; bench/compare.lua then
#                           sets each judged value beside the one of the
#                           report it replaces (two runs in a row should
#                           agree within 5%)
#   bench/run.sh --quick    small counts, few rounds (for CI, about a minute);
#                           the targets are printed, not judged
#
# Exit status: 0, also when a target is missed (the report says PASS or
# FAIL for each); 1 when a benchmark program failed or could not be built.
#
# Every judged ratio comes from partner rounds: a round of hpass and a
# round of what it is judged against, one right after the other, in
# alternating order (A B, B A, ...); the report divides each pair and
# takes the median of those ratios, so that drift in the machine's speed
# hits both partners alike.  Lua's floors (bench/floor.c, a C module built
# here for the purpose) are hpass's partners where Lua itself sets the
# cost: the minimal binding of one int per call, the fill and walk of a
# table of integers, C's poll, the require of a C module that does nothing.
#
# Missing packages (lua5.3, lua-posix, lua-luv, gnuplot-nox, ...) are
# installed with apt-get when running as root; otherwise that peer is
# skipped with a printed line.  Overrides: BENCH_N (ints of a bulk round),
# BENCH_NI (ints of a per-int round), BENCH_ROUNDS (rounds of the spawn
# sweep), BENCH_IROUNDS (rounds of the rest), BENCH_PER (partner rounds
# of each floor per round), BENCH_HEAPS (comma-separated MiB, ascending),
# BENCH_SPAWNS, BENCH_MAXSEC, HPASS_MODDIR (a folder holding
# hpass/core.so; by default `make all` is run and build/lua5.4 is used)
# and BENCH_KEEP (a file to copy the raw results to).
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

# N: ints of a bulk round and of the memory rounds; NI: ints of a
# per-int round; ROUNDS: rounds of the spawn sweep over heaps; IROUNDS:
# rounds of the rest, each with PER partner rounds of every floor; SEL:
# idle handles of select, CALLS: select calls per round.
if [ $quick = 1 ]; then
  mode=quick N=50000 NI=10000 ROUNDS=2 IROUNDS=3 PER=1 HEAPS=0,64 SPAWNS=10
  MAXSEC=0.2 TMO=60 CAPMIB=8 LIVE=200 SEL=1000 CALLS=20
else
  mode=full N=1000000 NI=100000 ROUNDS=7 IROUNDS=15 PER=3 HEAPS=0,256,1024
  SPAWNS=200 MAXSEC=2 TMO=600 CAPMIB=100 LIVE=2000 SEL=1000 CALLS=200
fi
N=${BENCH_N:-$N} NI=${BENCH_NI:-$NI} ROUNDS=${BENCH_ROUNDS:-$ROUNDS}
IROUNDS=${BENCH_IROUNDS:-$IROUNDS} PER=${BENCH_PER:-$PER} HEAPS=${BENCH_HEAPS:-$HEAPS}
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
# The benchmarks' own C: built here, in the work folder, never installed.
CFLAGS_B=(-O2 -std=c99 -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes
          -Wshadow -Wpointer-arith -Wdeclaration-after-statement)
gcc "${CFLAGS_B[@]}" -o "$work/spawn" "$bench/spawn.c" || fatal "building spawn.c failed"
gcc "${CFLAGS_B[@]}" -o "$work/ints" "$bench/ints.c" || fatal "building ints.c failed"
mkdir -p "$work/5.4" "$work/5.3"
for m in benchclock:benchclock benchfloor:floor benchnothing:nothing; do
  gcc "${CFLAGS_B[@]}" -fPIC -shared -I/usr/include/lua5.4 -o "$work/5.4/${m%%:*}.so" \
    "$bench/${m#*:}.c" || fatal "building ${m#*:}.c for Lua 5.4 failed"
done
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
# hpass.pipeline and its benchmark (bench/pipeline.lua) come together
have_pipeline=0
if [ -f "$bench/pipeline.lua" ] && probe "type(hpass.pipeline) == 'function'"; then
  have_pipeline=1
else
  skip pipeline "hpass.pipeline (and bench/pipeline.lua) not in this hpass"
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
  echo "run: bench/run.sh${1:+ $*} (N=$N, NI=$NI, rounds=$ROUNDS, irounds=$IROUNDS, per=$PER, heaps=$HEAPS MiB, <=$SPAWNS spawns or ${MAXSEC}s per round)"
} >"$machine"
say "$(sed -n 's/^cpu: //p' "$machine"), $(nproc) cores; $mode run: N=$N, NI=$NI, rounds $ROUNDS and $IROUNDS ($PER partner rounds each), heaps $HEAPS MiB"
load0=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load0" 'BEGIN { exit !(l > 1.0) }'; then
  say "WARNING: load average $load0 before the run: other work is running, timings will be noisy"
fi
# }}}

# {{{ running
# run name timeout-seconds command...: append its results, note failures.
# With PREFIX set, its result keys get PREFIX/ in front (R spawn/... ->
# R sweep/spawn/...): the same program measured in another series.
PREFIX=
run() {
  local name=$1 tmo=$2 rc
  shift 2
  if timeout -k 10 "$tmo" "$@" >"$work/out" 2>"$work/err"; then
    rc=0
  else
    rc=$?
  fi
  if [ -n "$PREFIX" ]; then
    sed "s#^R #R $PREFIX/#" "$work/out" >>"$results"
  else
    cat "$work/out" >>"$results"
  fi
  if [ $rc != 0 ]; then
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

# per-int and buffered transfer against C and the Lua peers, NI ints a round
int_impls="c_perint c_nosig c_batch hpass_perint"
[ $have_setvbuf = 1 ] && int_impls="$int_impls hpass_buffered"
[ $have_luaposix = 1 ] && int_impls="$int_impls luaposix_perint"
int_impls="$int_impls popen_buffered"

# hpass against Lua's floors, each pair in one parent (ints_parent.lua)
floor_pairs="hpass_perint,floor_perint"
# (and, beside each bulk pair, the minimal binding's own two-process
# transfer: what any binding pays for the pipe)
[ $have_bulk = 1 ] && floor_pairs="$floor_pairs hpass_bulk,floor_bulk,floor_pipe_bulk"
[ $have_stream = 1 ] && floor_pairs="$floor_pairs hpass_stream,floor_stream,floor_pipe_stream"

mem_impls="hpass_perint"
[ $have_setvbuf = 1 ] && mem_impls="$mem_impls hpass_buffered"

# spawn impl heaps spawns [sub]: one process spawning at each heap, in
# sub rounds (default 1) of spawns/sub spawns or MAXSEC/sub seconds each
spawn() {
  local sub=${4:-1} n max
  n=$(( ($3 + sub - 1) / sub ))
  max=$(awk -v m="$MAXSEC" -v s="$sub" 'BEGIN { printf "%g", m / s }')
  set -- "$1" "$2" "$n" "$sub" "$max"
  case $1 in
    c_posix_spawn) run "spawn/$1" "$TMO" "$work/spawn" posix_spawn "$2" "$3" "$4" "$5" ;;
    c_fork_exec) run "spawn/$1" "$TMO" "$work/spawn" fork "$2" "$3" "$4" "$5" ;;
    luaposix) run "spawn/$1" "$TMO" "$LUA53" "$bench/spawn.lua" "$@" ;;
    hpass_live|hpass_nolive) run "spawn/$1" "$TMO" "$LUA54" "$bench/spawn.lua" "$@" ;;
    hpass_closeloop_1024)  # the same build under the usual default limit
      LUA_CPATH_5_4="$work/5.4/?.so;$root/build/bench-hpass_closeloop/?.so;;" \
        run "spawn/$1" "$TMO" bash -c 'ulimit -n 1024 && exec "$@"' - \
          "$LUA54" "$bench/spawn.lua" "$@" ;;
    hpass_?*)
      LUA_CPATH_5_4="$work/5.4/?.so;$root/build/bench-$1/?.so;;" \
        run "spawn/$1" "$TMO" "$LUA54" "$bench/spawn.lua" "$@" ;;
    *) run "spawn/$1" "$TMO" "$LUA54" "$bench/spawn.lua" "$@" ;;
  esac
}
reverse() { local out="" w; for w in $1; do out="$w $out"; done; echo "$out"; }
# the words of $1 as given in odd rounds $2, reversed in even ones
inturn() { if [ $(($2 % 2)) = 1 ]; then echo "$1"; else reverse "$1"; fi; }

# select needs two descriptors per handle: a soft limit below that is
# raised (up to the hard one) for select.lua alone
selneed=$((2 * SEL + 64))
# shellcheck disable=SC2016
withfds='l=$(ulimit -Sn)
  if [ "$l" != unlimited ] && [ "$l" -lt "$1" ]; then
    ulimit -Sn "$1" 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
  fi
  shift
  exec "$@"' 

# The smallest heap (normally 0) is where hpass is compared with C
# posix_spawn to 10 %, and where a round is cheap: it gets nine times the
# rounds, each a ninth as long, in alternating order (ABC..., ...CBA).
# This machine's speed drifts by more than 10 % within a minute; short
# rounds taken in turn put every implementation under the same drift.
heap0=${HEAPS%%,*}
spawns0=$(( (SPAWNS + 8) / 9 ))
rounds0=$(( ROUNDS * 9 ))
say "spawn at heap $heap0 MiB: $rounds0 rounds of <=$spawns0 spawns ($spawn_impls)"
for r in $(seq 1 "$rounds0"); do
  for impl in $(inturn "$spawn_impls" "$r"); do spawn "$impl" "$heap0" "$spawns0"; done
done

# The sweep over heaps: every implementation at every heap in one
# process a round, in three short rounds at each heap, so that the ratios
# of 1b-1e are partners too.
for r in $(seq 1 "$ROUNDS"); do
  if [ "$HEAPS" != "$heap0" ]; then
    say "round $r/$ROUNDS: spawn ($spawn_impls) at heaps $HEAPS MiB"
    PREFIX=sweep
    for impl in $(inturn "$spawn_impls" "$r"); do spawn "$impl" "$HEAPS" "$SPAWNS" 3; done
    PREFIX=
  fi
  say "round $r/$ROUNDS: spawn with $LIVE live children and with none (hpass, C)"
  # whole rounds (the start of 2,000 children must not weigh on a short
  # one), each beside a round of the same length with none
  BENCH_LIVE=$LIVE spawn hpass_live "$heap0" "$SPAWNS" 3
  spawn hpass_nolive "$heap0" "$SPAWNS" 3
  BENCH_LIVE=$LIVE spawn c_posix_spawn "$heap0" "$SPAWNS" 3
  BENCH_LIVE=0 spawn c_posix_spawn "$heap0" "$SPAWNS" 3
  say "round $r/$ROUNDS: memory of $N-int transfers"
  for impl in $mem_impls; do
    run "mem/$impl" "$TMO" "$LUA54" "$bench/ints_parent.lua" "$impl" "$N" 1 - mem
  done
done

for r in $(seq 1 "$IROUNDS"); do
  say "round $r/$IROUNDS: hpass against Lua's floors ($PER partner rounds each)"
  PREFIX=floor
  run floor/pairs "$TMO" "$LUA54" "$bench/pairs.lua" "$NI" "$PER"
  for pair in $(inturn "$floor_pairs" "$r"); do
    case $pair in
      *bulk*|*stream*) n=$N ;;
      *) n=$NI ;;
    esac
    run "floor/$pair" "$TMO" "$LUA54" "$bench/ints_parent.lua" "$pair" "$n" "$PER" "$fifo"
  done
  run floor/select "$TMO" bash -c "$withfds" - "$selneed" \
    "$LUA54" "$bench/select.lua" "$SEL" "$CALLS" "$PER"
  PREFIX=
  say "round $r/$IROUNDS: $NI ints, C and the Lua peers, $PER rounds ($int_impls)"
  for k in $(seq 1 "$PER"); do
    for impl in $(inturn "$int_impls" $((r + k))); do
      case $impl in
        c_perint) run "ints/$impl" "$TMO" "$work/ints" perint "$NI" 1 ;;
        c_nosig) run "ints/$impl" "$TMO" "$work/ints" nosig "$NI" 1 ;;
        c_batch) run "ints/$impl" "$TMO" "$work/ints" batch "$N" 1 ;;
        luaposix_perint) run "ints/$impl" "$TMO" "$LUA53" "$bench/ints_parent.lua" "$impl" "$NI" 1 "$fifo" ;;
        # the buffered ones are ten times as fast: ten times the ints
        *_buffered) run "ints/$impl" "$TMO" "$LUA54" "$bench/ints_parent.lua" "$impl" "$N" 1 "$fifo" ;;
        *) run "ints/$impl" "$TMO" "$LUA54" "$bench/ints_parent.lua" "$impl" "$NI" 1 "$fifo" ;;
      esac
    done
  done
  run pairs/c "$TMO" "$work/ints" pairs "$NI" "$PER"
  say "round $r/$IROUNDS: capture $CAPMIB MiB, $PER rounds (hpass_capture popen_read)"
  for k in $(seq 1 "$PER"); do
    for impl in $(inturn "hpass_capture popen_read" $((r + k))); do
      run "capture/$impl" "$TMO" "$LUA54" "$bench/capture.lua" "$impl" "$CAPMIB"
    done
  done
  say "round $r/$IROUNDS: memory of require"
  run mem/bare "$TMO" "$LUA54" "$bench/mem.lua" bare
  for impl in $(inturn "hpass nothing" "$r"); do
    run "mem/$impl" "$TMO" "$LUA54" "$bench/mem.lua" "$impl"
  done
done

if [ $have_pipeline = 1 ]; then
  say "pipeline: 3 cats moving $CAPMIB MiB, hpass.pipeline and sh ($IROUNDS rounds)"
  run pipeline "$TMO" "$LUA54" "$bench/pipeline.lua" "$CAPMIB" "$IROUNDS"
fi
# }}}

# {{{ report
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15-min load average after the run)" >>"$machine"
report_args=("$results" "$machine" "$mode" "$HEAPS" "$N" "$NI" "$ROUNDS" "$IROUNDS" "$PER"
             "$CAPMIB" "$SEL")
write_docs=0
if [ $mode = full ] && [ $status = 0 ]; then
  write_docs=1
  mkdir -p "$root/docs"
  # the report of the run before, which this one is compared with
  cp "$root/docs/bench-results.md" "$work/before.md" 2>/dev/null || : >"$work/before.md"
  report_args+=("$root/docs/bench-results.md" "$root/docs/spawn-vs-heap.dat")
fi
# BENCH_KEEP=file: a copy of the raw results, for a closer look
[ -n "${BENCH_KEEP:-}" ] && cp "$results" "$BENCH_KEEP"
echo
"$LUA54" "$bench/report.lua" "${report_args[@]}"
rc=$?
[ $rc = 0 ] || { say "report.lua failed (exit status $rc)"; status=1; }
if [ $write_docs = 1 ] && [ $rc = 0 ]; then
  echo
  "$LUA54" "$bench/compare.lua" "$work/before.md" "$root/docs/bench-results.md" ||
    { say "compare.lua failed"; status=1; }
fi
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
