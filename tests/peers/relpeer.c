/*
** relpeer - the misbehaving peers of the reliability tests.  Descriptor
** numbers come last on the command line, as hpass appends them.
**
**   relpeer echo IN OUT           read ints from IN, write each plus one to
**                                 OUT, until IN ends; exit 0
**   relpeer slow COUNT FD         write 0 .. COUNT-1 one byte at a time,
**                                 pausing between the bytes
**   relpeer seq COUNT FD          write 0 .. COUNT-1 in pieces of 1021
**                                 bytes, so that ints straddle the writes
**   relpeer check COUNT PIECE PAUSE FD
**                                 read ints from FD until it ends, PIECE
**                                 bytes (0: one int) per read, PAUSE us
**                                 after each; exit 0 when they were exactly
**                                 0 .. COUNT-1, 3 if a value was wrong, 4 if
**                                 too few or too many, 5 on a partial int
**   relpeer half NBYTES FD        write the first NBYTES bytes of an int,
**                                 then die of SIGKILL
**   relpeer ident FD...           write the int FD to each FD
**   relpeer die SIGNUM            die of signal SIGNUM
**   relpeer ignpipe PROG ARG...   run PROG with SIGPIPE ignored and blocked
**   relpeer block N PROG ARG...   run PROG with signal N blocked
**   relpeer flood FD...           write 'y' to each FD, one process per FD,
**                                 as fast as it goes and without end, each
**                                 pipe made as large as Linux allows, so
**                                 that a reader that takes 64 kB a turn
**                                 rarely finds it empty
*/
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void pause_us (long us) {
  struct timespec ts;
  ts.tv_sec = us / 1000000;
  ts.tv_nsec = (us % 1000000) * 1000;
  while (nanosleep(&ts, &ts) != 0)
    ;
}

/* Read up to n bytes, at most 'piece' at a time; the count read. */
static size_t readn (int fd, void *buf, size_t n, size_t piece, long us) {
  char *p = buf;
  size_t got = 0;
  while (got < n) {
    size_t want = n - got < piece ? n - got : piece;
    ssize_t r = read(fd, p + got, want);
    if (r <= 0) break;
    got += (size_t)r;
    if (us > 0) pause_us(us);
  }
  return got;
}

static int writen (int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t r = write(fd, p, n);
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Writes to fd until a write fails (SIGPIPE ends it first, by default). */
static void flood (int fd) {
  static char buf[65536];
#if defined(__linux__)
  (void)fcntl(fd, 1031, 1 << 20);  /* F_SETPIPE_SZ; may be refused */
#endif
  memset(buf, 'y', sizeof buf);
  for (;;)
    if (write(fd, buf, sizeof buf) < 0 && errno != EINTR) _exit(0);
}

static void die (int sig) {
  signal(sig, SIG_DFL);
  raise(sig);
  pause_us(1000000);
  _exit(100);  /* the signal did not kill us */
}

int main (int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "";
  if (strcmp(cmd, "echo") == 0 && argc == 4) {
    int in = atoi(argv[2]), out = atoi(argv[3]), v;
    while (readn(in, &v, sizeof v, sizeof v, 0) == sizeof v) {
      v++;
      if (writen(out, &v, sizeof v) != 0) return 2;
    }
    return 0;
  }
  if (strcmp(cmd, "slow") == 0 && argc == 4) {
    int count = atoi(argv[2]), fd = atoi(argv[3]), i;
    size_t k;
    for (i = 0; i < count; i++)
      for (k = 0; k < sizeof i; k++) {
        if (writen(fd, (char *)&i + k, 1) != 0) return 2;
        pause_us(300);
      }
    return 0;
  }
  if (strcmp(cmd, "seq") == 0 && argc == 4) {
    static int buf[4096];
    int count = atoi(argv[2]), fd = atoi(argv[3]), i = 0, n;
    size_t k, bytes;
    while (i < count) {
      for (n = 0; n < 4096 && i < count; n++) buf[n] = i++;
      bytes = (size_t)n * sizeof(int);
      for (k = 0; k < bytes; k += 1021)
        if (writen(fd, (char *)buf + k, bytes - k < 1021 ? bytes - k : 1021) != 0)
          return 2;
    }
    return 0;
  }
  if (strcmp(cmd, "check") == 0 && argc == 6) {
    static char buf[65536 + sizeof(int)];
    int count = atoi(argv[2]), fd = atoi(argv[5]), i = 0, v;
    size_t piece = (size_t)atoi(argv[3]), have = 0, k;
    long us = atol(argv[4]);
    ssize_t r;
    if (piece == 0) piece = sizeof v;
    if (piece > 65536) return 64;
    /* ints are taken from a byte stream read in pieces of any size */
    while ((r = read(fd, buf + have, piece)) > 0) {
      have += (size_t)r;
      for (k = 0; k + sizeof v <= have; k += sizeof v) {
        memcpy(&v, buf + k, sizeof v);
        if (i >= count) return 4;
        if (v != i) return 3;
        i++;
      }
      memmove(buf, buf + k, have - k);
      have -= k;
      if (us > 0) pause_us(us);
    }
    if (have != 0) return 5;
    return i == count ? 0 : 4;
  }
  if (strcmp(cmd, "half") == 0 && argc == 4) {
    int v = 0x01020304;
    size_t n = (size_t)atoi(argv[2]);
    if (n >= sizeof v || writen(atoi(argv[3]), &v, n) != 0) return 2;
    die(SIGKILL);
  }
  if (strcmp(cmd, "ident") == 0) {
    int i;
    for (i = 2; i < argc; i++) {
      int fd = atoi(argv[i]);
      if (writen(fd, &fd, sizeof fd) != 0) return 2;
    }
    return 0;
  }
  if (strcmp(cmd, "die") == 0 && argc == 3) die(atoi(argv[2]));
  if (strcmp(cmd, "flood") == 0 && argc >= 3) {
    int i;
    for (i = 3; i < argc; i++)
      if (fork() == 0) flood(atoi(argv[i]));
    flood(atoi(argv[2]));
  }
  if (strcmp(cmd, "ignpipe") == 0 && argc >= 3) {
    sigset_t s;
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    sigprocmask(SIG_BLOCK, &s, NULL);
    execvp(argv[2], argv + 2);
    perror(argv[2]);
    return 127;
  }
  if (strcmp(cmd, "block") == 0 && argc >= 4) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, atoi(argv[2]));
    sigprocmask(SIG_BLOCK, &s, NULL);
    execvp(argv[3], argv + 3);
    perror(argv[3]);
    return 127;
  }
  fprintf(stderr, "relpeer: bad command line\n");
  return 64;
}
