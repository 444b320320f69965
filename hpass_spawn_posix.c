/*
** hpass_spawn_posix.c - hp_spawn for POSIX: starting a child that inherits
** exactly the passed descriptors.
**
** Three ways, chosen in hpass_posix.h (HPASS_SPAWN):
**
** - a vfork child of our own (Linux, older BSDs, any other POSIX): the
**   parent blocks every signal in the calling thread, vforks, and the
**   child, which shares the parent's memory until it execs, runs only
**   async-signal-safe code: caught signals back to their defaults, the
**   dup2s, everything else closed (close_range, else a walk of
**   /proc/self/fd, else every number up to the limit), chdir, who it is
**   (hpass_ids_posix.c), the signal mask emptied, execve over candidate
**   paths the parent prepared (no malloc, no getenv in the child).  A
**   failure is sent back as the step that failed and its errno over a
**   close-on-exec pipe, so the parent returns it as an error and can say
**   whether the program, the cwd, a standard stream, an option or which
**   handle was the culprit.  Nothing is copied: the cost does not grow
**   with the parent's heap, as fork's would.  A child that changes its
**   user or groups is forked instead (see hpp_idsprep).
**
** - posix_spawn with addclosefrom_np (glibc >= 2.34, FreeBSD >= 13.1);
** - posix_spawn with POSIX_SPAWN_CLOEXEC_DEFAULT (macOS), where every
**   descriptor not named in a file action is closed at exec.
**
** All three are race-free against other threads opening descriptors
** without close-on-exec: nothing is listed in the parent and closed later.
*/
#ifndef _WIN32

#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE     /* vfork, pipe2, posix_spawn_*_np, F_DUPFD_CLOEXEC */
#endif

#include "hpass_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hpass_sys.h"

/* The lowest descriptor number handed to a child. */
#define FIRSTCHILD 3

#define NUMLEN    24      /* room for a number in decimal */
#define VARLEN    40      /* room for LISTEN_FDS= or LISTEN_PID= and one */
#define CLOSEMAX  65536   /* the most numbers closed one by one (childprep) */


/*
** The path this build starts children with, findable in the binary
** (`make bench` reports it).
*/
#if defined(__GNUC__)
__attribute__((used))
#endif
static const char spawnpath[] = "hpass-spawn-path: " HPASS_SPAWN_NAME
#if HPASS_SPAWN == HPASS_SPAWN_CHILD
  " child closing with "
#if HPASS_HAVE_CLOSE_RANGE
  "close_range, else "
#endif
#if HPASS_HAVE_PROCFD
  "a /proc/self/fd walk, else "
#endif
#if HPASS_HAVE_CLOSEFROM
  "closefrom"
#else
  "a poll of every number up to the limit"
#endif
#endif
  ;


/*
** {======================================================
** What every path shares
** =======================================================
*/

/* dup2(src[i], dst[i]) in order: standard streams, then 3, 4, ... */
typedef struct plan {
  int *src, *dst;
  size_t m;             /* number of dup2s */
  int top;              /* lowest number the child must not keep */
  char **argv;          /* the caller's arguments, then 3, 4, ... */
} plan;


/* Scratch memory from the caller's allocator, for n objects of size sz. */
static void *scratch (hp_alloc alloc, void *ud, size_t n, size_t sz) {
  if (n > (size_t)-1 / sz) return NULL;
  return alloc(ud, n * sz);
}


/*
** Check the handles and make the plan; on an error req->failed (already
** HP_FAIL_OTHER) names the culprit.
*/
/*
** Each handle of the request, then each standard stream given, must be
** a descriptor number (open: checked with each path's own call), else
** EBADF names the culprit; open too when open is set (0 or an error).
*/
static int checkhandles (hp_spawn_req *req, int open) {
  size_t i, n = req->nhandles;
  for (i = 0; i < n + 3; i++) {
    hp_os h = i < n ? req->handles[i] : req->stdio[i - n];
    if (h == HP_NOHANDLE && i >= n) continue;
    if (HPP_NOTFD(h) || (open && fcntl((int)h, F_GETFD) == -1)) {
      req->failed = i < n ? HP_FAIL_HANDLE : HP_FAIL_STDIO;
      req->failed_index = i < n ? i : i - n;
      return EBADF;
    }
  }
  return 0;
}


