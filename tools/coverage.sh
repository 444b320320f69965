#!/bin/sh
# Line coverage of C sources built with --coverage into one shared object.
#   tools/coverage.sh OBJDIR MIN SOURCE...
# OBJDIR holds core.so-NAME.gcno/.gcda for each SOURCE NAME.c (gcc names
# them so when it compiles and links in one step).  The annotated sources
# go to OBJDIR/report/NAME.c.gcov; the figures are printed per file and in
# total, and the script fails when the total is below MIN percent.
set -eu
objdir=$1
min=$2
shift 2
command -v gcov >/dev/null 2>&1 || { echo "coverage: gcov not found" >&2; exit 1; }
report=$objdir/report
rm -rf "$report"
mkdir -p "$report"
for src in "$@"; do
  name=$(basename "$src" .c)
  if [ ! -f "$objdir/core.so-$name.gcda" ]; then
    echo "coverage: no data for $src (did the suite load $objdir?)" >&2
    exit 1
  fi
  # gcov finds the source by the relative name it was compiled under, so
  # it runs here and its output is moved away
  gcov -r -o "$objdir/core.so-$name.o" "$src" >/dev/null
  mv "$(basename "$src").gcov" "$report/"
done
# In a .gcov file, "#####:" marks a line never run and "N:" one run N
# times; "-:" lines hold no code.
for src in "$@"; do
  awk -v file="$(basename "$src")" '
    /^ *#####:/ { miss++; split($0, f, ":"); gsub(/ /, "", f[2]); lines = lines " " f[2] }
    /^ *[0-9]+\*?:/ { hit++ }
    END {
      printf "%-16s %6.2f%% of %4d lines; not run:%s\n", file,
             100 * hit / (hit + miss), hit + miss, lines
      printf "%d %d\n", hit, hit + miss > "/dev/stderr"
    }' "$report/$(basename "$src").gcov"
done 2>"$report/totals"
awk -v min="$min" '
  { hit += $1; all += $2 }
  END {
    pct = 100 * hit / all
    printf "total            %6.2f%% of %4d lines (minimum %d%%)\n", pct, all, min
    exit !(pct >= min)
  }' "$report/totals"
