/*
** hpass_io_win32.c - the Windows implementation of hpass_sys.h.
**
** Handles are HANDLE (or SOCKET) values carried in an hp_os.  Error codes
** are GetLastError() or WSAGetLastError() values, which share one number
** space, so hp_strerror can hand either to FormatMessageW.
**
** The whole file is empty on other platforms, so a build that lists every
** source file still works there.
*/
#ifdef _WIN32

#include "hpass_win32.h"

#ifndef WSA_FLAG_NO_HANDLE_INHERIT
#define WSA_FLAG_NO_HANDLE_INHERIT 0x80
#endif

/* Largest size handed to one ReadFile/WriteFile/recv/send call. */
#define MAXIO 0x40000000u


/*
** {======================================================
** Errors
** =======================================================
*/


/*
** One code for "the reader has gone": WriteFile on a pipe whose read end
** is closed fails with ERROR_NO_DATA or ERROR_BROKEN_PIPE, and send on a
** socket whose peer has gone with one of several WSA codes; all of them
** come back as this one so the binding can test for it.
*/
int hp_err_pipe (void) { return ERROR_BROKEN_PIPE; }

/*
** "There are no child processes to wait for": the closest Windows code to
** ESRCH/ECHILD, and distinct from hp_err_inval() so the binding can tell
** "already collected" from a bad argument.
*/
int hp_err_srch (void) { return ERROR_WAIT_NO_CHILDREN; }

int hp_err_inval (void) { return ERROR_INVALID_PARAMETER; }
int hp_err_nomem (void) { return ERROR_NOT_ENOUGH_MEMORY; }


/* The last error, never 0: a failure must not look like success. */
int hpw_lasterr (void) {
  DWORD e = GetLastError();
  return e != 0 ? (int)e : ERROR_GEN_FAILURE;
}

int hpw_lastwsaerr (void) {
  int e = WSAGetLastError();
  return e != 0 ? e : ERROR_GEN_FAILURE;
}


/* The refusals of our own (HPW_ERR_*, hpass_win32.h), in words. */
static const struct { int code; const char *msg; } ownerrs[] = {
  {HPW_ERR_BATCH, "batch files are not run (cmd.exe would reparse their "
              "arguments)"},
  {HPW_ERR_ENVCASE, "environment sets one name twice (in different case)"},
  {HPW_ERR_CRT, "cannot find the C runtime of Lua's io library"},
  {0, NULL}
};


/*
** FormatMessageW in the user's language, as UTF-8.  System messages end
** in ".\r\n", which reads badly inside "what: message" strings, so trailing
** white space and full stops go.  A code the system does not know gets a
** plain "error N" rather than some unrelated CRT text.
*/
const char *hp_strerror (int code, char *buf, size_t size) {
  wchar_t w[1024];
  DWORD n;
  int len = 0, i;
  if (size == 0)
    return buf;
  for (i = 0; ownerrs[i].msg != NULL; i++) {
    if (ownerrs[i].code == code) {
      snprintf(buf, size, "%s", ownerrs[i].msg);
      return buf;
    }
  }
  n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM |
                     FORMAT_MESSAGE_IGNORE_INSERTS |
                     FORMAT_MESSAGE_MAX_WIDTH_MASK, NULL, (DWORD)code, 0,
                     w, (DWORD)(sizeof(w) / sizeof(w[0])), NULL);
  while (n > 0 && (w[n - 1] == L'\r' || w[n - 1] == L'\n' ||
                   w[n - 1] == L' ' || w[n - 1] == L'.'))
    n--;
  /* Shorten until it fits, never splitting a surrogate pair. */
  while (n > 0) {
    len = WideCharToMultiByte(CP_UTF8, 0, w, (int)n, NULL, 0, NULL, NULL);
    if (len > 0 && (size_t)len < size)
      break;
    n--;
    if (n > 0 && w[n - 1] >= 0xD800 && w[n - 1] <= 0xDBFF)
      n--;
  }
  if (n == 0 || len <= 0) {
    snprintf(buf, size, "error %d", code);
    return buf;
  }
  WideCharToMultiByte(CP_UTF8, 0, w, (int)n, buf, (int)size, NULL, NULL);
  buf[len] = '\0';
  return buf;
}

/* }====================================================== */


/*
** {======================================================
** Handles
** =======================================================
*/