static int makeplan (hp_spawn_req *req, plan *pl, hp_alloc alloc, void *ud) {
  size_t i, argc, n = req->nhandles;
  int err;
  for (argc = 0; req->argv[argc] != NULL; argc++) ;
  if (argc == 0) return EINVAL;  /* the binding refuses an empty argv */
  if ((err = checkhandles(req, 0)) != 0) return err;
  if (n > (size_t)INT_MAX - FIRSTCHILD) return EMFILE;
  pl->src = (int *)scratch(alloc, ud, n + 3, sizeof(int));
  pl->dst = (int *)scratch(alloc, ud, n + 3, sizeof(int));
  pl->argv = (char **)scratch(alloc, ud, argc + n + 1, sizeof(char *));
  if (pl->src == NULL || pl->dst == NULL || pl->argv == NULL) return ENOMEM;
  pl->top = FIRSTCHILD + (int)n;
  pl->m = 0;
  for (i = 0; i < 3; i++) {
    if (req->stdio[i] == HP_NOHANDLE) continue;
    pl->src[pl->m] = (int)req->stdio[i];
    pl->dst[pl->m++] = (int)i;
  }
  for (i = 0; i < n; i++) {
    pl->src[pl->m] = (int)req->handles[i];
    pl->dst[pl->m++] = FIRSTCHILD + (int)i;
  }
  for (i = 0; i < argc; i++) pl->argv[i] = (char *)req->argv[i];
  /* the listening handles' numbers are told by LISTEN_FDS instead */
  for (i = req->nlisten; i < n; i++, argc++) {
    if ((pl->argv[argc] = (char *)alloc(ud, NUMLEN)) == NULL) return ENOMEM;
    (void)snprintf(pl->argv[argc], NUMLEN, "%d", FIRSTCHILD + (int)i);
  }
  pl->argv[argc] = NULL;
  return 0;
}


/*
** A child whose numbers 3 .. top-1 the hard descriptor limit does not
** allow can never be started: say so before trying, naming the first
** handle that cannot have its number.
*/
static int checklimit (hp_spawn_req *req, const plan *pl, struct rlimit *lim) {
  if (getrlimit(RLIMIT_NOFILE, lim) != 0) {
    lim->rlim_cur = lim->rlim_max = RLIM_INFINITY;
    return 0;
  }
  if (lim->rlim_max != RLIM_INFINITY && (rlim_t)pl->top > lim->rlim_max) {
    req->failed = HP_FAIL_HANDLE;
    req->failed_index = lim->rlim_max > FIRSTCHILD ?
                        (size_t)(lim->rlim_max - FIRSTCHILD) : 0;
    return EMFILE;
  }
  return 0;
}


/* The step and index a dup2 onto dst belongs to: *index, and the step. */
static int blame (int dst, size_t *index) {
  *index = (size_t)(dst < FIRSTCHILD ? dst : dst - FIRSTCHILD);
  return dst < FIRSTCHILD ? HP_FAIL_STDIO : HP_FAIL_HANDLE;
}


/*
** The dup2s run in order, so a source that is also the target of another
** dup2 could be overwritten before its turn: it is copied first
** (close-on-exec) above every target, and the plan uses the copy.
** tmp[k] gets the copy of source k, or -1 (tmp may be NULL: the child's
** copies go with everything from top up).  0, or errno with *bad the
** source that could not be copied.  Async-signal-safe: the child runs it.
*/
static int movesources (plan *pl, int *tmp, size_t *bad) {
  size_t k, j;
  for (k = 0; tmp != NULL && k < pl->m; k++) tmp[k] = -1;
  for (k = 0; k < pl->m; k++) {
    int fd;
    for (j = 0; j < pl->m; j++)
      if (j != k && pl->dst[j] == pl->src[k]) break;
    if (j == pl->m) continue;
    if ((fd = fcntl(pl->src[k], F_DUPFD_CLOEXEC, pl->top)) < 0) {
      *bad = k;
      return errno;
    }
    if (tmp != NULL) tmp[k] = fd;
    pl->src[k] = fd;
  }
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** The vfork child
** =======================================================
**
** Also the way out of the posix_spawn paths where they cannot do the job:
** a cwd without addchdir_np, or handles that need numbers above the soft
** descriptor limit.
*/

/*
** macOS marks vfork deprecated; there the child path is only that way out,
** and fork does the job (its cost grows with the heap, vfork's would not).
*/
#if defined(__APPLE__)
#define hp_vfork()      fork()
#define VFORK_SHARES    0   /* the child has a copy of our memory */
#else
#define hp_vfork()      vfork()
#define VFORK_SHARES    1
#endif

/* Step that failed, sent to the parent. */
typedef struct report {
  int failed;           /* HP_FAIL_* */
  int index;            /* for HP_FAIL_STDIO / HP_FAIL_HANDLE */
  int err;              /* errno */
} report;

/*
** Everything the child needs, prepared by the parent: the child may not
** allocate, take locks or read the environment.
*/
typedef struct child {
  plan *pl;
  char *const *envp;
  char *const *paths;   /* where to look for the program, NULL-terminated */
  const char *cwd;
  struct rlimit lim;    /* the parent's descriptor limits */
  int maxfd;            /* where closing one by one stops */
  int errfd;            /* write end of the report pipe, or -1 */
  hpp_ids ids;          /* who it is: user, groups, process group, ... */
  char *pidslot;        /* "LISTEN_PID=", its value written by the child,
                           or NULL */
  volatile report *shared;  /* the report when there is no pipe */
} child;


/* Collect a child that failed before exec (it has exited, or will). */
static void collectfailed (pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) ;
}


