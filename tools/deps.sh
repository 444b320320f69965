#!/bin/sh
# Install what a make target needs, when it is missing.
#   tools/deps.sh PACKAGE:COMMAND-OR-FILE ...
# Each argument names a Debian package and a command (or an absolute file
# path) that shows it is installed.  Missing packages are installed with
# apt-get when running as root; otherwise the script says what to install
# and fails.
set -u
missing=""
for spec in "$@"; do
  pkg=${spec%%:*}
  probe=${spec#*:}
  case $probe in
    /*) [ -e "$probe" ] && continue ;;
    *) command -v "$probe" >/dev/null 2>&1 && continue ;;
  esac
  missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  # an old package list may not know the packages yet
  apt-get install -y -qq $missing >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq $missing; } || exit 1
else
  echo "missing packages:$missing" >&2
  echo "install them with: sudo apt-get install$missing" >&2
  exit 1
fi
