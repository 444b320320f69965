/*
** hpass_poll_win32.c - deadlines and readiness on Windows (hpass_sys.h).
**
** Windows has no one call that waits on pipes, sockets and processes
** alike, and anonymous pipes have no readiness at all.  So:
**   - a socket is asked with select(), a process or console with
**     WaitForSingleObject, a pipe with PeekNamedPipe (bytes waiting, or
**     the writer gone, make it readable);
**   - a pipe or a disk file is always writable: a write to a full pipe may
**     block past its deadline (the README says so);
**   - waiting on several, or on a pipe, polls with back-off from 1 ms up
**     to 10 ms, so a long wait costs about a hundred wake-ups a second.
*/
#ifdef _WIN32

#include "hpass_win32.h"


hp_time hp_now (void) {
  return (hp_time)GetTickCount64();
}


int hp_err_timeout (void) { return ERROR_TIMEOUT; }


/* Milliseconds left before the deadline, INFINITE for none. */
static DWORD left (hp_time deadline) {
  hp_time ms;
  if (deadline == HP_NEVER) return INFINITE;
  ms = deadline - hp_now();
  if (ms <= 0) return 0;
  return ms >= (hp_time)INFINITE ? INFINITE - 1 : (DWORD)ms;
}


/* Which of events socket s is ready for now (select with no wait). */
static int socketready (SOCKET s, int events) {
  fd_set rs, ws, es;
  struct timeval zero = {0, 0};
  int ready = 0;
  FD_ZERO(&rs); FD_ZERO(&ws); FD_ZERO(&es);
  FD_SET(s, &rs); FD_SET(s, &ws); FD_SET(s, &es);
  if (select(0, (events & HP_READABLE) ? &rs : NULL,
             (events & HP_WRITABLE) ? &ws : NULL, &es, &zero) == SOCKET_ERROR)
    return events;  /* the call that follows reports the error */
  if (FD_ISSET(s, &es)) return events;
  if ((events & HP_READABLE) && FD_ISSET(s, &rs)) ready |= HP_READABLE;
  if ((events & HP_WRITABLE) && FD_ISSET(s, &ws)) ready |= HP_WRITABLE;
  return ready;
}


/*
** Which of events x is ready for now, without waiting; -1 with *err set
** when x is no handle.
*/
static int readynow (HANDLE x, int events, int *err) {
  DWORD avail = 0;
  if (hpw_is_socket(x)) return socketready((SOCKET)x, events);
  switch (GetFileType(x)) {
    case FILE_TYPE_PIPE:
      /* bytes waiting, or an error (the writer has gone): readable */
      if (!PeekNamedPipe(x, NULL, 0, NULL, &avail, NULL) || avail > 0)
        return events;
      return events & HP_WRITABLE;
    case FILE_TYPE_CHAR:  /* a console: input waiting or not */
    case FILE_TYPE_UNKNOWN:  /* no file: a process, or no handle at all */
      switch (WaitForSingleObject(x, 0)) {
        case WAIT_OBJECT_0: return events;
        case WAIT_TIMEOUT: return events & HP_WRITABLE;
        default:
          *err = hpw_lasterr();
          return -1;
      }
    default:
      return events;  /* disk files never block for long */
  }
}


int hp_poll (hp_pollitem *items, size_t n, hp_time deadline, int *nready,
             hp_alloc alloc, void *ud) {
  DWORD pause = 1;
  (void)alloc;
  (void)ud;
  for (;;) {
    size_t i;
    DWORD ms;
    *nready = 0;
    for (i = 0; i < n; i++) {
      HANDLE x;
      int err, r;
      items[i].revents = 0;
      if (items[i].h == HP_NOHANDLE) continue;
      if ((err = hpw_tohandle(items[i].h, &x)) != 0) return err;
      r = readynow(x, items[i].events, &err);
      if (r < 0) return err;
      items[i].revents = r;
      if (r != 0) (*nready)++;
    }
    if (*nready > 0) return 0;
    ms = left(deadline);
    if (ms == 0) return 0;
    /* one waitable object alone: the OS waits, no polling */
    if (n == 1 && items[0].h != HP_NOHANDLE &&
        GetFileType((HANDLE)(uintptr_t)items[0].h) == FILE_TYPE_UNKNOWN &&
        (items[0].events & HP_READABLE)) {
      DWORD r = WaitForSingleObject((HANDLE)(uintptr_t)items[0].h, ms);
      if (r == WAIT_FAILED) return (int)GetLastError();
      continue;
    }
    Sleep(ms < pause ? ms : pause);
    if (pause < 10) pause *= 2;
  }
}


int hp_ready (hp_os h, int events, hp_time deadline) {
  hp_pollitem it;
  int n, err;
  it.h = h;
  it.events = events;
  it.revents = 0;
  /* this platform's hp_poll takes no memory */
  if ((err = hp_poll(&it, 1, deadline, &n, NULL, NULL)) != 0) return err;
  return n > 0 ? 0 : ERROR_TIMEOUT;
}


/* A copy of the process handle: it is signalled when the child ends. */
int hp_procfd (const hp_proc *p, hp_os *fd) {
  HANDLE d;
  if (p->sys == NULL) return ERROR_INVALID_HANDLE;
  if (!DuplicateHandle(GetCurrentProcess(), (HANDLE)p->sys,
                       GetCurrentProcess(), &d, SYNCHRONIZE, FALSE, 0))
    return hpw_lasterr();
  *fd = hpw_fromhandle(d);
  return 0;
}


/* Windows does not say which way an anonymous pipe end goes. */
int hp_access (hp_os h) {
  (void)h;
  return 0;
}

#endif