/* The last words of a child that cannot exec. */
static void childfail (child *c, int failed, int index, int err) {
  report r;
  r.failed = failed;
  r.index = index;
  r.err = err;
  if (c->errfd >= 0) {
    ssize_t w;
    do {
      w = write(c->errfd, &r, sizeof r);
    } while (w < 0 && errno == EINTR);
  }
  else {  /* vfork: the parent's memory, read once this process has exited */
    c->shared->failed = failed;
    c->shared->index = index;
    c->shared->err = err;
  }
  _exit(127);
}


/*
** Signal handlers of the parent must not run here: this process shares
** the parent's memory.  Every caught signal goes back to its default (exec
** would do that too, but a signal could arrive before it), and SIGPIPE
** and SIGXFSZ go to their defaults even when ignored, so that pipelines
** behave in children as they do from a shell.
*/
static void child_signals (void) {
  int sig;
#if defined(_NSIG)
  const int nsig = _NSIG;
#else
  const int nsig = NSIG;
#endif
  for (sig = 1; sig < nsig; sig++) {
    struct sigaction sa;
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if (sigaction(sig, NULL, &sa) != 0) continue;  /* reserved by libc */
    if (sa.sa_handler == SIG_DFL) continue;
    if (sa.sa_handler == SIG_IGN && sig != SIGPIPE
#if defined(SIGXFSZ)
        && sig != SIGXFSZ
#endif
       ) continue;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(sig, &sa, NULL);
  }
}


#if HPASS_HAVE_PROCFD
/*
** getdents64 fills the buffer with records laid out as the kernel's
** linux_dirent64: 8-byte inode, 8-byte offset, 2-byte record length,
** 1-byte type, then the NUL-terminated name.
*/
#define DIRENT_RECLEN   16
#define DIRENT_NAME     19

/*
** Close every descriptor >= from listed in /proc/self/fd but keep: the
** directory's own descriptor is close-on-exec.  Closing while listing is
** safe (the listing goes by descriptor number).  -1 when there is no
** /proc or no descriptor left to read it with.
*/
static int closeproc (int from, int keep) {
  char buf[2048];
  long n;
  int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -1;
  while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
    long off = 0;
    while (off < n) {
      const char *s = buf + off + DIRENT_NAME;
      unsigned short reclen;
      int fd = 0;
      memcpy(&reclen, buf + off + DIRENT_RECLEN, sizeof reclen);
      if (reclen == 0) break;
      off += reclen;
      if (*s < '0' || *s > '9') continue;
      for (; *s >= '0' && *s <= '9'; s++) fd = fd * 10 + (*s - '0');
      if (fd >= from && fd != dir && fd != keep) close(fd);
    }
  }
  close(dir);
  return n < 0 ? -1 : 0;
}
#endif


/*
** Numbers asked about in one poll call (the child's stack holds them: 8
** KiB).  Measured here for 20,000 numbers: 163 us in calls of 64, 97 in
** calls of 256, 83 in calls of 1024, 79 in one call: past 1024 the
** kernel's own per-number cost is all that is left.
*/
#define POLLBATCH 1024

/* Close every descriptor in [from, to), fastest way first. */
static void closerange (child *c, int from, int to) {
  int fd;
  if (from >= to) return;
#if HPASS_HAVE_CLOSE_RANGE && defined(__linux__) && defined(SYS_close_range)
  if (syscall(SYS_close_range, (unsigned)from,
              (unsigned)(to == INT_MAX ? ~0U : (unsigned)to - 1), 0U) == 0)
    return;  /* before Linux 5.9: ENOSYS */
#elif HPASS_HAVE_CLOSE_RANGE && !defined(__linux__)
  if (close_range((unsigned)from,
                  (unsigned)(to == INT_MAX ? ~0U : (unsigned)to - 1), 0) == 0)
    return;
#endif
#if HPASS_HAVE_PROCFD
  if (to == INT_MAX && closeproc(from, c->errfd) == 0) return;
#endif
#if HPASS_HAVE_CLOSEFROM
  if (to == INT_MAX) {
    closefrom(from);
    return;
  }
#endif
  /*
  ** Last resort: every number up to the limit.  One poll call tells which
  ** of POLLBATCH numbers are open (POLLNVAL marks the others), so that
  ** only those cost a close.
  */
  if (to > c->maxfd) to = c->maxfd;
  for (fd = from; fd < to; fd += POLLBATCH) {
    struct pollfd pf[POLLBATCH];
    int n = to - fd < POLLBATCH ? to - fd : POLLBATCH, i, polled;
    for (i = 0; i < n; i++) {
      pf[i].fd = fd + i;
      pf[i].events = 0;
      pf[i].revents = 0;
    }
    polled = (poll(pf, (nfds_t)n, 0) >= 0);  /* EINVAL: a limit below n */
    for (i = 0; i < n; i++)
      if (fd + i != c->errfd && !(polled && (pf[i].revents & POLLNVAL)))
        close(fd + i);
  }
}


