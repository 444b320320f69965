/*
** hpass_io_posix.c - the POSIX implementation of hpass_sys.h.
**
** Handles are file descriptors.  Everything hpass creates is close-on-exec
** from birth (where the platform cannot do that at once, right after).
** Children are started in hpass_spawn_posix.c; what this platform offers
** is decided in hpass_posix.h.
*/
#ifndef _WIN32

#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE     /* pipe2, pwritev2, F_DUPFD_CLOEXEC */
#endif

#include "hpass_posix.h"

#if HPASS_HAVE_DLADDR
#include <dlfcn.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hpass_sys.h"



/*
** {======================================================
** Errors
** =======================================================
*/

const char *hp_strerror (int code, char *buf, size_t size) {
  const char *msg = strerror(code);  /* glibc's is thread-safe for codes */
  size_t n = strlen(msg);
  if (n >= size) n = size - 1;
  memcpy(buf, msg, n);
  buf[n] = '\0';
  return buf;
}

int hp_err_pipe (void) { return EPIPE; }
int hp_err_srch (void) { return ESRCH; }
int hp_err_inval (void) { return EINVAL; }
int hp_err_nomem (void) { return ENOMEM; }

/* }====================================================== */


/*
** {======================================================
** Writing without SIGPIPE
** =======================================================
**
** A write to a pipe or socket whose reader has gone raises SIGPIPE, which
** kills the process unless it is ignored or blocked.  hpass must report
** EPIPE instead, yet must not change how SIGPIPE behaves for any other
** code in the process or for children (so no process-wide SIG_IGN).
**
** Linux 6.18 added RWF_NOSIGNAL for pwritev2: one system call, no signal,
** for pipes and sockets alike.  Where the kernel rejects the flag we fall
** back to send(MSG_NOSIGNAL) for sockets and, for everything else, to
** blocking SIGPIPE in this thread around the write and discarding the
** signal that the write queued.  That costs two or three extra system
** calls per write, so it is only the fallback.
*/

#if defined(__linux__) && !defined(RWF_NOSIGNAL)
#define RWF_NOSIGNAL 0x00000100
#endif

#if HPASS_PWRITEV2 == 0
#undef RWF_NOSIGNAL     /* no way to pass the flag: the fallbacks only */
#elif HPASS_PWRITEV2 == 2
/*
** The C library has no wrapper (glibc < 2.26, musl < 1.2.5): the system
** call takes the offset as two longs, low half first (-1: the current
** position, as for write).
*/
static ssize_t hp_pwritev2 (int fd, const struct iovec *iov, int n,
                            off_t off, int flags) {
  unsigned long long u = (unsigned long long)off;
  return (ssize_t)syscall(SYS_pwritev2, fd, iov, n, (long)u,
                          (long)(u >> (sizeof(long) * 4) >> (sizeof(long) * 4)),
                          flags);
}
#define pwritev2 hp_pwritev2
#endif

/* See hpass_posix.h. */
int hpp_pipe (int fd[2]) {
#if HPASS_HAVE_PIPE2
  return pipe2(fd, O_CLOEXEC);
#else
  int err;
  if (pipe(fd) != 0) return -1;
  if ((err = hpp_cloexec(fd[0])) != 0 || (err = hpp_cloexec(fd[1])) != 0) {
    close(fd[0]);
    close(fd[1]);
    errno = err;
    return -1;
  }
  return 0;
#endif
}


enum { NOSIG_UNKNOWN = 0, NOSIG_YES = 1, NOSIG_NO = 2 };

/* Whether the kernel knows RWF_NOSIGNAL; decided once, by hp_init. */
static int nosig_mode = NOSIG_UNKNOWN;

static int nosig_get (void) {
#if defined(__GNUC__)
  return __atomic_load_n(&nosig_mode, __ATOMIC_RELAXED);
#else
  return nosig_mode;
#endif
}

static void nosig_set (int m) {
#if defined(__GNUC__)
  __atomic_store_n(&nosig_mode, m, __ATOMIC_RELAXED);
#else
  nosig_mode = m;
#endif
}


