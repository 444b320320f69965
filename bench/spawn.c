/*
** spawn.c - C baseline for spawn cost against parent heap size.
**
**   spawn MODE HEAPS SPAWNS ROUNDS MAXSEC
**
** MODE is "posix_spawn" (posix_spawn + waitpid) or "fork" (fork + execve +
** waitpid).  HEAPS is a comma-separated, ascending list of heap sizes in
** MiB.  For each size the heap is grown to it (every page written, so it is
** resident), then each round starts /bin/true with one argument, the number
** of an inherited pipe descriptor (what hpass passes), SPAWNS times or
** until MAXSEC seconds have gone by (at least 3 spawns), and prints the
** mean time per spawn in microseconds:
**
**   R spawn/c_posix_spawn/<heap> <us>
**
** With BENCH_LIVE=n in the environment, n children (`head -c 1` reading
** a pipe that ends with this process) are started first and never
** waited for, and the name becomes c_posix_spawn_live (with n = 0:
** c_posix_spawn_nolive, its partner round): what this machine makes of
** spawn with many live children, the reference for hpass_live.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_s (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long status_kib (const char *field) {
  char line[256];
  long v = -1;
  size_t n = strlen(field);
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, field, n) == 0 && line[n] == ':') {
      v = strtol(line + n + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

static void die (const char *what, int err) {
  fprintf(stderr, "spawn: %s: %s\n", what, strerror(err));
  exit(1);
}

static void check_status (int st) {
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "spawn: /bin/true did not exit 0 (status %d)\n", st);
    exit(1);
  }
}

static void spawn_posix (char *const argv[], int fd) {
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int err, st;
  if ((err = posix_spawn_file_actions_init(&fa)) != 0)
    die("posix_spawn_file_actions_init", err);
  /* dup2 onto itself clears close-on-exec in the child (glibc >= 2.29) */
  if ((err = posix_spawn_file_actions_adddup2(&fa, fd, fd)) != 0)
    die("posix_spawn_file_actions_adddup2", err);
  err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) die("posix_spawn", err);
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) die("waitpid", errno);
  check_status(st);
}

static void spawn_fork (char *const argv[], int fd) {
  pid_t pid = fork();
  int st;
  if (pid < 0) die("fork", errno);
  if (pid == 0) {
    fcntl(fd, F_SETFD, 0);  /* the child inherits this one descriptor */
    execve(argv[0], argv, environ);
    _exit(127);
  }
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) die("waitpid", errno);
  check_status(st);
}

/* Grow the heap by mib MiB of written pages; returns the block. */
static char *grow (long mib) {
  size_t size = (size_t)mib << 20, i;
  long page = sysconf(_SC_PAGESIZE);
  char *b = malloc(size);
  if (b == NULL) die("malloc", ENOMEM);
  for (i = 0; i < size; i += (size_t)page) b[i] = (char)(i >> 12 | 1);
  return b;
}

static int livew = -1;

/* The state letter of process pid (R, S, D, ...), or 0 where /proc has none. */
static char procstate (pid_t pid) {
  char path[64], line[512], *p;
  FILE *f;
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  if ((f = fopen(path, "r")) == NULL) return 0;
  p = fgets(line, sizeof line, f);
  fclose(f);
  if (p == NULL || (p = strrchr(line, ')')) == NULL || p[1] != ' ') return 0;
  return p[2];
}

/*
** Wait until all n children sleep (blocked on their input): their
** start-up is not what is measured.  At least a second, at most a minute.
*/
static void settle (const pid_t *pids, long n) {
  double t0 = now_s();
  for (;;) {
    long i;
    int busy = 0;
    struct timespec q = {0, 250000000};
    nanosleep(&q, NULL);
    for (i = 0; i < n && !busy; i++) {
      char st = procstate(pids[i]);
      busy = st != 0 && st != 'S';
    }
    if ((!busy && now_s() - t0 >= 1) || now_s() - t0 > 60) return;
  }
}

