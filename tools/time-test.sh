#!/bin/sh
# Times `make test` (after a build, so that compiling is not counted) and
# writes the figure, with the machine and its load, to docs/test-time.md.
# The README points there rather than quoting a number.
set -eu
cd "$(dirname "$0")/.."
make --no-print-directory all test-helpers >/dev/null
load0=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(date +%s.%N)
status=0
make --no-print-directory test >/tmp/hpass-time-test.$$ 2>&1 || status=$?
t1=$(date +%s.%N)
load1=$(cut -d' ' -f1-3 /proc/loadavg)
summary=$(grep -E '^(Files=|Result:)' /tmp/hpass-time-test.$$ | tr '\n' ' ')
rm -f /tmp/hpass-time-test.$$
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
{
  echo "# How long make test takes"
  echo
  echo "Written by \`make time-test\` (\`tools/time-test.sh\`) on $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| wall time | $secs s |"
  echo "| prove | $summary|"
  echo "| cores | $(nproc) |"
  echo "| cpu | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') |"
  echo "| load before (1/5/15 min) | $load0 |"
  echo "| load after | $load1 |"
} >docs/test-time.md
echo "make test: $secs s (docs/test-time.md)"
exit $status