#if defined(RWF_NOSIGNAL)
/*
** Probe with an empty write to a private pipe: the flags are checked
** before anything is written, so an old kernel says EOPNOTSUPP at once.
*/
static int probe_nosignal (void) {
  int p[2];
  int ok;
  char c = 0;
  struct iovec iov;
  if (hpp_pipe(p) != 0) return NOSIG_NO;
  iov.iov_base = &c;
  iov.iov_len = 0;
  ok = (pwritev2(p[1], &iov, 1, -1, RWF_NOSIGNAL) == 0);
  close(p[0]);
  close(p[1]);
  return ok ? NOSIG_YES : NOSIG_NO;
}
#endif


int hp_init (void) {
  if (nosig_get() == NOSIG_UNKNOWN) {
#if defined(RWF_NOSIGNAL)
    nosig_set(getenv("HPASS_NO_RWF_NOSIGNAL") ? NOSIG_NO : probe_nosignal());
#else
    nosig_set(NOSIG_NO);
#endif
  }
  return 0;
}


/* See hpass_posix.h. */
void hpp_nosigpipe_begin (hpp_nosigpipe *s) {
  sigset_t pending;
  sigemptyset(&s->pipeset);
  sigaddset(&s->pipeset, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &s->pipeset, &s->old);
  s->was_pending = (sigpending(&pending) == 0 &&
                    sigismember(&pending, SIGPIPE));
}

void hpp_nosigpipe_end (hpp_nosigpipe *s, int epipe) {
  int saved = errno;
  if (epipe && !s->was_pending) {
#if HPASS_HAVE_SIGTIMEDWAIT
    struct timespec zero = {0, 0};
    while (sigtimedwait(&s->pipeset, NULL, &zero) < 0 && errno == EINTR)
      ;
#else
    /*
    ** sigwait blocks, so only when the signal is there: a SIGPIPE from
    ** our write is sent to this thread, and no other thread can take it.
    */
    sigset_t pending;
    int sig;
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
      (void)sigwait(&s->pipeset, &sig);
#endif
  }
  pthread_sigmask(SIG_SETMASK, &s->old, NULL);
  errno = saved;
}

static ssize_t write_masked (int fd, const void *buf, size_t n) {
  hpp_nosigpipe s;
  ssize_t r;
  hpp_nosigpipe_begin(&s);
  r = write(fd, buf, n);
  hpp_nosigpipe_end(&s, r < 0 && errno == EPIPE);
  return r;
}


static ssize_t write_nosig (int fd, const void *buf, size_t n) {
#if defined(RWF_NOSIGNAL)
  if (nosig_get() == NOSIG_YES) {
    struct iovec iov;
    ssize_t r;
    iov.iov_base = (void *)buf;
    iov.iov_len = n;
    r = pwritev2(fd, &iov, 1, -1, RWF_NOSIGNAL);
    /* some character devices take no flags: use the general path */
    if (r >= 0 || errno != EOPNOTSUPP) return r;
  }
#endif
#if defined(MSG_NOSIGNAL)
  {
    ssize_t r = send(fd, buf, n, MSG_NOSIGNAL);
    if (r >= 0 || errno != ENOTSOCK) return r;
  }
#endif
  return write_masked(fd, buf, n);
}


/*
** hpass calls block until done, also on descriptors that someone made
** non-blocking (LuaSocket keeps all its sockets so, and a passed copy
** shares that mode): EAGAIN waits in poll for the descriptor to be ready.
*/
static int waitready (int fd, short events) {
  struct pollfd p;
  p.fd = fd;
  p.events = events;
  p.revents = 0;
  while (poll(&p, 1, -1) < 0)
    if (errno != EINTR) return errno;
  return 0;
}

#define WOULDBLOCK(e)   ((e) == EAGAIN || (e) == EWOULDBLOCK)

/* See hpass_posix.h. */
int hpp_settle (ssize_t r, int fd, short events) {
  int err;
  if (r >= 0) return 0;
  err = errno;
  if (err == EINTR) return -1;
  if (!WOULDBLOCK(err)) return err;
  err = waitready(fd, events);
  return err != 0 ? err : -1;
}


int hp_write (hp_os h, const void *buf, size_t n, size_t *done) {
  ssize_t r;
  int err;
  *done = 0;
  if (HPP_NOTFD(h)) return EBADF;
  do {
    r = write_nosig((int)h, buf, n);
  } while ((err = hpp_settle(r, (int)h, POLLOUT)) < 0);
  if (err != 0) return err;
  *done = (size_t)r;
  return 0;
}


