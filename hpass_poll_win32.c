/*
** hpass_poll_win32.c - deadlines and readiness on Windows (hpass_sys.h).
**
** Windows has no one call that waits on pipes, sockets and processes
** alike, and anonymous pipes have no readiness at all.  Each handle is
** classified once per call (hpw_classify), then:
**   - a socket is asked with select(), a process or console with
**     WaitForSingleObject, a pipe with PeekNamedPipe (bytes waiting, or
**     the writer gone, make it readable; any other failure is an error);
**   - any other file object (a socket Winsock does not report as one) is
**     readable when a 0-byte overlapped read completes: the system waits
**     for it, nobody polls it.  Without overlapped I/O it cannot be waited
**     on with a deadline, which is an error, not readiness;
**   - a pipe, a disk file or other file object is always writable: a write
**     to a full pipe may block past its deadline (the manual says so);
**   - one socket, process or other file object alone is waited on by the
**     system, and so are several processes and other file objects; with a
**     pipe among them, or several sockets, it polls with back-off from
**     1 ms up to 10 ms, about a hundred wake-ups a second.
*/
#ifdef _WIN32

#include "hpass_win32.h"


/*
** The performance counter, in ms; a part of a millisecond counts when up.
** GetTickCount64 moves in steps of about 16 ms, which would end a wait
** that long before its deadline.
*/
static hp_time clockms (int up) {
  static LARGE_INTEGER freq;  /* fixed at boot; a race writes the same */
  LARGE_INTEGER c;
  if (freq.QuadPart == 0) QueryPerformanceFrequency(&freq);
  QueryPerformanceCounter(&c);
  return (hp_time)(c.QuadPart / freq.QuadPart) * 1000 +
         (hp_time)(((c.QuadPart % freq.QuadPart) * 1000 +
                    (up ? freq.QuadPart - 1 : 0)) / freq.QuadPart);
}

hp_time hp_now (void) { return clockms(0); }

hp_time hp_after (hp_time ms) {
  if (ms == HP_NEVER) return HP_NEVER;
  return ms == 0 ? clockms(0) : clockms(1) + ms;  /* 0: passed already */
}


int hp_err_timeout (void) { return ERROR_TIMEOUT; }


DWORD hpw_left (hp_time deadline) {
  hp_time ms;
  if (deadline == HP_NEVER) return INFINITE;
  ms = deadline - hp_now();
  if (ms <= 0) return 0;
  return ms >= (hp_time)INFINITE ? INFINITE - 1 : (DWORD)ms;
}


/* What hp_poll knows of one item, found once per call. */
typedef struct slot {
  HANDLE x;
  hpw_kind k;
  OVERLAPPED o;     /* HPW_OTHER: the 0-byte read that tells readiness */
  int pending;      /* that read is under way */
  char dummy;       /* its buffer */
} slot;


/*
** Which of events socket s is ready for, waiting up to ms (0: not at
** all); -1 with *err set when select fails.
*/
static int socketready (SOCKET s, int events, DWORD ms, int *err) {
  fd_set rs, ws, es;
  struct timeval tv;
  int ready = 0;
  tv.tv_sec = (long)(ms / 1000);
  tv.tv_usec = (long)(ms % 1000) * 1000;
  FD_ZERO(&rs); FD_ZERO(&ws); FD_ZERO(&es);
  FD_SET(s, &rs); FD_SET(s, &ws); FD_SET(s, &es);
  if (select(0, (events & HP_READABLE) ? &rs : NULL,
             (events & HP_WRITABLE) ? &ws : NULL, &es,
             ms == INFINITE ? NULL : &tv) == SOCKET_ERROR) {
    *err = hpw_lastwsaerr();
    return -1;
  }
  if (FD_ISSET(s, &es)) return events;  /* the call that follows reports it */
  if ((events & HP_READABLE) && FD_ISSET(s, &rs)) ready |= HP_READABLE;
  if ((events & HP_WRITABLE) && FD_ISSET(s, &ws)) ready |= HP_WRITABLE;
  return ready;
}