/*
** Everything from top up, except the report pipe: around it when a range
** is closed at once, skipped by the walks.
*/
static void closerest (child *c, int top) {
  if (c->errfd >= top) {
    closerange(c, top, c->errfd);
    closerange(c, c->errfd + 1, INT_MAX);
  }
  else
    closerange(c, top, INT_MAX);
}


/* Whether execve's error means "try the next directory" (as execvp). */
static int tryon (int err) {
  return err == ENOENT || err == ENOTDIR || err == ESTALE ||
         err == ENODEV || err == ETIMEDOUT || err == EACCES;
}


/*
** The child's own pid in decimal at p, NUL-terminated (p holds 21 bytes
** or more).  snprintf is not async-signal-safe: the digits are made here.
*/
static void putpid (char *p) {
  char d[NUMLEN];
  long long v = (long long)getpid();
  int n = 0;
  do {
    d[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (n > 0) *p++ = d[--n];
  *p = '\0';
}


/*
** The numbers 3 .. top-1 (and the spare copies above them) may lie above
** the soft descriptor limit, which dup2 enforces, so the child lifts it
** to the hard limit while it arranges its descriptors.  Whether it did.
*/
static int child_raise (const child *c) {
  struct rlimit up = c->lim;
  if (c->lim.rlim_cur == RLIM_INFINITY || c->lim.rlim_cur >= c->lim.rlim_max ||
      (rlim_t)c->pl->top + c->pl->m + 1 <= c->lim.rlim_cur)
    return 0;
  up.rlim_cur = up.rlim_max;
  return setrlimit(RLIMIT_NOFILE, &up) == 0;
}


/*
** The descriptors: what a dup2 would overwrite (the report pipe, a
** source) moves above every target first, then the dup2s, then
** everything from top up is closed.
*/
static void child_fds (child *c) {
  plan *pl = c->pl;
  size_t k;
  int err;
  if (c->errfd >= 0 && c->errfd < pl->top) {
    int fd = fcntl(c->errfd, F_DUPFD_CLOEXEC, pl->top);
    if (fd < 0) childfail(c, HP_FAIL_OTHER, 0, errno);
    c->errfd = fd;
  }
  if ((err = movesources(pl, NULL, &k)) != 0) {
    int step = blame(pl->dst[k], &k);
    childfail(c, step, (int)k, err);
  }
  for (k = 0; k < pl->m; k++) {
    int s = pl->src[k], d = pl->dst[k];
    if (s == d) {  /* dup2(fd, fd) would keep close-on-exec */
      int fl = fcntl(s, F_GETFD);
      if (fl < 0 || fcntl(s, F_SETFD, fl & ~FD_CLOEXEC) < 0) s = -1;
    }
    else if (dup2(s, d) < 0)
      s = -1;
    if (s < 0) {
      int step;
      err = errno;
      step = blame(d, &k);
      childfail(c, step, (int)k, err);
    }
  }
  closerest(c, pl->top);
}


/* execve on each candidate path, as execvp; reports the failure. */
static void child_exec (child *c) {
  int i, err = ENOENT, eacces = 0;
  sigset_t none;
  sigemptyset(&none);
  (void)sigprocmask(SIG_SETMASK, &none, NULL);
  for (i = 0; c->paths[i] != NULL; i++) {
    execve(c->paths[i], c->pl->argv, c->envp);
    err = errno;
    if (err == EACCES) eacces = 1;
    if (!tryon(err)) break;
  }
  if (eacces && tryon(err)) err = EACCES;  /* as execvp reports it */
  childfail(c, HP_FAIL_EXEC, 0, err);
}


/*
** Before exec the program gets the parent's soft limit back, unless its
** handles reach past it: then no number below the limit would be free,
** and the program could not even load its libraries (EMFILE, then exit
** 127).  It gets as many free numbers above its handles as the soft
** limit would give, up to the hard limit.
*/
static void child_lower (const child *c) {
  struct rlimit to = c->lim;
  rlim_t top = (rlim_t)c->pl->top;
  if (top >= to.rlim_cur)
    to.rlim_cur = to.rlim_max - top > to.rlim_cur ? top + to.rlim_cur
                                                  : to.rlim_max;
  (void)setrlimit(RLIMIT_NOFILE, &to);
}


/* Runs in the child; never returns. */
static void child_main (child *c) {
  int raised, err, step;
  child_signals();
  raised = child_raise(c);
  child_fds(c);
  if (raised) child_lower(c);
  if (c->cwd != NULL && chdir(c->cwd) != 0)
    childfail(c, HP_FAIL_CWD, 0, errno);
  if ((err = hpp_setids(&c->ids, &step)) != 0) childfail(c, step, 0, err);
  if (c->pidslot != NULL) putpid(c->pidslot + sizeof("LISTEN_PID=") - 1);
  child_exec(c);
}


/*
** Where the child looks for the program: the name itself when it holds
** a '/', else each directory of this process's PATH in turn, as execvp
** does (an empty entry is the current directory).
*/
static char **candidates (const char *name, hp_alloc alloc, void *ud) {
  const char *path, *p;
  size_t n = 1, i = 0, len = strlen(name);
  char **c;
  if (*name == '\0' || strchr(name, '/') != NULL) {  /* "": ENOENT */
    if ((c = (char **)scratch(alloc, ud, 2, sizeof(char *))) == NULL)
      return NULL;
    c[0] = (char *)name;
    c[1] = NULL;
    return c;
  }
  if ((path = getenv("PATH")) == NULL) path = "/bin:/usr/bin";
  for (p = path; *p; p++) n += (*p == ':');
  if ((c = (char **)scratch(alloc, ud, n + 1, sizeof(char *))) == NULL)
    return NULL;
  for (p = path; ; ) {
    const char *end = strchr(p, ':');
    size_t dl = end ? (size_t)(end - p) : strlen(p);
    char *s = (char *)alloc(ud, dl + len + 2);
    if (s == NULL) return NULL;
    /* "dir/name"; an empty entry gives "name", in the current directory */
    (void)snprintf(s, dl + len + 2, "%.*s%s%s", (int)dl, p,
                   dl > 0 ? "/" : "", name);
    c[i++] = s;
    if (end == NULL) break;
    p = end + 1;
  }
  c[i] = NULL;
  return c;
}


/*
** Block every signal in this thread around vfork, so that no handler runs
** in the child while it shares our memory.  On Linux the raw system call,
** because the C library's wrapper leaves out signals it keeps for itself.
*/
static void blockall (sigset_t *old) {
  sigset_t all;
  memset(&all, 0xff, sizeof all);
#if defined(__linux__) && defined(SYS_rt_sigprocmask) && defined(_NSIG)
  (void)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, old, (size_t)(_NSIG / 8));
#else
  sigfillset(&all);
  (void)pthread_sigmask(SIG_SETMASK, &all, old);
#endif
}

static void restoremask (const sigset_t *old) {
#if defined(__linux__) && defined(SYS_rt_sigprocmask) && defined(_NSIG)
  (void)syscall(SYS_rt_sigprocmask, SIG_SETMASK, old, NULL, (size_t)(_NSIG / 8));
#else
  (void)pthread_sigmask(SIG_SETMASK, old, NULL);
#endif
}


/* vfork in a function of its own: nothing of the caller's frame is live. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static pid_t startchild (child *c) {
  /* vfork on purpose: the child below only makes async-signal-safe calls */
  pid_t pid = hp_vfork();  /* NOLINT(clang-analyzer-security.insecureAPI.vfork) */
  if (pid == 0) child_main(c);  /* NOLINT(clang-analyzer-unix.Vfork) */
  return pid;
}

