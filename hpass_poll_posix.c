/*
** hpass_poll_posix.c - deadlines and readiness on POSIX (hpass_sys.h).
**
** Everything waits in poll(2), which has no FD_SETSIZE limit, on the
** monotonic clock: an interrupted poll is restarted with the time that
** is left, so a signal neither shortens nor lengthens a deadline.
*/
#ifndef _WIN32

#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif

#include "hpass_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include "hpass_sys.h"


/* The monotonic clock in ms; a part of a millisecond counts when up. */
static hp_time clockms (int up) {
  struct timespec ts;
  (void)clock_gettime(CLOCK_MONOTONIC, &ts);
  return (hp_time)ts.tv_sec * 1000 +
         (ts.tv_nsec + (up ? 999999 : 0)) / 1000000;
}

hp_time hp_now (void) { return clockms(0); }

hp_time hp_after (hp_time ms) {
  if (ms == HP_NEVER) return HP_NEVER;
  return ms == 0 ? clockms(0) : clockms(1) + ms;  /* 0: passed already */
}


int hp_err_timeout (void) { return ETIMEDOUT; }


/* Milliseconds poll may wait before the deadline: -1 for none. */
static int remaining (hp_time deadline) {
  hp_time left;
  if (deadline == HP_NEVER) return -1;
  left = deadline - hp_now();
  if (left <= 0) return 0;
  return left > INT_MAX ? INT_MAX : (int)left;
}


/*
** poll until something is ready or the deadline passes; restarts after
** a signal with the time left.  Returns 0 (r gets poll's count) or errno.
*/
static int pollfor (struct pollfd *p, nfds_t n, hp_time deadline, int *r) {
  for (;;) {
    int ms = remaining(deadline);
    *r = poll(p, n, ms);
    if (*r >= 0) {
      /* poll may wake a little early on a coarse clock: wait the rest */
      if (*r == 0 && deadline != HP_NEVER && hp_now() < deadline) continue;
      return 0;
    }
    if (errno != EINTR) return errno;
  }
}


int hp_ready (hp_os h, int events, hp_time deadline) {
  struct pollfd p;
  int r, err;
  if (HPP_NOTFD(h)) return EBADF;
  p.fd = (int)h;
  p.events = (short)(((events & HP_READABLE) ? POLLIN : 0) |
                     ((events & HP_WRITABLE) ? POLLOUT : 0));
  p.revents = 0;
  if ((err = pollfor(&p, 1, deadline, &r)) != 0) return err;
  if (r == 0) return ETIMEDOUT;
  if (p.revents & POLLNVAL) return EBADF;
  return 0;  /* ready, or an error or hang-up the next call reports */
}


/* PIPE_BUF: what a pipe or socket that polls writable takes at once. */
size_t hp_room (hp_os h) {
  (void)h;
  return HP_ATOMIC;
}


int hp_poll (hp_pollitem *items, size_t n, hp_time deadline, int *nready,
             hp_alloc alloc, void *ud) {
  struct pollfd *p;
  size_t i;
  int r, err;
  *nready = 0;
  if (n == 0) return pollfor(NULL, 0, deadline, &r);  /* a sleep */
  p = (struct pollfd *)alloc(ud, n * sizeof(struct pollfd));
  if (p == NULL) return ENOMEM;
  for (i = 0; i < n; i++) {
    hp_os h = items[i].h;
    items[i].revents = 0;
    if (h != HP_NOHANDLE && HPP_NOTFD(h)) return EBADF;
    p[i].fd = h == HP_NOHANDLE ? -1 : (int)h;  /* poll skips -1 */
    p[i].events = (short)(((items[i].events & HP_READABLE) ? POLLIN : 0) |
                          ((items[i].events & HP_WRITABLE) ? POLLOUT : 0));
    p[i].revents = 0;
  }
  if ((err = pollfor(p, (nfds_t)n, deadline, &r)) != 0) return err;
  for (i = 0; i < n; i++) {
    short re = p[i].revents;
    if (re & POLLNVAL) return EBADF;
    /* an error or hang-up makes a handle ready for what it waits for:
       the call that follows reports it */
    if (re & (POLLERR | POLLHUP)) re |= POLLIN | POLLOUT;
    if ((re & POLLIN) && (items[i].events & HP_READABLE))
      items[i].revents |= HP_READABLE;
    if ((re & POLLOUT) && (items[i].events & HP_WRITABLE))
      items[i].revents |= HP_WRITABLE;
    if (items[i].revents != 0) (*nready)++;
  }
  return 0;
}


/*
** Linux 5.3 and later give a process descriptor that polls readable once
** the child has ended.  It is taken while the child cannot have been
** collected (it is ours and not waited for), so it names this child and
** no later owner of the pid.  Elsewhere, and on older kernels, ENOSYS:
** callers fall back to polling.
*/
#if defined(__linux__) && !defined(SYS_pidfd_open)
#define SYS_pidfd_open 434   /* the same on every Linux ABI */
#endif
#if defined(__linux__) && !defined(P_PIDFD)
#define P_PIDFD 3
#endif

int hp_procfd (const hp_proc *p, hp_os *fd) {
#if defined(__linux__)
  siginfo_t si;
  long r = syscall(SYS_pidfd_open, (int)p->pid, 0);  /* close-on-exec */
  if (r < 0) return errno;
  /*
  ** The pid is ours while our child is not collected, but someone else
  ** may have collected it (SIGCHLD ignored): then the pid may name
  ** another process by now.  Only our own child can be waited for
  ** through its pidfd (Linux 5.4; on 5.3 the small race stays).
  */
  si.si_pid = 0;
  if (waitid((idtype_t)P_PIDFD, (id_t)r, &si, WEXITED | WNOHANG | WNOWAIT) != 0
      && errno == ECHILD) {
    close((int)r);
    return ECHILD;
  }
  *fd = (hp_os)r;
  return 0;
#else
  (void)p;
  (void)fd;
  return ENOSYS;
#endif
}


int hp_access (hp_os h) {
  int fl;
  if (HPP_NOTFD(h) || (fl = fcntl((int)h, F_GETFL)) == -1) return 0;
  switch (fl & O_ACCMODE) {
    case O_RDONLY: return HP_READABLE;
    case O_WRONLY: return HP_WRITABLE;
    default: return HP_READABLE | HP_WRITABLE;
  }
}

#endif
