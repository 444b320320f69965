#!/usr/bin/env bash
# plot.sh - draw spawn time against parent heap size with gnuplot.
#
#   bench/plot.sh [DATA [PNG]]
#
# DATA is what bench/run.sh writes (default docs/spawn-vs-heap.dat: one row
# per heap size, median µs per spawn for each implementation, "?" where
# nothing was measured); PNG defaults to docs/spawn-vs-heap.png.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dat=${1:-$root/docs/spawn-vs-heap.dat}
png=${2:-$root/docs/spawn-vs-heap.png}
if ! command -v gnuplot >/dev/null 2>&1; then
  echo "plot.sh: gnuplot not found (apt-get install gnuplot-nox); no plot" >&2
  exit 1
fi
[ -r "$dat" ] || { echo "plot.sh: no data file $dat" >&2; exit 1; }
term="pngcairo size 1000,640 font 'Sans,11'"
gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo || term="png size 1000,640"
when=$(sed -n '1s/.*(bench\/run.sh, \(.*\)).*/\1/p' "$dat")
gnuplot <<GP
set terminal $term
set output '$png'
set title "spawn /bin/true N + wait, by size of the parent's heap\n{/*0.8 median of each implementation's rounds, measured $when}"
set xlabel "parent heap (MiB, resident)"
set ylabel "time per spawn (ms)"
set datafile missing "?"
stats '$dat' using 1 nooutput
xmax = STATS_max > 0 ? STATS_max : 1
set xrange [-xmax*0.03:xmax*1.04]
if (xmax >= 512) { set xtics 256 }
set key top left box opaque
set grid
set yrange [0:*]
set xtics nomirror
set ytics nomirror
set style data linespoints
plot '$dat' using 1:(\$2/1000) title "C posix\\\_spawn + waitpid" lw 2 pt 7 ps 1.2 dt 1 lc rgb "black", \
     ''     using 1:(\$3/1000) title "C fork + execve + waitpid" lw 2 pt 5 ps 1.2 dt 2 lc rgb "#808080", \
     ''     using 1:(\$5/1000) title "Lua 5.3 luaposix fork/execp/wait" lw 2 pt 11 ps 1.2 dt 3 lc rgb "#1f4fd0", \
     ''     using 1:(\$6/1000) title "Lua 5.4 luv uv.spawn + uv.run" lw 2 pt 13 ps 1.2 dt 4 lc rgb "#1a9641", \
     ''     using 1:(\$7/1000) title "Lua 5.4 os.execute (via /bin/sh)" lw 2 pt 3 ps 1.2 dt 5 lc rgb "#8e44ad", \
     ''     using 1:(\$4/1000) title "Lua 5.4 hpass spawn\\\_with\\\_handle + wait" lw 3 pt 9 ps 1.5 dt 1 lc rgb "#d7191c"
GP
echo "plot.sh: wrote $png"