/* The same with fork, for a child that changes its user (hpp_idsprep). */
static pid_t forkchild (child *c) {
  pid_t pid = fork();
  if (pid == 0) child_main(c);
  return pid;
}


/* Whether e is one of the variables of systemd's protocol. */
static int islisten (const char *e) {
  return strncmp(e, "LISTEN_PID=", 11) == 0 ||
         strncmp(e, "LISTEN_FDS=", 11) == 0 ||
         strncmp(e, "LISTEN_FDNAMES=", 15) == 0;
}


/*
** The environment of a child given listening sockets (systemd's
** socket-activation protocol): envp's, or ours, without the protocol's
** variables, then LISTEN_FDS, LISTEN_FDNAMES when there are names, and
** LISTEN_PID, whose value only the child knows: it writes it into *slot
** before exec (the posix_spawn paths cannot, so such a spawn comes here).
*/
static int listenenv (const hp_spawn_req *req, char ***out, char **slot,
                      hp_alloc alloc, void *ud) {
  char *const *base = req->envp ? (char *const *)req->envp : hp_environ();
  size_t n = 0, k = 0, i;
  char **e;
  while (base != NULL && base[n] != NULL) n++;
  if ((e = (char **)scratch(alloc, ud, n + 4, sizeof(char *))) == NULL)
    return ENOMEM;
  for (i = 0; i < n; i++)
    if (!islisten(base[i])) e[k++] = base[i];
  if ((e[k] = (char *)alloc(ud, VARLEN)) == NULL) return ENOMEM;
  (void)snprintf(e[k++], VARLEN, "LISTEN_FDS=%lu", (unsigned long)req->nlisten);
  if (req->listen_names != NULL) {
    size_t len = strlen(req->listen_names) + sizeof("LISTEN_FDNAMES=");
    if ((e[k] = (char *)alloc(ud, len)) == NULL) return ENOMEM;
    (void)snprintf(e[k++], len, "LISTEN_FDNAMES=%s", req->listen_names);
  }
  if ((*slot = (char *)alloc(ud, VARLEN)) == NULL) return ENOMEM;
  memcpy(*slot, "LISTEN_PID=", sizeof("LISTEN_PID="));
  e[k++] = *slot;
  e[k] = NULL;
  *out = e;
  return 0;
}