/*
** The HANDLE in an hp_os.  Values <= 0 are rejected here: -1 and -2 are
** the pseudo-handles of the current process and thread, which the Windows
** calls would happily accept and act on.
*/
int hpw_tohandle (hp_os h, HANDLE *out) {
  if (h <= 0 || (unsigned long long)h > (unsigned long long)UINTPTR_MAX)
    return ERROR_INVALID_HANDLE;
  *out = (HANDLE)(uintptr_t)h;
  return 0;
}

hp_os hpw_fromhandle (HANDLE x) {
  return (hp_os)(intptr_t)x;
}


/*
** Whether a handle was opened for overlapped I/O (libuv's pipes are, and
** so are named pipes of many servers, and sockets): ReadFile and WriteFile
** need an OVERLAPPED for such a handle, and the handle's own mode is only
** told by NtQueryInformationFile.  Found once, in hp_init.
*/
typedef struct { union { LONG status; PVOID p; } u; ULONG_PTR info; } iostatus;
typedef LONG (WINAPI *queryfile_fn) (HANDLE, iostatus *, PVOID, ULONG, int);
#define SYNC_IO_FLAGS (0x10 | 0x20)       /* FILE_SYNCHRONOUS_IO_(NON)ALERT */

static queryfile_fn queryfile;

int hpw_queryfile (HANDLE x, void *buf, unsigned long size, int cls) {
  iostatus st;
  return queryfile == NULL || queryfile(x, &st, buf, size, cls) < 0;
}

static int is_overlapped (HANDLE x) {
  ULONG mode = SYNC_IO_FLAGS;
  if (hpw_queryfile(x, &mode, sizeof(mode), HPW_MODE_INFO) != 0)
    return 0;  /* not known: take it as synchronous, as before */
  return (mode & SYNC_IO_FLAGS) == 0;
}


/*
** What a handle is.  GetFileType tells disk files and character devices
** apart, and fails on objects that are no file at all.  Sockets report
** FILE_TYPE_PIPE (or FILE_TYPE_UNKNOWN with some providers): getsockopt
** tells a socket Winsock knows, and only a handle that answers as a pipe
** (GetNamedPipeHandleState; a write end opened without
** FILE_READ_ATTRIBUTES is refused the question, and is a pipe still) is
** taken for one.  A socket whose getsockopt fails (wine's, inherited) may
** still be one Winsock reads and selects: ioctlsocket tells.  Whatever
** else is a file object of some other kind, and is read and written
** plainly, never peeked at as a pipe.
*/
void hpw_classify (HANDLE x, hpw_kind *k) {
  int type, len = (int)sizeof(type);
  DWORD t, state;
  u_long avail;
  k->overlapped = k->nowait = 0;
  SetLastError(NO_ERROR);
  t = GetFileType(x);
  if (t == FILE_TYPE_DISK || t == FILE_TYPE_CHAR) {
    k->kind = t == FILE_TYPE_DISK ? HPW_FILE : HPW_CHAR;
    k->overlapped = t == FILE_TYPE_DISK && is_overlapped(x);
    return;
  }
  if (t == FILE_TYPE_UNKNOWN && GetLastError() != NO_ERROR) {
    k->kind = HPW_OBJECT;
    return;
  }
  if (getsockopt((SOCKET)x, SOL_SOCKET, SO_TYPE, (char *)&type, &len) == 0) {
    k->kind = HPW_SOCKET;
    return;
  }
  k->overlapped = is_overlapped(x);
  if (GetNamedPipeHandleState(x, &state, NULL, NULL, NULL, NULL, 0)) {
    k->kind = HPW_PIPE;
    k->nowait = (state & PIPE_NOWAIT) != 0;
  }
  else if (t == FILE_TYPE_PIPE && GetLastError() == ERROR_ACCESS_DENIED)
    k->kind = HPW_PIPE;
  else if (ioctlsocket((SOCKET)x, FIONREAD, &avail) == 0)
    k->kind = HPW_SOCKET;
  else
    k->kind = HPW_OTHER;
}

int hpw_is_socket (HANDLE x) {
  hpw_kind k;
  hpw_classify(x, &k);
  return k.kind == HPW_SOCKET;
}


static INIT_ONCE init_once = INIT_ONCE_STATIC_INIT;
static int init_error;

static BOOL CALLBACK init_winsock (PINIT_ONCE once, PVOID param, PVOID *ctx) {
  WSADATA wd;
  HMODULE nt = GetModuleHandleW(L"ntdll.dll");
  (void)once; (void)param; (void)ctx;
  init_error = WSAStartup(MAKEWORD(2, 2), &wd);
  /* through void (*)(void), the one cast GCC lets FARPROC take quietly */
  if (nt != NULL)
    queryfile = (queryfile_fn)(void (*)(void))
                GetProcAddress(nt, "NtQueryInformationFile");
  return TRUE;
}

