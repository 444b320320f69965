/*
** hpass_posix.c - the POSIX implementation of hpass_sys.h.
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

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#if defined(__linux__) && !defined(__GLIBC__)
#include <stdio_ext.h>     /* __freadahead (musl) */
#endif
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hpass_sys.h"

/*
** A handle number that an int cannot hold is no descriptor: the cast
** would turn it into another one (2^32 + 1 into 1), so it is EBADF.
*/
#define NOTFD(h)  ((h) < 0 || (h) > 0x7fffffff)


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

/*
** A pipe that is close-on-exec; without pipe2 (macOS) the flag comes
** right after, and a concurrent fork + exec by other code could inherit
** the pipe in between.  hpass's own children cannot: they close what they
** are not given.
*/
static int hp_pipe_raw (int fd[2]) {
#if HPASS_HAVE_PIPE2
  return pipe2(fd, O_CLOEXEC);
#else
  if (pipe(fd) != 0) return -1;
  if (fcntl(fd[0], F_SETFD, FD_CLOEXEC) != 0 ||
      fcntl(fd[1], F_SETFD, FD_CLOEXEC) != 0) {
    int e = errno;
    close(fd[0]);
    close(fd[1]);
    errno = e;
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
  if (hp_pipe_raw(p) != 0) return NOSIG_NO;
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


/*
** SIGPIPE blocked in this thread around a call that may write (the
** portable fallback).  A SIGPIPE the call queued is taken back before the
** mask is restored; one that was already pending belongs to someone else
** and stays.
*/
typedef struct nosigpipe {
  sigset_t pipeset, old;
  int was_pending;
} nosigpipe;

static void nosigpipe_begin (nosigpipe *s) {
  sigset_t pending;
  sigemptyset(&s->pipeset);
  sigaddset(&s->pipeset, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &s->pipeset, &s->old);
  s->was_pending = (sigpending(&pending) == 0 &&
                    sigismember(&pending, SIGPIPE));
}

/* epipe: whether the call failed with EPIPE (and so queued the signal). */
static void nosigpipe_end (nosigpipe *s, int epipe) {
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
  nosigpipe s;
  ssize_t r;
  nosigpipe_begin(&s);
  r = write(fd, buf, n);
  nosigpipe_end(&s, r < 0 && errno == EPIPE);
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

/*
** After a read or write that returned r: 0 when it is done, -1 to try
** again (EINTR, or the descriptor became ready after EAGAIN), else the
** error.
*/
static int settle (ssize_t r, int fd, short events) {
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
  if (NOTFD(h)) return EBADF;
  do {
    r = write_nosig((int)h, buf, n);
  } while ((err = settle(r, (int)h, POLLOUT)) < 0);
  if (err != 0) return err;
  *done = (size_t)r;
  return 0;
}


int hp_read (hp_os h, void *buf, size_t n, size_t *done) {
  ssize_t r;
  int err;
  *done = 0;
  if (NOTFD(h)) return EBADF;
  do {
    r = read((int)h, buf, n);
  } while ((err = settle(r, (int)h, POLLIN)) < 0);
  if (err != 0) return err;
  *done = (size_t)r;
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** Handles
** =======================================================
*/

int hp_pipe (hp_os p[2]) {
  int fd[2];
  if (hp_pipe_raw(fd) != 0) return errno;
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
  if (NOTFD(h)) return EBADF;
  fl = fcntl((int)h, F_GETFL);
  if (fl == -1 || fcntl((int)h, F_SETFL, fl | O_NONBLOCK) == -1) return errno;
  return 0;
}


int hp_check (hp_os h) {
  if (h < 0 || h > 0x7fffffff) return EBADF;
  return fcntl((int)h, F_GETFD) == -1 ? errno : 0;
}


/* Set close-on-exec on fd (0 or an error code). */
static int cloexec (int fd) {
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
  return NOTFD(h) ? EBADF : cloexec((int)h);
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


int hp_fromfile (FILE *f, hp_os *h) {
  int fd = fileno(f);
  if (fd < 0) return errno ? errno : EBADF;
  *h = fd;
  return 0;
}


int hp_fflush (FILE *f) {
  nosigpipe s;
  int r, err;
  /*
  ** A stream that holds input has no output to write.  Flushing it seeks
  ** the descriptor back over that input where it can; where it cannot (a
  ** pipe), musl drops the input and glibc keeps it.  So it is left alone.
  */
  if (hp_freadahead(f) > 0 && lseek(fileno(f), 0, SEEK_CUR) < 0) return 0;
  nosigpipe_begin(&s);
  errno = 0;
  r = fflush(f);
  err = errno;
  nosigpipe_end(&s, r != 0 && err == EPIPE);
  if (r == 0) return 0;
  return err != 0 ? err : EIO;
}


/*
** Input a stream holds: stdio has no standard call for it, so each C
** library is asked in its own terms (musl and the BSDs export one; glibc's
** FILE is a public struct whose read pointers say it).
*/
size_t hp_freadahead (FILE *f) {
#if defined(__GLIBC__)
  if (f->_IO_read_ptr == NULL || f->_IO_read_end <= f->_IO_read_ptr)
    return 0;
  return (size_t)(f->_IO_read_end - f->_IO_read_ptr);
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || \
      defined(__OpenBSD__) || defined(__DragonFly__)
  return f->_r > 0 ? (size_t)f->_r : 0;
#elif defined(__linux__)
  return __freadahead(f);  /* musl */
#else
  (void)f;
  return 0;
#endif
}


size_t hp_ftake (FILE *f, void *buf, size_t n) {
  size_t k = hp_freadahead(f);
  if (k > n) k = n;
  return k == 0 ? 0 : fread(buf, 1, k, f);
}


FILE *hp_tofile (hp_os h, const char *mode, int *err) {
  FILE *f = fdopen((int)h, mode);
  if (f == NULL) *err = errno;
  return f;
}


int hp_fclose (FILE *f) {
  return fclose(f);
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


/*
** {======================================================
** Passing handles to running processes
** =======================================================
**
** A message is one byte, the number of descriptors, with the descriptors
** attached as SCM_RIGHTS.  The byte is needed (Linux drops control data
** sent with no payload) and lets the receiver check that what arrived is
** what was sent: bytes written by anything else carry no descriptors, and
** a count that does not match means the message was not ours.  The
** control buffers are sized with CMSG_SPACE, which includes the padding
** the kernel expects; CMSG_LEN would be short on some ABIs.
*/

#if !defined(MSG_CMSG_CLOEXEC)
#define MSG_CMSG_CLOEXEC 0   /* set FD_CLOEXEC after the fact, below */
#endif
/*
** Control messages that carry descriptors besides SCM_RIGHTS, which a
** receiver must close: Linux attaches SCM_PIDFD to every message once
** SO_PASSPIDFD is set on the socket (6.5), whether headers know it or not.
*/
#if defined(__linux__) && !defined(SCM_PIDFD)
#define SCM_PIDFD 0x04
#elif !defined(SCM_PIDFD)
#define SCM_PIDFD SCM_RIGHTS   /* none: the test above already takes it */
#endif

/*
** Room for other control messages next to SCM_RIGHTS (credentials, when
** SO_PASSCRED is on), so that a full message of descriptors never comes
** back truncated for want of space.
*/
#define CTLSLACK  64

/* Room for the control data of any message, aligned for a cmsghdr. */
typedef union ctlbuf {
  struct cmsghdr align;
  unsigned char b[CMSG_SPACE(HP_MAXFDS * sizeof(int)) + CTLSLACK];
} ctlbuf;


/* sendmsg that never raises SIGPIPE: MSG_NOSIGNAL, else the mask. */
static ssize_t sendmsg_nosig (int fd, const struct msghdr *msg) {
#if HPASS_HAVE_MSG_NOSIGNAL
  return sendmsg(fd, msg, MSG_NOSIGNAL);
#else
  nosigpipe s;
  ssize_t r;
  nosigpipe_begin(&s);
  r = sendmsg(fd, msg, 0);
  nosigpipe_end(&s, r < 0 && errno == EPIPE);
  return r;
#endif
}


/* A message of one byte (*count) with room for control data in ctl. */
static void setmsg (struct msghdr *msg, struct iovec *iov,
                    unsigned char *count, unsigned char *ctl, size_t space) {
  memset(msg, 0, sizeof(*msg));
  iov->iov_base = count;
  iov->iov_len = 1;
  msg->msg_iov = iov;
  msg->msg_iovlen = 1;
  msg->msg_control = ctl;
  msg->msg_controllen = space;
}


int hp_sendfds (hp_os chan, const hp_os *h, size_t n) {
  struct msghdr msg;
  struct iovec iov;
  struct cmsghdr *c;
  unsigned char count = (unsigned char)n;
  size_t space, i;
  ctlbuf buf;
  unsigned char *ctl = buf.b;
  ssize_t r;
  int err;
  if (n == 0 || n > HP_MAXFDS) return EINVAL;
  if (NOTFD(chan)) return EBADF;
  space = CMSG_SPACE(n * sizeof(int));
  memset(ctl, 0, space);
  setmsg(&msg, &iov, &count, ctl, space);
  c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(n * sizeof(int));
  for (i = 0; i < n; i++) {
    int fd = (int)h[i];
    if (h[i] < 0 || h[i] > 0x7fffffff) return EBADF;
    memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
  }
  do {
    r = sendmsg_nosig((int)chan, &msg);
  } while ((err = settle(r, (int)chan, POLLOUT)) < 0);
  if (err != 0) return err;
  return r == 1 ? 0 : EIO;  /* a 1-byte send is never short, but be sure */
}


/* Close h[0 .. n-1]: the handles of a message that is refused. */
static void closeall (hp_os *h, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    close((int)h[i]);
    h[i] = HP_NOHANDLE;
  }
}


/* A message is one byte: once the channel is readable, it is all there. */
int hp_recvfds (hp_os chan, hp_os *h, size_t max, size_t *n,
                hp_time deadline) {
  struct msghdr msg;
  struct iovec iov;
  struct cmsghdr *c;
  unsigned char count = 0;
  size_t space = sizeof(ctlbuf);
  size_t got = 0, kept = 0;
  ctlbuf buf;
  unsigned char *ctl = buf.b;
  ssize_t r;
  int err = 0;
  *n = 0;
  if (NOTFD(chan)) return EBADF;
  if (deadline != HP_NEVER &&
      (err = hp_ready(chan, HP_READABLE, deadline)) != 0)
    return err;
  /* close-on-exec from birth: no window for a concurrent spawn to leak them */
  do {
    setmsg(&msg, &iov, &count, ctl, space);
    r = recvmsg((int)chan, &msg, MSG_CMSG_CLOEXEC);
  } while ((err = settle(r, (int)chan, POLLIN)) < 0);
  if (err != 0) return err;
  /*
  ** Take every descriptor that arrived, whatever else is wrong with the
  ** message, so that none stays open unowned: up to max into h, the rest
  ** closed at once.
  */
  for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    size_t k, i;
    if (c->cmsg_level != SOL_SOCKET ||
        (c->cmsg_type != SCM_RIGHTS && c->cmsg_type != SCM_PIDFD))
      continue;
    k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      /* a pidfd (SO_PASSPIDFD on the channel) is no handle of the message */
      if (c->cmsg_type != SCM_RIGHTS) {
        close(fd);
        continue;
      }
      got++;
      if (MSG_CMSG_CLOEXEC == 0) (void)cloexec(fd);
      if (kept < max) h[kept++] = fd;
      else close(fd);
    }
  }
  if (r == 0 && got == 0) return 0;  /* clean end of stream */
  if (msg.msg_flags & MSG_CTRUNC)
    err = EMFILE;  /* the buffer has room for any message: the limit was hit */
  else if (got == 0 || (msg.msg_flags & MSG_TRUNC) || (size_t)count != got)
    err = EBADMSG;  /* not a message from hp_sendfds */
  else if (got > max)
    err = EMSGSIZE;
  if (err != 0) {
    closeall(h, kept);
    return err;
  }
  *n = kept;
  return 0;
}

/* }====================================================== */

#endif