/*
** A pipe is readable with bytes waiting, or at its end (the read that
** follows returns it).  A peek that fails otherwise (a write end, a
** handle that is no pipe after all) is that error, never readiness.
*/
static int pipeready (HANDLE x, int events, int *err) {
  DWORD avail = 0;
  if (!(events & HP_READABLE)) return events;
  if (PeekNamedPipe(x, NULL, 0, NULL, &avail, NULL))
    return avail > 0 ? events : events & HP_WRITABLE;
  switch (GetLastError()) {
    case ERROR_BROKEN_PIPE: case ERROR_PIPE_NOT_CONNECTED: case ERROR_NO_DATA:
      return events;
    default:
      *err = hpw_lasterr();
      return -1;
  }
}


/*
** Another file object is readable once a 0-byte read completes, which
** takes nothing from it: on a socket that is when bytes (or the end)
** arrive.  The read is started on the first look and stays under way
** until it completes or hp_poll returns.
*/
static int otherready (slot *s, int events, int *err) {
  if (!(events & HP_READABLE)) return events;
  if (!s->k.overlapped) {
    *err = ERROR_NOT_SUPPORTED;  /* no way to wait for it with a deadline */
    return -1;
  }
  if (s->pending)
    return WaitForSingleObject(s->o.hEvent, 0) == WAIT_OBJECT_0 ? events
           : events & HP_WRITABLE;
  if (s->o.hEvent == NULL &&
      (s->o.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL) {
    *err = hpw_lasterr();
    return -1;
  }
  if (ReadFile(s->x, &s->dummy, 0, NULL, &s->o) ||
      GetLastError() != ERROR_IO_PENDING)
    return events;  /* done at once: data, the end, or an error to read */
  s->pending = 1;
  return events & HP_WRITABLE;
}


/* Which of events slot s is ready for now; -1 with *err set on an error. */
static int readynow (slot *s, int events, int *err) {
  switch (s->k.kind) {
    case HPW_SOCKET: return socketready((SOCKET)s->x, events, 0, err);
    case HPW_PIPE: return pipeready(s->x, events, err);
    case HPW_OTHER: return otherready(s, events, err);
    case HPW_CHAR:  /* a console: input waiting or not */
    case HPW_OBJECT:  /* a process, say */
      switch (WaitForSingleObject(s->x, 0)) {
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


/* One pass over the items: 0, or an error. */
static int pass (hp_pollitem *items, slot *s, size_t n, int *nready) {
  size_t i;
  *nready = 0;
  for (i = 0; i < n; i++) {
    int err = 0, r;
    items[i].revents = 0;
    if (items[i].h == HP_NOHANDLE) continue;
    if ((r = readynow(&s[i], items[i].events, &err)) < 0) return err;
    items[i].revents = r;
    if (r != 0) (*nready)++;
  }
  return 0;
}


/*
** Wait up to ms for something to change, by the system where it can: one
** socket in select, processes and pending 0-byte reads (up to
** MAXIMUM_WAIT_OBJECTS) in WaitForMultipleObjects.  Else sleep for the
** back-off *pause.  0, or an error.
*/
static int waitsome (hp_pollitem *items, slot *s, size_t n, DWORD ms,
                     hp_time *pause) {
  HANDLE w[MAXIMUM_WAIT_OBJECTS];
  DWORD nw = 0;
  size_t i, live = 0, sockets = 0, last = 0;
  int other = 0;  /* a pipe, or a readiness that nothing signals */
  for (i = 0; i < n; i++) {
    if (items[i].h == HP_NOHANDLE) continue;
    live++;
    last = i;
    if (s[i].k.kind == HPW_SOCKET) sockets++;
    else if (nw == MAXIMUM_WAIT_OBJECTS) other = 1;
    else if (s[i].k.kind == HPW_OTHER && s[i].pending)
      w[nw++] = s[i].o.hEvent;
    else if ((s[i].k.kind == HPW_OBJECT || s[i].k.kind == HPW_CHAR) &&
             (items[i].events & HP_READABLE))
      w[nw++] = s[i].x;
    else other = 1;
  }
  if (live == 1 && sockets == 1) {
    int err = 0;
    return socketready((SOCKET)s[last].x, items[last].events, ms, &err) < 0
           ? err : 0;
  }
  if (!other && sockets == 0 && nw > 0) {
    if (WaitForMultipleObjects(nw, w, FALSE, ms) == WAIT_FAILED)
      return hpw_lasterr();
    return 0;
  }
  {
    hp_time p = hp_backoff(pause, HPW_PAUSE);
    Sleep(ms < (DWORD)p ? ms : (DWORD)p);
  }
  return 0;
}


static int pollloop (hp_pollitem *items, slot *s, size_t n, hp_time deadline,
                     int *nready) {
  hp_time pause = 1;
  for (;;) {
    DWORD ms;
    int err = pass(items, s, n, nready);
    if (err != 0 || *nready > 0) return err;
    if ((ms = hpw_left(deadline)) == 0) return 0;
    if ((err = waitsome(items, s, n, ms, &pause)) != 0) return err;
  }
}


/* A 0-byte read still under way is cancelled, and waited for. */
static void settle (slot *s) {
  DWORD k;
  if (s->pending) {
    CancelIoEx(s->x, &s->o);
    GetOverlappedResult(s->x, &s->o, &k, TRUE);
  }
  if (s->o.hEvent != NULL) CloseHandle(s->o.hEvent);
}


int hp_poll (hp_pollitem *items, size_t n, hp_time deadline, int *nready,
             hp_alloc alloc, void *ud) {
  slot one, *s = &one;
  size_t i;
  int err = 0;
  *nready = 0;
  if (n > 1 && (s = (slot *)alloc(ud, n * sizeof(slot))) == NULL)
    return hp_err_nomem();
  for (i = 0; i < n; i++) {
    memset(&s[i], 0, sizeof(slot));
    if (items[i].h == HP_NOHANDLE) continue;
    if ((err = hpw_tohandle(items[i].h, &s[i].x)) != 0) {
      n = i;  /* nothing started on the ones before */
      break;
    }
    hpw_classify(s[i].x, &s[i].k);
  }
  if (err == 0 && n == 0) {  /* nothing to wait for: sleep until then */
    DWORD ms;
    while ((ms = hpw_left(deadline)) > 0) Sleep(ms);
  }
  else if (err == 0)
    err = pollloop(items, s, n, deadline, nready);
  for (i = 0; i < n; i++) settle(&s[i]);
  return err;
}


int hp_ready (hp_os h, int events, hp_time deadline) {
  hp_pollitem it;
  int n, err;
  it.h = h;
  it.events = events;
  it.revents = 0;
  /* one item takes no memory */
  if ((err = hp_poll(&it, 1, deadline, &n, NULL, NULL)) != 0) return err;
  return n > 0 ? 0 : ERROR_TIMEOUT;
}


/*
** A socket that selects writable takes what its send buffer holds
** (SO_SNDBUF) without blocking: Windows buffers a whole send while the
** buffer has room, and wine's sockets, which are Linux's, select writable
** only while at least that much is free (checked under wine against a
** reader that stops, with the default buffer and small ones set; sends of
** 4 times a set size can block there).  Anything else HP_ATOMIC.
*/
#define ROOM_MAX (256 * 1024)

size_t hp_room (hp_os h) {
  HANDLE x;
  hpw_kind k;
  int size = 0, len = (int)sizeof(size);
  if (hpw_tohandle(h, &x) != 0) return HP_ATOMIC;
  hpw_classify(x, &k);
  if (k.kind != HPW_SOCKET ||
      getsockopt((SOCKET)x, SOL_SOCKET, SO_SNDBUF, (char *)&size, &len) != 0 ||
      size < HP_ATOMIC)
    return HP_ATOMIC;
  return size > ROOM_MAX ? ROOM_MAX : (size_t)size;
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


/*
** The way a pipe end goes is in the access it was opened with
** (FileAccessInformation): FILE_READ_DATA, FILE_WRITE_DATA.  0 when the
** system does not say.
*/
int hp_access (hp_os h) {
  ULONG access = 0;
  HANDLE x;
  int r = 0;
  if (hpw_tohandle(h, &x) != 0 ||
      hpw_queryfile(x, &access, sizeof(access), HPW_ACCESS_INFO) != 0)
    return 0;
  if (access & FILE_READ_DATA) r |= HP_READABLE;
  if (access & FILE_WRITE_DATA) r |= HP_WRITABLE;
  return r;
}

#endif