/*
** Winsock is started once per process, however many Lua states load the
** module, and never cleaned up: a WSACleanup on unload could pull sockets
** from under another state that still uses them.
*/
int hp_init (void) {
  if (!InitOnceExecuteOnce(&init_once, init_winsock, NULL, NULL))
    return hpw_lasterr();
  return init_error;
}


/*
** The pipe holds 64 KiB, as Linux's do: the default of a page makes a
** writer and its reader take turns every 4 KiB (capture's input crawled).
*/
#define PIPESIZE 65536

int hp_pipe (hp_os p[2]) {
  SECURITY_ATTRIBUTES sa;
  HANDLE r, w;
  sa.nLength = sizeof(sa);
  sa.lpSecurityDescriptor = NULL;
  sa.bInheritHandle = FALSE;  /* only hp_spawn passes handles on */
  if (!CreatePipe(&r, &w, &sa, PIPESIZE))
    return hpw_lasterr();
  p[0] = hpw_fromhandle(r);
  p[1] = hpw_fromhandle(w);
  return 0;
}


static SOCKET new_socket (void) {
  return WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                    WSA_FLAG_NO_HANDLE_INHERIT);
}

static int same_addr (const struct sockaddr_in *a,
                      const struct sockaddr_in *b) {
  return a->sin_family == b->sin_family && a->sin_port == b->sin_port &&
         a->sin_addr.s_addr == b->sin_addr.s_addr;
}

/* A listener on the loopback address, at a port of its own (in *addr). */
static int listener (SOCKET *l, struct sockaddr_in *addr) {
  int len = (int)sizeof(*addr), one = 1;
  if ((*l = new_socket()) == INVALID_SOCKET)
    return hpw_lastwsaerr();
  memset(addr, 0, sizeof(*addr));
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr->sin_port = 0;
  /* nobody else may bind the port meanwhile, not even with SO_REUSEADDR */
  if (setsockopt(*l, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&one,
                 (int)sizeof(one)) == SOCKET_ERROR ||
      bind(*l, (struct sockaddr *)addr, len) == SOCKET_ERROR ||
      getsockname(*l, (struct sockaddr *)addr, &len) == SOCKET_ERROR ||
      listen(*l, 1) == SOCKET_ERROR) {
    int err = hpw_lastwsaerr();
    closesocket(*l);
    return err;
  }
  return 0;
}

/*
** Accept the connection whose peer is mine (our own client socket):
** any local process may connect first, and an intruder is dropped.
*/
static int acceptown (SOCKET l, const struct sockaddr_in *mine, SOCKET *s) {
  struct sockaddr_in peer;
  int tries, len;
  for (tries = 0; ; tries++) {
    len = (int)sizeof(peer);
    if ((*s = accept(l, (struct sockaddr *)&peer, &len)) == INVALID_SOCKET)
      return hpw_lastwsaerr();
    /*
    ** An accepted socket does not take WSA_FLAG_NO_HANDLE_INHERIT from the
    ** listener on every Windows version, so clear the flag by hand.
    */
    if (!SetHandleInformation((HANDLE)*s, HANDLE_FLAG_INHERIT, 0)) {
      int err = hpw_lasterr();
      closesocket(*s);
      *s = INVALID_SOCKET;
      return err;
    }
    if (same_addr(&peer, mine))
      return 0;
    closesocket(*s);
    *s = INVALID_SOCKET;
    if (tries == 8)
      return WSAECONNREFUSED;
  }
}

