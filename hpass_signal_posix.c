/*
** hpass_signal_posix.c - signals as a handle, for POSIX (hpass.signals).
**
** The self-pipe: each open set has a pipe, and the handler of each of
** its signals does nothing but write the signal's number, one byte, to
** the pipe's write end, which is non-blocking.  The read end is the
** handle a script waits on, with hpass.select, a loop's poll or
** read_signal.  write is async-signal-safe, and the handler keeps errno.
**
** A signalfd would need the signals blocked in every thread of the
** process, which a library cannot arrange (threads it did not start keep
** their masks), and a signal those threads left unblocked would take its
** old disposition: so hpass catches them with a handler instead.
**
** Every delivery is counted: a byte per handler run.  Should the pipe be
** full (65,536 unread on Linux), the handler counts the delivery in the
** signal's slot instead, and hp_sigtake moves counted ones into the pipe
** as it makes room, so that the pipe stays readable while any remain.
**
** The slots (one per signal number) are shared by every thread; a set is
** opened and closed under hp_lock.  The handler reads a slot while
** counting itself in 'running', so that closing can wait until no handler
** still uses the write end it is about to close (another thread's handler
** may be running right then).
*/
#ifndef _WIN32

#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE     /* sigaction, SA_RESTART, _NSIG under -std=c99 */
#endif

#include "hpass_posix.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "hpass_sys.h"

#if defined(_NSIG)
#define NSLOTS  _NSIG
#else
#define NSLOTS  NSIG
#endif

/*
** Atomic loads, stores and sums, shared with the handler.  gcc and clang
** have them as builtins in every C mode; elsewhere volatile access is the
** best C99 offers (a count raced by two threads at once may then be off).
*/
#if defined(__GNUC__) || defined(__clang__)
#define aload(p)      __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define astore(p,v)   __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define aadd(p,v)     ((void)__atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST))
#define acas(p,e,v)   __atomic_compare_exchange_n((p), (e), (v), 0, \
                          __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
#else
#define aload(p)      (*(volatile int *)(p))
#define astore(p,v)   ((void)(*(volatile int *)(p) = (v)))
#define aadd(p,v)     ((void)(*(volatile int *)(p) += (v)))
static int acas (int *p, int *e, int v) {
  if (*(volatile int *)p != *e) {
    *e = *(volatile int *)p;
    return 0;
  }
  *(volatile int *)p = v;
  return 1;
}
#endif

typedef struct slot {
  int fd;                   /* the set's write end; -1 when not caught */
  int missed;               /* deliveries the full pipe could not take */
  struct sigaction old;     /* the disposition to give back */
} slot;

static slot slots[NSLOTS];
static int ready;           /* slots[].fd set to -1 (under hp_lock) */
static int running;         /* handlers between reading a slot and done */