/*
** Everything the child needs, prepared here: where closing one by one
** stops, the environment (with LISTEN_* for listening handles), the
** program's candidate paths.  0 or an error code.
*/
static int childprep (child *c, hp_spawn_req *req, plan *pl,
                      hp_alloc alloc, void *ud) {
  size_t k;
  int err;
  if ((err = checklimit(req, pl, &c->lim)) != 0) return err;
  c->maxfd = (c->lim.rlim_cur == RLIM_INFINITY || c->lim.rlim_cur > INT_MAX) ?
             CLOSEMAX : (int)c->lim.rlim_cur;
  if (c->lim.rlim_max != RLIM_INFINITY && c->lim.rlim_max <= CLOSEMAX &&
      (int)c->lim.rlim_max > c->maxfd)
    c->maxfd = (int)c->lim.rlim_max;  /* descriptors above a lowered limit */
  for (k = 0; k < pl->m; k++)  /* a source above the soft limit */
    if (pl->src[k] >= c->maxfd) c->maxfd = pl->src[k] + 1;
  c->pl = pl;
  c->envp = req->envp ? (char *const *)req->envp : hp_environ();
  c->pidslot = NULL;
  if (req->nlisten > 0) {
    char **e;
    if ((err = listenenv(req, &e, &c->pidslot, alloc, ud)) != 0) return err;
    c->envp = e;
  }
  c->cwd = req->cwd;
  if ((err = hpp_idsprep(&c->ids, req, alloc, ud)) != 0) return err;
  c->paths = candidates(req->executable ? req->executable : req->argv[0],
                        alloc, ud);
  return c->paths == NULL ? ENOMEM : 0;
}


/*
** The child's report, once its end of the pipe is closed (at exec, or at
** its _exit): whether there was one, in *r.  With no pipe (pp < 0) it is
** in shared, which vfork shares until the child execs or exits.
*/
static int childreport (int pp, volatile report *shared, report *r) {
  ssize_t got = 0;
  if (pp >= 0) {  /* end of stream: exec succeeded */
    do {
      got = read(pp, r, sizeof *r);
    } while (got < 0 && errno == EINTR);
    close(pp);
  }
  else if (shared->failed != HP_FAIL_NONE) {
    r->failed = shared->failed;
    r->index = shared->index;
    r->err = shared->err;
    got = (ssize_t)sizeof *r;
  }
  return got == (ssize_t)sizeof *r;
}


static int spawn_child (hp_spawn_req *req, plan *pl, hp_proc *p,
                        hp_alloc alloc, void *ud) {
  child c;
  volatile report shared;
  report r;
  int pp[2], err;
  sigset_t old;
  pid_t pid;
  if ((err = childprep(&c, req, pl, alloc, ud)) != 0) return err;
  shared.failed = HP_FAIL_NONE;
  shared.index = 0;
  shared.err = 0;
  c.shared = &shared;
  /*
  ** With every descriptor number taken the report goes through our
  ** memory instead, which vfork shares until the child execs or exits.
  */
  if (hpp_pipe(pp) != 0) {
    if (!VFORK_SHARES || c.ids.forks || (errno != EMFILE && errno != ENFILE))
      return errno;
    pp[0] = pp[1] = -1;
  }
  c.errfd = pp[1];
  blockall(&old);
  pid = c.ids.forks ? forkchild(&c) : startchild(&c);
  err = errno;
  restoremask(&old);
  if (pp[1] >= 0) close(pp[1]);
  if (pid < 0) {
    if (pp[0] >= 0) close(pp[0]);
    return err;
  }
  if (childreport(pp[0], &shared, &r)) {
    collectfailed(pid);
    req->failed = r.failed;
    req->failed_index = (size_t)r.index;
    return r.err != 0 ? r.err : EIO;
  }
  p->pid = pid;
  p->sys = NULL;
  p->group = NULL;
  p->flags = req->flags;
  p->pgid = req->pgroup;
  return 0;
}

