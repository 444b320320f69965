#!/usr/bin/env bash
#
# tools/deb-src.sh - add a deb-src entry for each Debian entry this
# machine already uses (same mirror, suites, components and key), in a
# file of our own, and update the package lists, so that `apt-get source`
# works.  Run as root; tools/test-windows.sh and tools/test-toolchain.sh
# call it when `apt-cache showsrc` finds nothing.
set -euo pipefail
say () { printf 'deb-src: %s\n' "$*"; }
die () { printf 'deb-src: error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "as root add a deb-src entry (Types: deb-src) for your Debian mirror and run apt-get update"

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