const hp_signame hp_catchable[] = {
  {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"USR1", SIGUSR1},
  {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},
  {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
  {"TTOU", SIGTTOU}, {"WINCH", SIGWINCH}, {"URG", SIGURG}, {"XCPU", SIGXCPU},
  {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
#if defined(SIGIO)
  {"IO", SIGIO},
#endif
#if defined(SIGPWR)
  {"PWR", SIGPWR},
#endif
#if defined(SIGINFO)
  {"INFO", SIGINFO},
#endif
  {NULL, 0}
};


int hp_err_busy (void) { return EBUSY; }


/* The handler: one byte to the set's pipe, or a count when it is full. */
static void onsignal (int sig) {
  int saved = errno;
  aadd(&running, 1);
  if (sig > 0 && sig < NSLOTS) {
    int fd = aload(&slots[sig].fd);
    if (fd >= 0) {
      unsigned char b = (unsigned char)sig;
      if (write(fd, &b, 1) != 1) aadd(&slots[sig].missed, 1);
    }
  }
  aadd(&running, -1);
  errno = saved;
}


/* Take one counted delivery of sig, if there is one. */
static int takemissed (int sig) {
  int n = aload(&slots[sig].missed);
  while (n > 0)
    if (acas(&slots[sig].missed, &n, n - 1)) return 1;
  return 0;
}


/* The pipe: both ends close-on-exec (hp_pipe) and non-blocking. */
static int newpipe (int p[2]) {
  hp_os h[2];
  int err = hp_pipe(h);
  if (err == 0 && ((err = hp_setnonblock(h[0])) != 0 ||
                   (err = hp_setnonblock(h[1])) != 0)) {
    close((int)h[0]);
    close((int)h[1]);
  }
  p[0] = (int)h[0];
  p[1] = (int)h[1];
  return err;
}


/* Give the first n signals of s back what they had (under hp_lock). */
static void giveback (hp_signals *s, int n) {
  int i;
  for (i = 0; i < n; i++) {
    int sig = s->sig[i];
    (void)sigaction(sig, &slots[sig].old, NULL);
    astore(&slots[sig].fd, -1);
    astore(&slots[sig].missed, 0);
  }
  /* a handler another thread runs may still hold the write end */
  while (aload(&running) > 0) sched_yield();
}


static void initslots (void) {
  int i;
  if (ready) return;
  for (i = 0; i < NSLOTS; i++) slots[i].fd = -1;
  ready = 1;
}


int hp_sigopen (hp_signals *s, int *busy) {
  struct sigaction sa;
  sigset_t set, old;
  int p[2], i, err;
  s->h = s->w = HP_NOHANDLE;
  hp_lock();
  initslots();
  for (i = 0; i < s->n; i++) {
    if (s->sig[i] <= 0 || s->sig[i] >= NSLOTS) {
      hp_unlock();
      return EINVAL;
    }
    if (slots[s->sig[i]].fd >= 0) {
      *busy = s->sig[i];
      hp_unlock();
      return EBUSY;
    }
  }
  if ((err = newpipe(p)) != 0) {
    hp_unlock();
    return err;
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = onsignal;
  sigfillset(&sa.sa_mask);    /* nothing nests in the handler */
  sa.sa_flags = SA_RESTART;   /* other code's system calls carry on */
  sigemptyset(&set);
  for (i = 0; i < s->n; i++) {
    int sig = s->sig[i];
    astore(&slots[sig].missed, 0);
    astore(&slots[sig].fd, p[1]);
    if (sigaction(sig, &sa, &slots[sig].old) != 0) {
      err = errno;
      astore(&slots[sig].fd, -1);
      giveback(s, i);
      close(p[0]);
      close(p[1]);
      hp_unlock();
      return err;
    }
    sigaddset(&set, sig);
  }
  /*
  ** A signal blocked in this thread would never reach the handle: it is
  ** unblocked here (one already pending arrives now), and blocked again
  ** when the handle closes.
  */
  sigemptyset(&old);
  (void)pthread_sigmask(SIG_UNBLOCK, &set, &old);
  for (i = 0; i < s->n; i++)
    s->unblocked[i] = sigismember(&old, s->sig[i]) == 1;
  s->h = p[0];
  s->w = p[1];
  hp_unlock();
  return 0;
}


int hp_sigtake (hp_signals *s, int *sig) {
  unsigned char b;
  ssize_t r;
  int i;
  *sig = 0;
  do {
    r = read((int)s->h, &b, 1);
  } while (r < 0 && errno == EINTR);
  if (r == 1) {
    *sig = b;
    /* room for one: a delivery the full pipe missed takes it */
    for (i = 0; i < s->n; i++) {
      if (!takemissed(s->sig[i])) continue;
      b = (unsigned char)s->sig[i];
      if (write((int)s->w, &b, 1) != 1) aadd(&slots[s->sig[i]].missed, 1);
      break;
    }
    return 0;
  }
  if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return errno;
  for (i = 0; i < s->n; i++)  /* the pipe is empty: none should be left */
    if (takemissed(s->sig[i])) {
      *sig = s->sig[i];
      break;
    }
  return 0;
}


int hp_sigclose (hp_signals *s) {
  sigset_t set;
  int i, err = 0;
  if (s->h == HP_NOHANDLE) return 0;
  hp_lock();
  /* blocked again first: one arriving now waits for the old disposition */
  sigemptyset(&set);
  for (i = 0; i < s->n; i++)
    if (s->unblocked[i]) sigaddset(&set, s->sig[i]);
  (void)pthread_sigmask(SIG_BLOCK, &set, NULL);
  giveback(s, s->n);
  if (close((int)s->w) != 0 && errno != EINTR) err = errno;
  if (close((int)s->h) != 0 && errno != EINTR && err == 0) err = errno;
  s->h = s->w = HP_NOHANDLE;
  hp_unlock();
  return err;
}

#endif