/* n children blocked on reading a pipe whose writer is this process. */
static void startlive (long n) {
  int p[2];
  long i;
  char *hargv[4];
  pid_t *pids = malloc((size_t)(n > 0 ? n : 1) * sizeof(pid_t));
  hargv[0] = (char *)"/usr/bin/head";
  hargv[1] = (char *)"-c";
  hargv[2] = (char *)"1";
  hargv[3] = NULL;
  if (pids == NULL) die("malloc", ENOMEM);
  if (pipe2(p, O_CLOEXEC) != 0) die("pipe2", errno);
  for (i = 0; i < n; i++) {
    posix_spawn_file_actions_t fa;
    int err;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0], 0);
    err = posix_spawn(&pids[i], hargv[0], &fa, NULL, hargv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err != 0) die("posix_spawn head", err);
  }
  close(p[0]);
  livew = p[1];  /* open until the end: then they read its end and exit */
  settle(pids, n);
  free(pids);
}

int main (int argc, char **argv) {
  const char *mode, *name;
  const char *heaps;
  long spawns, rounds, r, have = 0;
  double maxsec;
  char *blocks[64];
  int nblocks = 0, i;
  char num[32];
  char *cargv[3];
  int p[2];
  void (*spawn1)(char *const[], int);
  if (argc != 6) {
    fprintf(stderr, "usage: spawn posix_spawn|fork HEAPS SPAWNS ROUNDS MAXSEC\n");
    return 2;
  }
  mode = argv[1];
  heaps = argv[2];
  spawns = atol(argv[3]);
  rounds = atol(argv[4]);
  maxsec = atof(argv[5]);
  if (strcmp(mode, "posix_spawn") == 0) {
    spawn1 = spawn_posix;
    name = "c_posix_spawn";
  }
  else if (strcmp(mode, "fork") == 0) {
    spawn1 = spawn_fork;
    name = "c_fork_exec";
  }
  else {
    fprintf(stderr, "spawn: unknown mode %s\n", mode);
    return 2;
  }
  if (getenv("BENCH_LIVE") != NULL && strcmp(mode, "posix_spawn") == 0) {
    long n = atol(getenv("BENCH_LIVE"));
    startlive(n);
    name = n > 0 ? "c_posix_spawn_live" : "c_posix_spawn_nolive";
  }
  if (pipe2(p, O_CLOEXEC) != 0) die("pipe2", errno);
  snprintf(num, sizeof num, "%d", p[1]);
  cargv[0] = (char *)"/bin/true";
  cargv[1] = num;
  cargv[2] = NULL;
  while (*heaps != '\0') {
    char *end;
    long heap = strtol(heaps, &end, 10);
    if (end == heaps || heap < have || nblocks == 64) {
      fprintf(stderr, "spawn: bad heap list %s\n", argv[2]);
      return 2;
    }
    heaps = *end == ',' ? end + 1 : end;
    if (heap > have) {
      blocks[nblocks++] = grow(heap - have);
      have = heap;
    }
    printf("I spawn/%s/%ld VmRSS %ld kB\n", name, heap, status_kib("VmRSS"));
    spawn1(cargv, p[1]);  /* warm-up */
    for (r = 0; r < rounds; r++) {
      long n = 0;
      double t0 = now_s(), t;
      do {
        spawn1(cargv, p[1]);
        n++;
        t = now_s() - t0;
      } while (n < spawns && (n < 3 || t < maxsec));
      printf("R spawn/%s/%ld %.3f\n", name, heap, t / (double)n * 1e6);
      fflush(stdout);
    }
  }
  for (i = 0; i < nblocks; i++) free(blocks[i]);
  /* the live children end and are waited for before the next measurement */
  if (livew >= 0) {
    close(livew);
    while (wait(NULL) > 0 || errno == EINTR) {}
  }
  return 0;
}
