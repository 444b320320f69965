#!/bin/sh
# tools/check-size.sh - the measures of the house, for make lint-c: no C
# source over MAXFILE lines, no function over MAXFUNC lines (pmccabe's
# count, from the line of its name to its closing brace).  Prints the
# functions of cyclomatic complexity MAXCC or more, which are allowed
# where the logic needs them (docs/design.md says which, and why).
#
#   tools/check-size.sh FILE.c ...
MAXFILE=${MAXFILE:-1000}
MAXFUNC=${MAXFUNC:-70}
MAXCC=${MAXCC:-20}
[ $# -gt 0 ] || { echo "usage: tools/check-size.sh FILE.c ..." >&2; exit 2; }
status=0
for f in "$@"; do
  n=$(wc -l < "$f")
  if [ "$n" -gt "$MAXFILE" ]; then
    echo "tools/check-size.sh: $f has $n lines (at most $MAXFILE)" >&2
    status=1
  fi
done
# pmccabe -v: complexity, modified, statements, first line, lines, name
out=$(pmccabe "$@") || { echo "tools/check-size.sh: pmccabe failed" >&2; exit 1; }
long=$(printf '%s\n' "$out" | awk -v max="$MAXFUNC" '$5 > max { print "  " $6 " " $7 ": " $5 " lines" }')
if [ -n "$long" ]; then
  echo "tools/check-size.sh: functions over $MAXFUNC lines:" >&2
  printf '%s\n' "$long" >&2
  status=1
fi
printf '%s\n' "$out" | awk -v cc="$MAXCC" '$1 >= cc { print "tools/check-size.sh: complexity " $1 " (allowed): " $6 " " $7 }'
[ $status -eq 0 ] && echo "tools/check-size.sh: $# files, none over $MAXFILE lines, no function over $MAXFUNC"
exit $status
