/*
** ints.c - C baseline for sending native 4-byte ints parent -> child.
**
**   ints perint|nosig|batch N ROUNDS
**   ints pairs N ROUNDS
**
** Each round forks a child (no exec: a small C process) that reads N ints
** from a pipe and checks that they are 1, 2, ..., N.  The child says
** "ready" and "done" over a second pipe, so the time from the first int
** written to the last int received excludes the child's start-up:
**
**   perint  one write(2) of 4 bytes per int, one read(2) of 4 bytes per int
**           (the seed's protocol);
**   nosig   perint, but each int is written with exactly the calls hpass
**           makes: pwritev2(RWF_NOSIGNAL) where the kernel takes the flag,
**           else write(2) with SIGPIPE blocked around it (and a pending
**           one taken back), so that no signal can kill the writer;
**   batch   the ints are in an array before timing and go in 64 KiB
**           write(2)s; the child reads up to 64 KiB per read(2) into an
**           array and checks it after it has everything (pipe bandwidth).
**   pairs   no child: N times, one int written (as nosig) and read back
**           on one pipe, in one process -- what hpass adds to the calls
**           shows here without scheduling between two processes.
**
** Prints the nanoseconds per int of each round:  R ints/c_perint <ns>
** (R pairs/c <ns> per write+read pair for pairs).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 65536

static double now_ns (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die (const char *what) {
  fprintf(stderr, "ints: %s: %s\n", what, strerror(errno));
  exit(1);
}

#if !defined(RWF_NOSIGNAL)
#define RWF_NOSIGNAL 0x00000100
#endif

static int nosig_ok;  /* the kernel takes RWF_NOSIGNAL (probed in main) */

/* One int written as hpass writes it (see hpass_io_posix.c). */
static ssize_t write_nosig (int fd, const void *buf, size_t n) {
  struct iovec iov;
  sigset_t pipeset, old, pending;
  ssize_t r;
  iov.iov_base = (void *)buf;
  iov.iov_len = n;
  if (nosig_ok) return pwritev2(fd, &iov, 1, -1, RWF_NOSIGNAL);
  sigemptyset(&pipeset);
  sigaddset(&pipeset, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipeset, &old);
  (void)sigpending(&pending);
  r = write(fd, buf, n);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return r;
}

static void put_all (int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    p += w;
    n -= (size_t)w;
  }
}

/* read exactly n bytes; 0 on success, 1 at end of stream */
static int get_all (int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read");
    }
    if (r == 0) return 1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static void child (int batch, long n, int in, int ctl) {
  int ok = 1;
  char c = 'r', extra;
  put_all(ctl, &c, 1);
  if (!batch) {
    long i;
    for (i = 1; i <= n; i++) {
      int v;
      if (get_all(in, &v, sizeof v) != 0 || v != (int)i) { ok = 0; break; }
    }
    c = ok ? 'd' : 'x';
    put_all(ctl, &c, 1);
  }
  else {
    size_t want = (size_t)n * sizeof(int), got = 0;
    int *a = malloc(want + 1);
    long i;
    if (a == NULL) die("malloc");
    while (got < want) {
      size_t chunk = want - got < BATCH ? want - got : BATCH;
      ssize_t r = read(in, (char *)a + got, chunk);
      if (r < 0) {
        if (errno == EINTR) continue;
        die("read");
      }
      if (r == 0) { ok = 0; break; }
      got += (size_t)r;
    }
    c = ok ? 'd' : 'x';
    put_all(ctl, &c, 1);
    for (i = 0; ok && i < n; i++)
      if (a[i] != (int)(i + 1)) ok = 0;
    free(a);
  }
  /* nothing may follow the last int */
  if (ok && get_all(in, &extra, 1) != 1) ok = 0;
  _exit(ok ? 0 : 1);
}