/*
** Windows has no socketpair: connect two TCP sockets through a listener on
** the loopback address that lives only for this call.  Any local process
** may connect to that listener first, so an accepted connection counts
** only when its peer is our own client socket; an intruder is dropped and
** we accept again.
*/
int hp_socketpair (hp_os p[2]) {
  SOCKET l, c, s = INVALID_SOCKET;
  struct sockaddr_in addr, mine;
  int len = (int)sizeof(mine), err, one = 1;
  if ((err = hp_init()) != 0 || (err = listener(&l, &addr)) != 0)
    return err;
  if ((c = new_socket()) == INVALID_SOCKET ||
      connect(c, (struct sockaddr *)&addr, (int)sizeof(addr)) == SOCKET_ERROR ||
      getsockname(c, (struct sockaddr *)&mine, &len) == SOCKET_ERROR)
    err = hpw_lastwsaerr();
  else
    err = acceptown(l, &mine, &s);
  closesocket(l);
  /*
  ** A local pair carries small messages (an int, a handle message):
  ** without TCP_NODELAY, Nagle's algorithm holds a second small write
  ** until the first is acknowledged, up to the delayed-ack timer.
  */
  if (err == 0 &&
      (setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one,
                  (int)sizeof(one)) == SOCKET_ERROR ||
       setsockopt(c, IPPROTO_TCP, TCP_NODELAY, (const char *)&one,
                  (int)sizeof(one)) == SOCKET_ERROR))
    err = hpw_lastwsaerr();
  if (err != 0) {
    if (s != INVALID_SOCKET) closesocket(s);
    if (c != INVALID_SOCKET) closesocket(c);
    return err;
  }
  p[0] = hpw_fromhandle((HANDLE)s);
  p[1] = hpw_fromhandle((HANDLE)c);
  return 0;
}


int hp_opennull (hp_os *h) {
  HANDLE x = CreateFileW(L"NUL", GENERIC_READ | GENERIC_WRITE,
                         FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                         OPEN_EXISTING, 0, NULL);  /* NULL: not inherited */
  if (x == INVALID_HANDLE_VALUE) return hpw_lasterr();
  *h = hpw_fromhandle(x);
  return 0;
}


int hp_stdio (int i, hp_os *h) {
  static const DWORD ids[3] = {STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
                               STD_ERROR_HANDLE};
  HANDLE x = GetStdHandle(ids[i]);
  if (x == INVALID_HANDLE_VALUE) return hpw_lasterr();
  if (x == NULL) return ERROR_INVALID_HANDLE;  /* none (no console) */
  *h = hpw_fromhandle(x);
  return 0;
}


/*
** The pipe ends hp_setnonblock put in PIPE_NOWAIT mode: a write to one of
** them that finds it full returns having written nothing, where a
** PIPE_NOWAIT pipe of someone else's is waited on (see hp_write).  A
** handle leaves the list when hp_close closes it.
*/
static SRWLOCK nb_lock = SRWLOCK_INIT;
static HANDLE *nb_list;
static size_t nb_count, nb_cap;

static int nb_find (HANDLE x) {
  size_t i;
  for (i = 0; i < nb_count; i++)
    if (nb_list[i] == x) return (int)i;
  return -1;
}

static int nb_add (HANDLE x) {
  int err = 0;
  AcquireSRWLockExclusive(&nb_lock);
  if (nb_find(x) < 0 && nb_count == nb_cap) {
    size_t cap = nb_cap == 0 ? 8 : 2 * nb_cap;
    HANDLE *l = (HANDLE *)(nb_list == NULL
        ? HeapAlloc(GetProcessHeap(), 0, cap * sizeof(HANDLE))
        : HeapReAlloc(GetProcessHeap(), 0, nb_list, cap * sizeof(HANDLE)));
    if (l == NULL) err = ERROR_NOT_ENOUGH_MEMORY;
    else { nb_list = l; nb_cap = cap; }
  }
  if (err == 0 && nb_find(x) < 0) nb_list[nb_count++] = x;
  ReleaseSRWLockExclusive(&nb_lock);
  return err;
}

static int nb_has (HANDLE x) {
  int i;
  AcquireSRWLockShared(&nb_lock);
  i = nb_find(x);
  ReleaseSRWLockShared(&nb_lock);
  return i >= 0;
}

static void nb_drop (HANDLE x) {
  int i;
  AcquireSRWLockExclusive(&nb_lock);
  if ((i = nb_find(x)) >= 0) nb_list[i] = nb_list[--nb_count];
  ReleaseSRWLockExclusive(&nb_lock);
}

/* PIPE_NOWAIT also works on anonymous pipes, whose ends are pipe handles. */
int hp_setnonblock (hp_os h) {
  HANDLE x;
  DWORD mode = PIPE_READMODE_BYTE | PIPE_NOWAIT;
  int err = hpw_tohandle(h, &x);
  if (err != 0 || (err = nb_add(x)) != 0) return err;
  if (SetNamedPipeHandleState(x, &mode, NULL, NULL)) return 0;
  err = hpw_lasterr();
  nb_drop(x);
  return err;
}