int hp_read (hp_os h, void *buf, size_t n, size_t *done) {
  ssize_t r;
  int err;
  *done = 0;
  if (HPP_NOTFD(h)) return EBADF;
  do {
    r = read((int)h, buf, n);
  } while ((err = hpp_settle(r, (int)h, POLLIN)) < 0);
  if (err != 0) return err;
  *done = (size_t)r;
  return 0;
}

#if !defined(MADV_POPULATE_WRITE) && defined(__linux__)
#define MADV_POPULATE_WRITE 23  /* Linux 5.14; older headers lack it */
#endif

/*
** Linux 5.14 and later fault a range in with one call, with no trap per
** page (on a virtual machine a 100 MiB capture spent most of its time in
** those traps); the range is the whole pages inside buf, which changes
** no mapping (a hint such as MADV_HUGEPAGE over part of the heap splits
** its mapping, for good).  Elsewhere, or when the call fails, a write to
** each page does the same.
*/
void hp_prefault (void *buf, size_t n) {
  unsigned char *b = (unsigned char *)buf;
  size_t i;
#if defined(MADV_POPULATE_WRITE)
  long page = sysconf(_SC_PAGESIZE);
  if (page > 1 && n >= 2 * (size_t)page) {
    size_t head = ((size_t)page - (size_t)((uintptr_t)b % (size_t)page)) % (size_t)page;
    size_t mid = (n - head) / (size_t)page * (size_t)page;
    b[0] = 0;
    b[n - 1] = 0;  /* the partial pages at either end */
    if (madvise(b + head, mid, MADV_POPULATE_WRITE) == 0) return;
  }
#endif
  for (i = 0; i < n; i += 4096) b[i] = 0;
}


/* }====================================================== */


/*
** {======================================================
** Handles
** =======================================================
*/

int hp_pipe (hp_os p[2]) {
  int fd[2];
  if (hpp_pipe(fd) != 0) return errno;
  p[0] = fd[0];
  p[1] = fd[1];
  return 0;
}


int hp_socketpair (hp_os p[2]) {
  int fd[2];
#if !HPASS_HAVE_SOCK_CLOEXEC || HPASS_HAVE_SO_NOSIGPIPE
  int i;
#endif
#if HPASS_HAVE_SOCK_CLOEXEC
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd) != 0)
    return errno;
#else
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fd) != 0) return errno;
  for (i = 0; i < 2; i++) {  /* close-on-exec right after (see hp_pipe_raw) */
    int err = hp_noinherit(fd[i]);
    if (err != 0) {
      close(fd[0]);
      close(fd[1]);
      return err;
    }
  }
#endif
#if HPASS_HAVE_SO_NOSIGPIPE
  {
    /* no MSG_NOSIGNAL (macOS): the socket itself never raises SIGPIPE */
    int one = 1;
    for (i = 0; i < 2; i++)
      (void)setsockopt(fd[i], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
  }
#endif
  p[0] = fd[0];
  p[1] = fd[1];
  return 0;
}


int hp_opennull (hp_os *h) {
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) return errno;
  *h = fd;
  return 0;
}


int hp_stdio (int i, hp_os *h) {
  *h = i;
  return 0;
}


int hp_setnonblock (hp_os h) {
  int fl;
  if (HPP_NOTFD(h)) return EBADF;
  fl = fcntl((int)h, F_GETFL);
  if (fl == -1 || fcntl((int)h, F_SETFL, fl | O_NONBLOCK) == -1) return errno;
  return 0;
}


int hp_check (hp_os h) {
  if (HPP_NOTFD(h)) return EBADF;
  return fcntl((int)h, F_GETFD) == -1 ? errno : 0;
}


/* See hpass_posix.h. */
int hpp_cloexec (int fd) {
  int flags = fcntl(fd, F_GETFD);
  if (flags == -1) return errno;
  if ((flags & FD_CLOEXEC) == 0 && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == -1)
    return errno;
  return 0;
}


int hp_noinherit (hp_os h) {
  /*
  ** The standard streams are inherited by every child (os.execute,
  ** io.popen) unless redirected: adopting one must not change that.
  */
  if (h >= 0 && h <= 2) return 0;
  return HPP_NOTFD(h) ? EBADF : hpp_cloexec((int)h);
}