/* }====================================================== */


#if HPASS_SPAWN != HPASS_SPAWN_CHILD
/*
** {======================================================
** posix_spawn
** =======================================================
*/

/*
** posix_spawn cannot say which file action failed.  When the cwd option
** was given and the directory cannot be entered, it is the likely
** culprit (checked after the fact, so a best guess).
*/
static int blamecwd (const char *cwd, int err) {
  struct stat st;
  if (cwd == NULL || (err != ENOENT && err != ENOTDIR && err != EACCES))
    return 0;
  return stat(cwd, &st) != 0 || !S_ISDIR(st.st_mode) || access(cwd, X_OK) != 0;
}


/*
** Whether posix_spawn cannot do it: a directory to enter and no file
** action for it, or descriptor numbers (the handles', their targets',
** their spare copies') that the soft descriptor limit does not allow,
** which only our own child can lift for itself.
*/
static int needchild (const hp_spawn_req *req, const plan *pl) {
  struct rlimit lim;
  size_t i;
  if (req->cwd != NULL && !HPASS_HAVE_ADDCHDIR_NP) return 1;
  /* the death signal and LISTEN_PID need a step between fork and exec */
  if (req->flags & HP_SPAWN_DIEWITHPARENT) return 1;
  if (req->nlisten > 0) return 1;
  /* no step for these, and a group not joined would blame the program */
  if (req->flags & (HP_SPAWN_UMASK | HP_SPAWN_GROUPS | HP_SPAWN_GID |
                    HP_SPAWN_UID | HP_SPAWN_JOIN))
    return 1;
#if !(HPASS_HAVE_SPAWN_SETSID && defined(POSIX_SPAWN_SETSID))
  if (req->flags & HP_SPAWN_SESSION) return 1;
#endif
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY)
    return 0;
  if ((rlim_t)pl->top + pl->m >= lim.rlim_cur) return 1;
  for (i = 0; i < pl->m; i++)  /* adddup2 refuses a source above it */
    if ((rlim_t)pl->src[i] >= lim.rlim_cur) return 1;
  return 0;
}


/* The file actions: the dup2s, what is closed, the directory. */
static int fileactions (const hp_spawn_req *req, const plan *pl,
                        posix_spawn_file_actions_t *fa) {
  size_t i;
  int err = 0;
#if HPASS_SPAWN == HPASS_SPAWN_APPLE
  /*
  ** Every descriptor not named in a file action is closed at exec; the
  ** standard streams that are not redirected are named too.  A descriptor
  ** already on its number is inherited with addinherit_np, since
  ** adddup2(fd, fd) fails with EBADF on some releases.
  */
  for (i = 0; i < 3 && err == 0; i++)
    if (req->stdio[i] == HP_NOHANDLE)
      err = posix_spawn_file_actions_addinherit_np(fa, (int)i);
  for (i = 0; i < pl->m && err == 0; i++) {
    if (pl->src[i] == pl->dst[i])
      err = posix_spawn_file_actions_addinherit_np(fa, pl->dst[i]);
    else
      err = posix_spawn_file_actions_adddup2(fa, pl->src[i], pl->dst[i]);
  }
#else
  /*
  ** dup2 onto 3, 4, ...: the copy in the child is not close-on-exec even
  ** when source and target are the same number (glibc >= 2.29 and FreeBSD
  ** clear the flag for dup2(fd, fd) in file actions).  Then close
  ** everything above, also what other threads opened without O_CLOEXEC.
  */
  for (i = 0; i < pl->m && err == 0; i++)
    err = posix_spawn_file_actions_adddup2(fa, pl->src[i], pl->dst[i]);
  if (err == 0)
    err = posix_spawn_file_actions_addclosefrom_np(fa, pl->top);
#endif
#if HPASS_HAVE_ADDCHDIR_NP
  if (err == 0 && req->cwd)
    err = posix_spawn_file_actions_addchdir_np(fa, req->cwd);
#else
  (void)req;
#endif
  return err;
}