int hp_check (hp_os h) {
  HANDLE x;
  DWORD flags;
  int err = hpw_tohandle(h, &x);
  if (err != 0)
    return err;
  return GetHandleInformation(x, &flags) ? 0 : hpw_lasterr();
}


int hp_noinherit (hp_os h) {
  HANDLE x;
  int err = hpw_tohandle(h, &x);
  if (err != 0)
    return err;
  return SetHandleInformation(x, HANDLE_FLAG_INHERIT, 0) ? 0 : hpw_lasterr();
}


/*
** Layers above may keep state per handle (handle passing keeps the cut
** messages of a channel): they ask to hear of each close here, so that
** this file never calls up into them.  One hook is enough; it is set
** once, under the lock, and read under it.
*/
static SRWLOCK hook_lock = SRWLOCK_INIT;
static hpw_closehook close_hook;

void hpw_on_close (hpw_closehook f) {
  AcquireSRWLockExclusive(&hook_lock);
  close_hook = f;
  ReleaseSRWLockExclusive(&hook_lock);
}

static void tell_close (HANDLE x) {
  hpw_closehook f;
  AcquireSRWLockShared(&hook_lock);
  f = close_hook;
  ReleaseSRWLockShared(&hook_lock);
  if (f != NULL) f(x);
}


/*
** Sockets must go through closesocket so Winsock forgets them too; a
** handle of another kind may be a socket still in its books, and what
** Winsock does not know (WSAENOTSOCK) is closed as a handle.  What
** hpass remembers of the handle goes first: once closed, its value may
** name something else.
*/
int hp_close (hp_os h) {
  HANDLE x;
  hpw_kind k;
  int err = hpw_tohandle(h, &x);
  if (err != 0)
    return err;
  nb_drop(x);
  tell_close(x);
  hpw_classify(x, &k);
  if (k.kind == HPW_SOCKET || k.kind == HPW_OTHER) {
    if (closesocket((SOCKET)x) == 0)
      return 0;
    if (WSAGetLastError() != WSAENOTSOCK)
      return hpw_lastwsaerr();
  }
  return CloseHandle(x) ? 0 : hpw_lasterr();
}


/*
** A socket of our own for the one in info (which WSADuplicateSocket made
** for this process), non-inheritable unless asked otherwise.  The flag
** alone is not trusted: wine ignores the flags for such sockets.
*/
int hpw_take_socket (WSAPROTOCOL_INFOW *info, int inherit, HANDLE *out) {
  SOCKET s = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO,
                        FROM_PROTOCOL_INFO, info, 0,
                        WSA_FLAG_OVERLAPPED |
                        (inherit ? 0 : WSA_FLAG_NO_HANDLE_INHERIT));
  if (s == INVALID_SOCKET)
    return hpw_lastwsaerr();
  if (!SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT,
                            inherit ? HANDLE_FLAG_INHERIT : 0)) {
    int err = hpw_lasterr();
    closesocket(s);
    return err;
  }
  *out = (HANDLE)s;
  return 0;
}