int hp_close (hp_os h) {
  /*
  ** On Linux the descriptor is released even when close reports EINTR,
  ** so retrying could close a descriptor another thread just opened.
  */
  if (close((int)h) != 0 && errno != EINTR) return errno;
  return 0;
}


static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void hp_lock (void) { pthread_mutex_lock(&lock); }
void hp_unlock (void) { pthread_mutex_unlock(&lock); }
int hp_lock_atexit (void) { hp_lock(); return 1; }


/* See hpass_sys.h: a second, never closed, reference that is NODELETE. */
void hp_pinself (void) {
#if HPASS_HAVE_DLADDR
  static const char here = 0;   /* an address inside this module */
  Dl_info info;
  if (dladdr(&here, &info) != 0 && info.dli_fname != NULL)
    (void)dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
#endif
}

/* }====================================================== */


/*
** {======================================================
** Processes
** =======================================================
*/

int hp_wait (hp_proc *p, int block, int *done, int *how, long long *code) {
  int status;
  pid_t r;
  do {
    r = waitpid((pid_t)p->pid, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  *done = 0;
  if (r < 0) return errno;
  if (r == 0) return 0;  /* still running */
  *done = 1;
  if (WIFSIGNALED(status)) {
    *how = HP_SIGNALED;
    *code = WTERMSIG(status);
  }
  else {
    *how = HP_EXITED;
    *code = WEXITSTATUS(status);
  }
  return 0;
}


/*
** One system call instead of one per child: waitid with WNOWAIT only
** looks, so the status stays for whoever waits for that child.
*/
int hp_anyended (void) {
  siginfo_t si;
  si.si_pid = 0;
  if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
    return errno != ECHILD;  /* no child at all: none has ended */
  return si.si_pid != 0;
}


int hp_kill (hp_proc *p, int sig) {
  return kill((pid_t)p->pid, sig) == 0 ? 0 : errno;
}


/*
** The group's id is the leader's pid (setpgid(0, 0) or setsid).  While
** the leader is ours and not collected, running or ended, its pid is
** taken, so the group's id cannot have been reused: look first without
** collecting, and signal only then.
*/
/*
** The group is the child's own (its id is the child's pid), or the one
** it joined: either way, a member not yet collected keeps the group's id
** from being reused.
*/
int hp_killgroup (hp_proc *p, int sig, int collected) {
  siginfo_t si;
  long long pgid = (p->flags & HP_SPAWN_JOIN) ? p->pgid : p->pid;
  if (collected) return ESRCH;
  if (p->pid <= 1 || pgid <= 1) return EINVAL;  /* kill(-1) reaches all */
  si.si_pid = 0;
  if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
    return errno;  /* ECHILD: someone else collected it */
  return kill(-(pid_t)pgid, sig) == 0 ? 0 : errno;
}


void hp_endgroup (hp_proc *p) {
  p->group = NULL;  /* a process group needs no handle */
}


/* The C library's own array: nothing to copy. */
int hp_envlist (char *const **out, hp_alloc alloc, void *ud) {
  static char *const none[] = {NULL};
  char **e = hp_environ();
  (void)alloc;
  (void)ud;
  *out = e != NULL ? e : none;
  return 0;
}


int hp_release (hp_proc *p) {
  (void)p;  /* nothing to free, but the pid must be reaped later */
  return 1;
}


/* systemd's socket activation: the variables, our pid, the limit. */
const char *hp_listenvar (const char *name) {
  return getenv(name);
}

void hp_unlistenvar (const char *name) {
  (void)unsetenv(name);
}

long long hp_getpid (void) {
  return (long long)getpid();
}

long long hp_maxfd (void) {
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_max == RLIM_INFINITY ||
      lim.rlim_max > (rlim_t)0x7fffffff)
    return -1;
  return (long long)lim.rlim_max - 1;
}


const hp_signame hp_signames[] = {
  {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
  {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},
  {"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"CHLD", SIGCHLD},
  {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
  {"ABRT", SIGABRT}, {"SEGV", SIGSEGV}, {NULL, 0}
};

/* }====================================================== */

#endif
