/*
** portpeer - what a child sees, found without /proc, for
** tests/spec/portable_spec.lua.
**
**   portpeer state [...]   print "fds N N ..." (every open descriptor,
**                          found with fcntl up to 4096) and
**                          "nofile SOFT HARD" (-1 for unlimited)
**   portpeer probe         print "close_range E", "pwritev2 E" and
**                          "procfd E": the errno each gives here (0 when
**                          it works), to show what a test run emulates
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

static long lim (rlim_t v) {
  return v == RLIM_INFINITY ? -1L : (long)v;
}

static int state (void) {
  struct rlimit rl;
  int fd;
  printf("fds");
  for (fd = 0; fd < 4096; fd++)
    if (fcntl(fd, F_GETFD) != -1) printf(" %d", fd);
  printf("\n");
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 2;
  printf("nofile %ld %ld\n", lim(rl.rlim_cur), lim(rl.rlim_max));
  return 0;
}

static int probe (void) {
  int p[2], fd;
  char c = 0;
  struct iovec iov;
  /* closes nothing: no descriptor has that number */
  long r = syscall(SYS_close_range, (unsigned)INT_MAX - 1, (unsigned)INT_MAX - 1, 0U);
  printf("close_range %d\n", r == 0 ? 0 : errno);
  if (pipe(p) != 0) return 2;
  iov.iov_base = &c;
  iov.iov_len = 0;
  r = syscall(SYS_pwritev2, p[1], &iov, 1, -1L, -1L, 0);
  printf("pwritev2 %d\n", r >= 0 ? 0 : errno);
  fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
  printf("procfd %d\n", fd >= 0 ? 0 : errno);
  return 0;
}

int main (int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "state") == 0) return state();
  if (argc >= 2 && strcmp(argv[1], "probe") == 0) return probe();
  fprintf(stderr, "usage: portpeer state | probe\n");
  return 64;
}