/*
** A copy of x in this process, by Winsock for a socket; a socket that
** Winsock cannot copy (WSAENOTSOCK: wine's inherited sockets) is copied
** as a handle, as anything else.
*/
int hpw_dup_local (HANDLE x, int inherit, HANDLE *out) {
  if (hpw_is_socket(x)) {
    WSAPROTOCOL_INFOW info;
    if (WSADuplicateSocketW((SOCKET)x, GetCurrentProcessId(), &info) == 0)
      return hpw_take_socket(&info, inherit, out);
    if (WSAGetLastError() != WSAENOTSOCK)
      return hpw_lastwsaerr();
  }
  if (!DuplicateHandle(GetCurrentProcess(), x, GetCurrentProcess(), out,
                       0, inherit ? TRUE : FALSE, DUPLICATE_SAME_ACCESS))
    return hpw_lasterr();
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** Reading and writing
** =======================================================
*/

/*
** hpass calls block until done, also on sockets someone made non-blocking
** (LuaSocket keeps all its sockets so): WSAEWOULDBLOCK waits in select.
*/
static int waitsocket (SOCKET s, int forwrite) {
  fd_set set;
  FD_ZERO(&set);
  FD_SET(s, &set);
  if (select(0, forwrite ? NULL : &set, forwrite ? &set : NULL, NULL,
             NULL) == SOCKET_ERROR)
    return hpw_lastwsaerr();
  return 0;
}

/*
** One ReadFile or WriteFile: 0, or the error code as it is.  *n gets the
** bytes moved, also with ERROR_MORE_DATA.  An overlapped handle gets an
** OVERLAPPED and an event of its own, and the call waits for it; a disk
** file opened so has no file position to go on, so it is refused.
*/
static int file_io (HANDLE x, const hpw_kind *k, int writing, void *buf,
                    DWORD len, DWORD *n) {
  OVERLAPPED o;
  BOOL ok;
  int err = 0;
  *n = 0;
  if (!k->overlapped) {
    ok = writing ? WriteFile(x, buf, len, n, NULL)
                 : ReadFile(x, buf, len, n, NULL);
    return ok ? 0 : hpw_lasterr();
  }
  if (k->kind == HPW_FILE)
    return ERROR_NOT_SUPPORTED;
  memset(&o, 0, sizeof(o));
  if ((o.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL)
    return hpw_lasterr();
  ok = writing ? WriteFile(x, buf, len, NULL, &o)
               : ReadFile(x, buf, len, NULL, &o);
  if (ok || GetLastError() == ERROR_IO_PENDING ||
      GetLastError() == ERROR_MORE_DATA)
    ok = GetOverlappedResult(x, &o, n, TRUE);
  if (!ok)
    err = hpw_lasterr();
  CloseHandle(o.hEvent);
  return err;
}


/*
** A socket Winsock knows only in part (wine's inherited sockets take recv
** and select, but send says WSAENOTSOCK) goes through ReadFile and
** WriteFile, which every socket of the system's own provider takes.
*/
static int socket_io (SOCKET s, int writing, void *buf, DWORD len,
                      size_t *done) {
  int r, err;
  for (;;) {
    r = writing ? send(s, (const char *)buf, (int)len, 0)
                : recv(s, (char *)buf, (int)len, 0);
    if (r != SOCKET_ERROR) {
      *done = (size_t)r;
      return 0;
    }
    if (WSAGetLastError() == WSAENOTSOCK) {
      hpw_kind k;
      DWORD n;
      k.kind = HPW_OTHER;
      k.overlapped = is_overlapped((HANDLE)s);
      k.nowait = 0;
      err = file_io((HANDLE)s, &k, writing, buf, len, &n);
      *done = n;
      return err;
    }
    if (WSAGetLastError() != WSAEWOULDBLOCK)
      return hpw_lastwsaerr();
    if ((err = waitsocket(s, writing)) != 0)
      return err;
  }
}


/*
** A PIPE_NOWAIT pipe has nothing to wait on, so a call that must block on
** one polls it, with back-off from 1 ms up to HPW_PAUSE (*pause).
*/
static void nap (hp_time *pause) {
  Sleep((DWORD)hp_backoff(pause, HPW_PAUSE));
}


/* A write to each page of buf: Windows has no call that does it at once. */
void hp_prefault (void *buf, size_t n) {
  unsigned char *b = (unsigned char *)buf;
  size_t i;
  for (i = 0; i < n; i += 4096) b[i] = 0;
}


/*
** The end of a stream: a pipe whose write ends are all closed
** (ERROR_BROKEN_PIPE), a named pipe whose other end disconnected
** (ERROR_PIPE_NOT_CONNECTED) or is closing (ERROR_NO_DATA, on a pipe
** that waits), files that say ERROR_HANDLE_EOF, and a read of 0 bytes
** from anything but a pipe.  On a pipe, a read of 0 bytes that succeeds
** is a 0-byte message (or write), not the end, and ERROR_MORE_DATA is a
** message longer than the buffer: the bytes read are data, and the rest
** comes with the next read.  A PIPE_NOWAIT pipe with nothing in it says
** ERROR_NO_DATA at once; as hpass calls block, that waits (nap).
*/
int hp_read (hp_os h, void *buf, size_t n, size_t *done) {
  HANDLE x;
  hpw_kind k;
  DWORD len = n > MAXIO ? MAXIO : (DWORD)n, got;
  hp_time pause = 1;
  int err = hpw_tohandle(h, &x);
  *done = 0;
  if (err != 0)
    return err;
  hpw_classify(x, &k);
  if (k.kind == HPW_SOCKET)
    return socket_io((SOCKET)x, 0, buf, len, done);
  for (;;) {
    err = file_io(x, &k, 0, buf, len, &got);
    if (err == ERROR_MORE_DATA)
      err = 0;
    else if (err == ERROR_BROKEN_PIPE || err == ERROR_HANDLE_EOF ||
             err == ERROR_PIPE_NOT_CONNECTED)
      return 0;
    else if (err == ERROR_NO_DATA && k.kind == HPW_PIPE) {
      if (!k.nowait)
        return 0;
      nap(&pause);
      continue;
    }
    if (err != 0)
      return err;
    if (got == 0 && len > 0 && k.kind == HPW_PIPE)
      continue;
    *done = got;
    return 0;
  }
}


/*
** A write to a PIPE_NOWAIT pipe takes all of it, or nothing: wine takes
** nothing from a write larger than the room left, and in message mode a
** write larger than the whole buffer never fits.  So a write that took
** nothing is tried at once with half the size, down to 1 byte (starting
** from at most NOWAIT_MAX).  If not even that fits, a pipe that
** hp_setnonblock made so returns having written nothing; another one,
** someone else's, is waited on (nap), since hpass calls block.
*/
#define NOWAIT_MAX 65536

static int write_nowait (HANDLE x, const hpw_kind *k, const void *buf,
                         DWORD len, DWORD *put) {
  DWORD want = len > NOWAIT_MAX ? NOWAIT_MAX : len;
  hp_time pause = 1;
  int err;
  for (;;) {
    if ((err = file_io(x, k, 1, (void *)buf, want, put)) != 0 || *put > 0)
      return err;
    if (want > 1)
      want /= 2;
    else if (nb_has(x))
      return 0;
    else {
      nap(&pause);
      want = len > NOWAIT_MAX ? NOWAIT_MAX : len;
    }
  }
}

/* Windows raises no signal on a broken pipe; only the codes need folding. */
int hp_write (hp_os h, const void *buf, size_t n, size_t *done) {
  HANDLE x;
  hpw_kind k;
  DWORD len = n > MAXIO ? MAXIO : (DWORD)n, put;
  int err = hpw_tohandle(h, &x);
  *done = 0;
  if (err != 0)
    return err;
  hpw_classify(x, &k);
  if (k.kind == HPW_SOCKET) {
    err = socket_io((SOCKET)x, 1, (void *)buf, len, done);
    if (err == WSAECONNRESET || err == WSAECONNABORTED || err == WSAESHUTDOWN)
      return hp_err_pipe();
    return err;
  }
  if (k.kind == HPW_PIPE && k.nowait && len > 0)
    err = write_nowait(x, &k, buf, len, &put);
  else
    err = file_io(x, &k, 1, (void *)buf, len, &put);
  if (err == ERROR_BROKEN_PIPE || err == ERROR_NO_DATA ||
      err == ERROR_PIPE_NOT_CONNECTED)
    return hp_err_pipe();
  if (err != 0)
    return err;
  *done = put;
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** Processes
** =======================================================
*/

/*
** A Windows process has no "signaled" end: TerminateProcess just sets the
** exit code, so every end is HP_EXITED with the full 32-bit code (unsigned:
** a crash reads 3221225477 = 0xC0000005, not a negative number).
*/
int hp_wait (hp_proc *p, int block, int *done, int *how, long long *code) {
  HANDLE proc = (HANDLE)p->sys;
  DWORD r, st;
  *done = 0;
  if (proc == NULL)
    return hp_err_srch();
  r = WaitForSingleObject(proc, block ? INFINITE : 0);
  if (r == WAIT_TIMEOUT)
    return 0;
  if (r != WAIT_OBJECT_0)
    return hpw_lasterr();
  if (!GetExitCodeProcess(proc, &st))
    return hpw_lasterr();
  CloseHandle(proc);
  p->sys = NULL;
  *done = 1;
  *how = HP_EXITED;
  *code = (long long)st;
  return 0;
}


/* Windows children leave no zombies: nothing to collect ahead of time. */
int hp_anyended (void) {
  return 0;
}


/*
** The child ends with exit code sig, which hp_wait then reports.  sig 0
** does what kill(pid, 0) does on POSIX -- checks that the process can
** still be waited for -- rather than ending the child with a code that
** reads as success.  Ending a child that has already ended succeeds, as
** kill() on a zombie does (TerminateProcess says "access denied" then).
*/
int hp_kill (hp_proc *p, int sig) {
  HANDLE proc = (HANDLE)p->sys;
  if (proc == NULL)
    return hp_err_srch();
  if (sig < 0)
    return hp_err_inval();
  if (sig == 0)
    return 0;
  if (!TerminateProcess(proc, (UINT)sig)) {
    int err = hpw_lasterr();
    if (WaitForSingleObject(proc, 0) == WAIT_OBJECT_0)
      return 0;
    return err;
  }
  return 0;
}


/*
** The environment block, in UTF-8.  The block is copied into scratch
** memory and freed at once, so that no error path has it to free; it is
** read again when it grew between measuring and copying.  Names that start with '='
** ("=C:=C:\\dir", the per-drive directories) are not variables.
*/
int hp_envlist (char *const **out, hp_alloc alloc, void *ud) {
  wchar_t *w, *copy = NULL;
  size_t n, cap = 0, count, i;
  char **list;
  for (;;) {
    if ((w = GetEnvironmentStringsW()) == NULL)
      return hpw_lasterr();
    for (n = 0; w[n] != 0 || w[n + 1] != 0; n++) ;
    n += 2;
    if (n <= cap) {
      memcpy(copy, w, n * sizeof(wchar_t));
      FreeEnvironmentStringsW(w);
      break;
    }
    FreeEnvironmentStringsW(w);
    cap = n + 256;
    if ((copy = (wchar_t *)alloc(ud, cap * sizeof(wchar_t))) == NULL)
      return hp_err_nomem();
  }
  for (count = 0, i = 0; copy[i] != 0; i += wcslen(copy + i) + 1)
    count++;
  if ((list = (char **)alloc(ud, (count + 1) * sizeof(char *))) == NULL)
    return hp_err_nomem();
  for (count = 0, i = 0; copy[i] != 0; i += wcslen(copy + i) + 1) {
    const wchar_t *e = copy + i;
    int len;
    if (e[0] == L'=')
      continue;
    len = WideCharToMultiByte(CP_UTF8, 0, e, -1, NULL, 0, NULL, NULL);
    if (len <= 0)
      return hpw_lasterr();
    if ((list[count] = (char *)alloc(ud, (size_t)len)) == NULL)
      return hp_err_nomem();
    WideCharToMultiByte(CP_UTF8, 0, e, -1, list[count], len, NULL, NULL);
    count++;
  }
  list[count] = NULL;
  *out = list;
  return 0;
}


/* The process handle is the only thing to free; Windows has no zombies. */
int hp_release (hp_proc *p) {
  if (p->sys != NULL) {
    CloseHandle((HANDLE)p->sys);
    p->sys = NULL;
  }
  return 0;
}


/*
** systemd's socket activation does not exist here: no variables to find
** (listen_fds finds nothing), and hp_spawn refuses req->nlisten.
*/
const char *hp_listenvar (const char *name) {
  (void)name;
  return NULL;
}

void hp_unlistenvar (const char *name) {
  (void)name;
}

long long hp_getpid (void) {
  return (long long)GetCurrentProcessId();
}

long long hp_maxfd (void) {
  return -1;
}


/*
** Windows has no signals to send, so a name stands for the exit code the
** child gets, with the numbers it has on Linux (TERM 15, KILL 9, ...):
** p:kill("TERM") then reads "exit", 15 on every system.  Only signals
** whose default action ends a process have a name here; STOP, CONT and
** the like would do something else entirely.
*/
const hp_signame hp_signames[] = {
  {"HUP", 1}, {"INT", 2}, {"QUIT", 3}, {"ABRT", 6}, {"KILL", 9},
  {"USR1", 10}, {"SEGV", 11}, {"USR2", 12}, {"PIPE", 13}, {"ALRM", 14},
  {"TERM", 15}, {NULL, 0}
};

/* }====================================================== */


/*
** An SRW lock needs no set-up (SRWLOCK_INIT) and nothing at unload, which
** a CRITICAL_SECTION would.  Like a default pthread mutex, it does not
** nest.
*/
static SRWLOCK lock = SRWLOCK_INIT;

void hp_lock (void) { AcquireSRWLockExclusive(&lock); }

void hp_unlock (void) { ReleaseSRWLockExclusive(&lock); }

/*
** mingw's and MSVC's runtimes run a DLL's atexit handlers at
** DLL_PROCESS_DETACH, after ExitProcess has ended every other thread; one
** that held the lock then leaves it held for good, and waiting would hang
** the exit.  (At a FreeLibrary while threads run, the list is empty.)
*/
int hp_lock_atexit (void) { return TryAcquireSRWLockExclusive(&lock) != 0; }

/*
** mingw's and MSVC's runtimes keep a DLL's atexit handlers with the DLL
** and run them when it is unloaded: nothing to pin.
*/
void hp_pinself (void) {
}

#endif