/*
** The attributes: the child starts with no blocked signals and with
** SIGPIPE (and SIGXFSZ) at their defaults, whatever this process did with
** them; a session or a group of its own.
*/
static int spawnattrs (const hp_spawn_req *req, posix_spawnattr_t *attr) {
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  sigset_t none, dflt;
  int err;
#if HPASS_SPAWN == HPASS_SPAWN_APPLE
  flags |= POSIX_SPAWN_CLOEXEC_DEFAULT;
#endif
  sigemptyset(&none);
  sigemptyset(&dflt);
  sigaddset(&dflt, SIGPIPE);
#if defined(SIGXFSZ)
  sigaddset(&dflt, SIGXFSZ);
#endif
  err = posix_spawnattr_setsigmask(attr, &none);
  if (err == 0) err = posix_spawnattr_setsigdefault(attr, &dflt);
  /* a group of its own: setpgid(0, 0) in the child, before exec */
  if (req->flags & HP_SPAWN_SESSION) {
#if HPASS_HAVE_SPAWN_SETSID && defined(POSIX_SPAWN_SETSID)
    flags |= POSIX_SPAWN_SETSID;
#endif
  }
  else if (req->flags & HP_SPAWN_GROUP) {
    flags |= POSIX_SPAWN_SETPGROUP;
    if (err == 0) err = posix_spawnattr_setpgroup(attr, 0);
  }
  if (err == 0) err = posix_spawnattr_setflags(attr, flags);
  return err;
}


/* posix_spawn, or posix_spawnp for a name without '/' (as execvp). */
static int runspawn (hp_spawn_req *req, const plan *pl, hp_proc *p,
                     posix_spawn_file_actions_t *fa, posix_spawnattr_t *attr) {
  char *const *envp = req->envp ? (char *const *)req->envp : hp_environ();
  const char *prog = req->executable ? req->executable : pl->argv[0];
  pid_t pid;
  int err;
  if (strchr(prog, '/') != NULL)
    err = posix_spawn(&pid, prog, fa, attr, pl->argv, envp);
  else
    err = posix_spawnp(&pid, prog, fa, attr, pl->argv, envp);
  req->failed = blamecwd(req->cwd, err) ? HP_FAIL_CWD : HP_FAIL_EXEC;
  if (err == 0) {
    req->failed = HP_FAIL_NONE;
    p->pid = pid;
    p->sys = NULL;
    p->group = NULL;
    p->flags = req->flags;
    p->pgid = 0;
  }
  return err;
}


static int spawn_posix (hp_spawn_req *req, plan *pl, hp_proc *p,
                        hp_alloc alloc, void *ud) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  struct rlimit lim;
  int *tmp, err;
  size_t i;
  /*
  ** posix_spawn reports a handle that is not open as its own failure,
  ** the same EBADF as any other: look first, so that the error names it.
  */
  if ((err = checkhandles(req, 1)) != 0) return err;
  if ((err = checklimit(req, pl, &lim)) != 0) return err;
  if ((tmp = (int *)scratch(alloc, ud, pl->m + 1, sizeof(int))) == NULL)
    return ENOMEM;
  if ((err = movesources(pl, tmp, &i)) != 0) {
    req->failed = blame(pl->dst[i], &req->failed_index);
  }
  else if ((err = posix_spawn_file_actions_init(&fa)) == 0) {
    if ((err = posix_spawnattr_init(&attr)) == 0) {
      if ((err = fileactions(req, pl, &fa)) == 0 &&
          (err = spawnattrs(req, &attr)) == 0)
        err = runspawn(req, pl, p, &fa, &attr);
      posix_spawnattr_destroy(&attr);
    }
    posix_spawn_file_actions_destroy(&fa);
  }
  for (i = 0; i < pl->m; i++) if (tmp[i] >= 0) close(tmp[i]);
  return err;
}

/* }====================================================== */
#endif


int hp_spawn (hp_spawn_req *req, hp_proc *p, hp_alloc alloc, void *ud) {
  plan pl;
  int err;
  (void)spawnpath;
  req->failed = HP_FAIL_OTHER;
  req->failed_index = 0;
  if ((err = makeplan(req, &pl, alloc, ud)) != 0) return err;
#if HPASS_PDEATHSIG == 0
  if (req->flags & HP_SPAWN_DIEWITHPARENT) {  /* macOS: no such thing */
    req->failed = HP_FAIL_FLAGS;
    req->failed_index = HP_SPAWN_DIEWITHPARENT;
    return ENOTSUP;
  }
#endif
#if HPASS_SPAWN == HPASS_SPAWN_CHILD
  err = spawn_child(req, &pl, p, alloc, ud);
#else
  err = needchild(req, &pl) ? spawn_child(req, &pl, p, alloc, ud) :
                              spawn_posix(req, &pl, p, alloc, ud);
#endif
  if (err == 0) req->failed = HP_FAIL_NONE;
  return err;
}

#endif
