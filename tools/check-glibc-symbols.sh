#!/bin/sh
# Fail when a shared object needs a C library function that glibc VERSION
# does not have yet.
#   tools/check-glibc-symbols.sh MODULE.so VERSION      (VERSION like 2.28)
# The symbol versions a build records are those of the headers it was
# built with, not the oldest glibc that has the function, so the check
# goes by name: the functions glibc added after 2.17 that a POSIX backend
# might use, with the release that added each.
set -u
so=$1 want=$2
[ -f "$so" ] || { echo "check-glibc-symbols: $so: no such file" >&2; exit 2; }
table='pipe2 2.9
getrandom 2.25
explicit_bzero 2.25
preadv2 2.26
pwritev2 2.26
reallocarray 2.26
memfd_create 2.27
copy_file_range 2.27
posix_spawn_file_actions_addchdir_np 2.29
posix_spawn_file_actions_addfchdir_np 2.29
sigabbrev_np 2.32
sigdescr_np 2.32
strerrordesc_np 2.32
close_range 2.34
closefrom 2.34
posix_spawn_file_actions_addclosefrom_np 2.34
pidfd_open 2.36
pidfd_getfd 2.36
pidfd_send_signal 2.36
pidfd_spawn 2.39
pidfd_spawnp 2.39
pidfd_getpid 2.39'
# version as one number: 2.28 -> 228
num() { echo "$1" | awk -F. '{ print $1 * 100 + $2 }'; }
limit=$(num "$want")
needs=$(nm -D --undefined-only "$so" | awk '{ print $NF }' | sed 's/@.*//')
bad=$(echo "$table" | while read -r name since; do
  if echo "$needs" | grep -qx "$name" && [ "$(num "$since")" -gt "$limit" ]; then
    echo "$name (glibc $since)"
  fi
done)
if [ -n "$bad" ]; then
  echo "check-glibc-symbols: $so needs what glibc $want lacks:" $bad >&2
  exit 1
fi
echo "check-glibc-symbols: $so needs nothing newer than glibc $want"