/* pairs: write+read of one int on one pipe, n times, per round */
static int pairs (long n, long rounds) {
  long r, i;
  for (r = 0; r < rounds; r++) {
    int p[2];
    double t0;
    if (pipe2(p, O_CLOEXEC) != 0) die("pipe2");
    t0 = now_ns();
    for (i = 1; i <= n; i++) {
      int v = (int)i, back;
      if (write_nosig(p[1], &v, sizeof v) != (ssize_t)sizeof v) die("write");
      if (get_all(p[0], &back, sizeof back) != 0 || back != v) {
        fprintf(stderr, "ints: pairs read back the wrong int\n");
        return 1;
      }
    }
    printf("R pairs/c %.3f\n", (now_ns() - t0) / (double)n);
    fflush(stdout);
    close(p[0]);
    close(p[1]);
  }
  return 0;
}

int main (int argc, char **argv) {
  int batch, nosig;
  long n, rounds, r, i;
  int *a = NULL;
  if (argc != 4 || (strcmp(argv[1], "perint") != 0 &&
                    strcmp(argv[1], "nosig") != 0 &&
                    strcmp(argv[1], "pairs") != 0 &&
                    strcmp(argv[1], "batch") != 0)) {
    fprintf(stderr, "usage: ints perint|nosig|batch|pairs N ROUNDS\n");
    return 2;
  }
  batch = strcmp(argv[1], "batch") == 0;
  nosig = strcmp(argv[1], "nosig") == 0 || strcmp(argv[1], "pairs") == 0;
  n = atol(argv[2]);
  rounds = atol(argv[3]);
  if (nosig) {  /* as hpass_io_posix.c probes: an empty write with the flag */
    int p[2];
    char c = 0;
    struct iovec iov;
    if (pipe2(p, O_CLOEXEC) != 0) die("pipe2");
    iov.iov_base = &c;
    iov.iov_len = 0;
    nosig_ok = pwritev2(p[1], &iov, 1, -1, RWF_NOSIGNAL) == 0;
    close(p[0]);
    close(p[1]);
  }
  if (strcmp(argv[1], "pairs") == 0) return pairs(n, rounds);
  if (batch) {
    a = malloc((size_t)n * sizeof(int));
    if (a == NULL) die("malloc");
    for (i = 0; i < n; i++) a[i] = (int)(i + 1);
  }
  for (r = 0; r < rounds; r++) {
    int data[2], ctl[2], st;
    char c;
    double t0, t1;
    pid_t pid;
    if (pipe2(data, O_CLOEXEC) != 0 || pipe2(ctl, O_CLOEXEC) != 0)
      die("pipe2");
    fflush(stdout);
    pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      close(data[1]);
      close(ctl[0]);
      child(batch, n, data[0], ctl[1]);
    }
    close(data[0]);
    close(ctl[1]);
    if (get_all(ctl[0], &c, 1) != 0 || c != 'r') {
      fprintf(stderr, "ints: child did not start\n");
      return 1;
    }
    t0 = now_ns();
    if (!batch) {
      for (i = 1; i <= n; i++) {
        int v = (int)i;
        ssize_t w = nosig ? write_nosig(data[1], &v, sizeof v)
                          : write(data[1], &v, sizeof v);
        if (w != (ssize_t)sizeof v) die("write");
      }
    }
    else {
      size_t total = (size_t)n * sizeof(int), off;
      for (off = 0; off < total; off += BATCH)
        put_all(data[1], (char *)a + off,
                total - off < BATCH ? total - off : BATCH);
    }
    if (get_all(ctl[0], &c, 1) != 0 || c != 'd') {
      fprintf(stderr, "ints: child got wrong data\n");
      return 1;
    }
    t1 = now_ns();
    close(data[1]);
    close(ctl[0]);
    while (waitpid(pid, &st, 0) < 0)
      if (errno != EINTR) die("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "ints: child failed (status %d)\n", st);
      return 1;
    }
    printf("R ints/c_%s %.3f\n", argv[1], (t1 - t0) / (double)n);
    fflush(stdout);
  }
  free(a);
  return 0;
}
