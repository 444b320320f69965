/*
** hpass_win32.c - the Windows implementation of hpass_sys.h.
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


/*
** Refusals of our own.  Bit 29 marks a code as an application's, so no
** system code can collide with these.
*/
#define ERR_BATCH    0x20000001  /* the program is a batch file */
#define ERR_ENVCASE  0x20000002  /* two env names differ only in case */
#define ERR_CRT      0x20000003  /* Lua's C runtime cannot be found */

static const struct { int code; const char *msg; } ownerrs[] = {
  {ERR_BATCH, "batch files are not run (cmd.exe would reparse their "
              "arguments)"},
  {ERR_ENVCASE, "environment sets one name twice (in different case)"},
  {ERR_CRT, "cannot find the C runtime of Lua's io library"},
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

/*
** Windows has no socketpair: connect two TCP sockets through a listener on
** the loopback address that lives only for this call.  Any local process
** may connect to that listener first, so an accepted connection counts
** only when its peer is our own client socket; an intruder is dropped and
** we accept again.
*/
int hp_socketpair (hp_os p[2]) {
  SOCKET l, c = INVALID_SOCKET, s = INVALID_SOCKET;
  struct sockaddr_in addr, mine, peer;
  int len, err = 0, tries, one = 1;
  if ((err = hp_init()) != 0)
    return err;
  if ((l = new_socket()) == INVALID_SOCKET)
    return hpw_lastwsaerr();
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  len = (int)sizeof(addr);
  /* nobody else may bind the port meanwhile, not even with SO_REUSEADDR */
  if (setsockopt(l, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&one,
                 (int)sizeof(one)) == SOCKET_ERROR ||
      bind(l, (struct sockaddr *)&addr, len) == SOCKET_ERROR ||
      getsockname(l, (struct sockaddr *)&addr, &len) == SOCKET_ERROR ||
      listen(l, 1) == SOCKET_ERROR)
    goto wsafail;
  if ((c = new_socket()) == INVALID_SOCKET ||
      connect(c, (struct sockaddr *)&addr, (int)sizeof(addr)) == SOCKET_ERROR)
    goto wsafail;
  len = (int)sizeof(mine);
  if (getsockname(c, (struct sockaddr *)&mine, &len) == SOCKET_ERROR)
    goto wsafail;
  for (tries = 0; ; tries++) {
    len = (int)sizeof(peer);
    if ((s = accept(l, (struct sockaddr *)&peer, &len)) == INVALID_SOCKET)
      goto wsafail;
    /*
    ** An accepted socket does not take WSA_FLAG_NO_HANDLE_INHERIT from the
    ** listener on every Windows version, so clear the flag by hand.
    */
    if (!SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0)) {
      err = hpw_lasterr();
      goto fail;
    }
    if (same_addr(&peer, &mine))
      break;
    closesocket(s);
    s = INVALID_SOCKET;
    if (tries == 8) {
      err = WSAECONNREFUSED;
      goto fail;
    }
  }
  closesocket(l);
  /*
  ** A local pair carries small messages (an int, a handle message):
  ** without TCP_NODELAY, Nagle's algorithm holds a second small write
  ** until the first is acknowledged, up to the delayed-ack timer.
  */
  if (setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one,
                 (int)sizeof(one)) == SOCKET_ERROR ||
      setsockopt(c, IPPROTO_TCP, TCP_NODELAY, (const char *)&one,
                 (int)sizeof(one)) == SOCKET_ERROR) {
    err = hpw_lastwsaerr();
    closesocket(s);
    closesocket(c);
    return err;
  }
  p[0] = hpw_fromhandle((HANDLE)s);
  p[1] = hpw_fromhandle((HANDLE)c);
  return 0;
wsafail:
  err = hpw_lastwsaerr();
fail:
  if (s != INVALID_SOCKET) closesocket(s);
  if (c != INVALID_SOCKET) closesocket(c);
  closesocket(l);
  return err;
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
  hpw_forget_channel(x);
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
** one polls it, with back-off from 1 ms up to 10 ms (*pause).
*/
static void nap (DWORD *pause) {
  Sleep(*pause);
  if (*pause < 10) *pause *= 2;
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
  DWORD len = n > MAXIO ? MAXIO : (DWORD)n, got, pause = 1;
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
  DWORD want = len > NOWAIT_MAX ? NOWAIT_MAX : len, pause = 1;
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
** Length of one argument on the command line, written to out unless it is
** NULL, quoted the way the MSVC C runtime and CommandLineToArgvW split a
** command line: inside quotes, backslashes are literal except in front of
** a quote, where 2n backslashes + quote mean n backslashes and the end of
** the quoted part, and 2n+1 mean n backslashes and a literal quote.  So a
** run of backslashes is doubled before a quote (ours or a literal one)
** and kept as it is elsewhere.  The bytes are UTF-8: quoting only looks at
** ASCII, which never occurs inside a multi-byte sequence.
*/
static size_t quote_arg (char *out, const char *a) {
  size_t len = 0, bs = 0, i;
  const char *s;
  if (*a != '\0' && strpbrk(a, " \t\n\v\"") == NULL) {
    len = strlen(a);
    if (out) memcpy(out, a, len);
    return len;
  }
#define PUT(c) do { if (out) out[len] = (c); len++; } while (0)
  PUT('"');
  for (s = a; ; s++) {
    if (*s == '\\') {
      bs++;
      continue;
    }
    if (*s == '\0' || *s == '"') {
      for (i = 0; i < 2 * bs + (*s == '"'); i++) PUT('\\');
      if (*s == '\0') break;
      PUT('"');
    }
    else {
      for (i = 0; i < bs; i++) PUT('\\');
      PUT(*s);
    }
    bs = 0;
  }
  PUT('"');
#undef PUT
  return len;
}

/*
** The program name is read by different rules: up to the next quote when
** it starts with one, else up to white space, with backslashes always
** literal.  File names cannot hold quotes, so it is quoted whole, as is,
** when it has white space (the caller has already rejected quotes).
*/
static size_t quote_prog (char *out, const char *a) {
  size_t len = strlen(a);
  if (*a != '\0' && strpbrk(a, " \t") == NULL) {
    if (out) memcpy(out, a, len);
    return len;
  }
  if (out) {
    out[0] = '"';
    memcpy(out + 1, a, len);
    out[len + 1] = '"';
  }
  return len + 2;
}


/* UTF-8 (NUL-terminated) to UTF-16 in out, or just the length with out NULL. */
static int widen (const char *s, wchar_t *out, int cap, int *len) {
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, out, cap);
  if (n == 0)
    return hpw_lasterr();
  *len = n;  /* counts the terminating NUL */
  return 0;
}


/*
** {------------------------------------------------------
** The environment block
** -------------------------------------------------------
*/

/*
** A given environment keeps these of the parent's entries unless it sets
** them itself: SystemRoot (Winsock and other system DLLs fail without it,
** WSAStartup with error 10106) and the per-drive current directories
** "=A:" .. "=Z:" that cmd.exe and drive-relative paths use.
*/
#define NCARRY 27

static void carry_name (int i, wchar_t name[11]) {
  if (i == 0) {
    wcscpy(name, L"SystemRoot");
    return;
  }
  name[0] = L'=';
  name[1] = (wchar_t)(L'A' + i - 1);
  name[2] = L':';
  name[3] = L'\0';
}

/* Length of an entry's name: up to the first '=' after the first unit. */
static int env_namelen (const wchar_t *e) {
  const wchar_t *eq = e[0] != L'\0' ? wcschr(e + 1, L'=') : NULL;
  return eq != NULL ? (int)(eq - e) : (int)wcslen(e);
}

/* Names compare as Windows compares them: ordinal, ignoring case. */
static int env_cmp (const wchar_t *a, int la, const wchar_t *b, int lb) {
  return CompareStringOrdinal(a, la, b, lb, TRUE) - CSTR_EQUAL;
}

static int env_order (const void *x, const void *y) {
  const wchar_t *a = *(const wchar_t *const *)x;
  const wchar_t *b = *(const wchar_t *const *)y;
  return env_cmp(a, env_namelen(a), b, env_namelen(b));
}

/* The value of name among the n entries of e, or NULL. */
static const wchar_t *env_find (wchar_t *const *e, size_t n,
                                const wchar_t *name) {
  int ln = (int)wcslen(name);
  size_t i;
  for (i = 0; i < n; i++)
    if (env_namelen(e[i]) == ln && env_cmp(e[i], ln, name, ln) == 0)
      return e[i] + ln + 1;
  return NULL;
}

/* }------------------------------------------------------ */


/*
** Everything hp_spawn allocates, all of it before any OS resource, so that
** running out of memory leaves nothing to undo.
*/
typedef struct spawn_mem {
  char *cmd8;                /* UTF-8 command line */
  size_t cmd8cap;
  wchar_t *cmd;              /* UTF-16 command line (CreateProcessW
                                writes to it) */
  wchar_t *envs;             /* the entries of a given environment */
  wchar_t **envp;            /* pointers to them, sorted */
  size_t nenv;
  wchar_t *env;              /* UTF-16 environment block, or NULL */
  const wchar_t *path;       /* the PATH programs are looked up in */
  wchar_t *name;             /* the program as given */
  wchar_t *cand;             /* a candidate file (cap units) */
  wchar_t *prog;             /* the program found (cap units) */
  size_t cap;
  wchar_t *cwd;              /* UTF-16 directory, or NULL */
  HANDLE *orig;              /* distinct handles to pass on */
  HANDLE *dup;               /* their inheritable duplicates (NULL: none) */
  HANDLE *list;              /* the duplicates that exist, for the list */
  LPPROC_THREAD_ATTRIBUTE_LIST attrs;
} spawn_mem;

/* Room for a handle value in decimal. */
#define NUMLEN 24

/* The longest path Windows takes, in UTF-16 units. */
#define LONGPATH 32768

/* alloc never returns 0 bytes; a NULL means out of memory */
#define ALLOC(p, size)  ((p) = alloc(ud, (size) > 0 ? (size) : 1), (p) == NULL)

/* A widened copy of s in memory from alloc. */
static int walloc (const char *s, wchar_t **out, hp_alloc alloc, void *ud) {
  int err, len;
  if ((err = widen(s, NULL, 0, &len)) != 0)
    return err;
  if (ALLOC(*out, (size_t)len * sizeof(wchar_t)))
    return ERROR_NOT_ENOUGH_MEMORY;
  return widen(s, *out, len, &len);
}

/*
** The block CreateProcessW wants: the given entries plus the carried ones,
** sorted by name ignoring case, as Windows keeps its own (some programs
** search it by bisection), then one more NUL.  Two names that differ only
** in case would leave it to chance which one the child reads, so such an
** environment is refused.
*/
static int env_block (const char *const *envp, spawn_mem *m,
                      hp_alloc alloc, void *ud) {
  size_t units = 1, ne, i, used = 0;
  wchar_t name[11], *w;
  int err, len;
  for (ne = 0; envp[ne] != NULL; ne++) {
    /* an empty string would end the block early */
    if (envp[ne][0] == '\0')
      return hp_err_inval();
    if ((err = widen(envp[ne], NULL, 0, &len)) != 0)
      return err;
    units += (size_t)len;
  }
  for (i = 0; i < NCARRY; i++) {
    DWORD k;
    carry_name((int)i, name);
    if ((k = GetEnvironmentVariableW(name, NULL, 0)) > 0)
      units += wcslen(name) + 1 + k;
  }
  if (ALLOC(m->envs, units * sizeof(wchar_t)) ||
      ALLOC(m->envp, (ne + NCARRY) * sizeof(wchar_t *)) ||
      ALLOC(m->env, (units + 1) * sizeof(wchar_t)))
    return ERROR_NOT_ENOUGH_MEMORY;
  for (i = 0; i < ne; i++) {
    w = m->envs + used;
    if ((err = widen(envp[i], w, (int)(units - used), &len)) != 0)
      return err;
    m->envp[m->nenv++] = w;
    used += (size_t)len;
  }
  for (i = 0; i < NCARRY; i++) {
    size_t ln;
    DWORD k;
    carry_name((int)i, name);
    ln = wcslen(name);
    if (env_find(m->envp, ne, name) != NULL || used + ln + 2 > units)
      continue;
    w = m->envs + used;
    wmemcpy(w, name, ln);
    w[ln] = L'=';
    k = GetEnvironmentVariableW(name, w + ln + 1,
                                (DWORD)(units - used - ln - 1));
    /* 0: not set (or empty); too big: it grew since it was measured */
    if (k == 0 || k >= units - used - ln - 1)
      continue;
    m->envp[m->nenv++] = w;
    used += ln + 1 + k + 1;
  }
  qsort(m->envp, m->nenv, sizeof(wchar_t *), env_order);
  for (i = 1; i < m->nenv; i++)
    if (env_order(&m->envp[i - 1], &m->envp[i]) == 0)
      return ERR_ENVCASE;
  w = m->env;
  for (i = 0; i < m->nenv; i++) {
    size_t k = wcslen(m->envp[i]) + 1;
    wmemcpy(w, m->envp[i], k);
    w += k;
  }
  w[0] = L'\0';
  if (w == m->env) w[1] = L'\0';  /* an empty block is two NULs */
  m->path = env_find(m->envp, m->nenv, L"PATH");
  return 0;
}

/* The parent's PATH, when no environment is given. */
static int parent_path (spawn_mem *m, hp_alloc alloc, void *ud) {
  wchar_t *p;
  DWORD k = GetEnvironmentVariableW(L"PATH", NULL, 0);
  if (k == 0)
    return 0;  /* no PATH: bare names are found nowhere */
  if (ALLOC(p, ((size_t)k + 1) * sizeof(wchar_t)))
    return ERROR_NOT_ENOUGH_MEMORY;
  /* it may have changed since: a PATH that grew is taken as missing */
  if (GetEnvironmentVariableW(L"PATH", p, k + 1) <= k)
    m->path = p;
  return 0;
}

static int spawn_alloc (const hp_spawn_req *req, size_t argc,
                        spawn_mem *m, hp_alloc alloc, void *ud) {
  size_t i, total = 0, nmax = req->nhandles + 6;
  int err;
  SIZE_T asize = 0;
  /* The command line, with room for the handle numbers appended. */
  for (i = 0; i < argc + req->nhandles; i++) {
    if (i >= argc)
      total += NUMLEN;
    else
      total += i == 0 ? quote_prog(NULL, req->argv[0])
                      : quote_arg(NULL, req->argv[i]);
    total += 1;  /* a space or the final NUL */
  }
  /* far past CreateProcessW's 32767, and the int of the conversions */
  if (total > 0x1000000)
    return ERROR_FILENAME_EXCED_RANGE;
  m->cmd8cap = total;
  /* UTF-16 never needs more units than UTF-8 needs bytes */
  if (ALLOC(m->cmd8, total) || ALLOC(m->cmd, total * sizeof(wchar_t)))
    return ERROR_NOT_ENOUGH_MEMORY;
  if (req->envp != NULL)
    err = env_block(req->envp, m, alloc, ud);
  else
    err = parent_path(m, alloc, ud);
  if (err != 0)
    return err;
  /* the program: the executable option's, else argv[0] */
  if ((err = walloc(req->executable != NULL ? req->executable : req->argv[0],
                    &m->name, alloc, ud)) != 0 ||
      (req->cwd != NULL && (err = walloc(req->cwd, &m->cwd, alloc, ud)) != 0))
    return err;
  /*
  ** Room for the longest candidate (a PATH entry or cwd, a separator, the
  ** name, an extension) and for its full path, which may add the current
  ** directory (or a drive's); never more than Windows takes.
  */
  m->cap = wcslen(m->name) + 8 + MAX_PATH + GetCurrentDirectoryW(0, NULL) +
           (m->cwd != NULL ? wcslen(m->cwd) : 0) +
           (m->path != NULL ? wcslen(m->path) : 0);
  if (m->cap > LONGPATH)
    m->cap = LONGPATH;
  if (ALLOC(m->cand, m->cap * sizeof(wchar_t)) ||
      ALLOC(m->prog, m->cap * sizeof(wchar_t)))
    return ERROR_NOT_ENOUGH_MEMORY;
  /* at most: every handle, three given std handles, three of our own */
  if (ALLOC(m->orig, nmax * sizeof(HANDLE)) ||
      ALLOC(m->dup, nmax * sizeof(HANDLE)) ||
      ALLOC(m->list, nmax * sizeof(HANDLE)))
    return ERROR_NOT_ENOUGH_MEMORY;
  /* Asking for the size fails by design, with the size filled in. */
  InitializeProcThreadAttributeList(NULL, 1, 0, &asize);
  if (asize == 0)
    return hpw_lasterr();
  if (ALLOC(m->attrs, asize))
    return ERROR_NOT_ENOUGH_MEMORY;
  return 0;
}

#undef ALLOC


/*
** {------------------------------------------------------
** Finding the program
** -------------------------------------------------------
*/

static int is_sep (wchar_t c) { return c == L'\\' || c == L'/'; }

/* "X:" or a leading separator: not relative to the current directory */
static int is_rooted (const wchar_t *p, size_t n) {
  return (n >= 1 && is_sep(p[0])) || (n >= 2 && p[1] == L':');
}

/* The full path of cand in out, when that is a file (not a directory). */
static int is_file (const wchar_t *cand, wchar_t *out, size_t cap) {
  DWORD n = GetFullPathNameW(cand, (DWORD)cap, out, NULL), a;
  if (n == 0 || n >= cap)
    return 0;
  a = GetFileAttributesW(out);
  return a != INVALID_FILE_ATTRIBUTES && !(a & FILE_ATTRIBUTE_DIRECTORY);
}

/*
** cand holds len units of a file name.  A name with an extension is taken
** as it is; one without gets ".exe", then ".com", the two kinds of file
** CreateProcessW runs by itself.  (PATHEXT's other entries name scripts
** that need an interpreter, or batch files, which are refused.)
*/
static int try_prog (wchar_t *cand, size_t len, wchar_t *out, size_t cap) {
  static const wchar_t *const exts[] = {L".exe", L".com"};
  const wchar_t *base = cand + len;
  int i;
  cand[len] = L'\0';
  while (base > cand && !is_sep(base[-1]) && base[-1] != L':')
    base--;
  if (wcschr(base, L'.') != NULL)
    return is_file(cand, out, cap);
  for (i = 0; i < 2; i++) {
    if (len + 5 > cap)
      return 0;
    wcscpy(cand + len, exts[i]);
    if (is_file(cand, out, cap))
      return 1;
  }
  return 0;
}

/* dir (n units, may be 0) joined with m->name in m->cand, then tried. */
static int try_in (spawn_mem *m, const wchar_t *dir, size_t n) {
  size_t ln = wcslen(m->name);
  if (n + 1 + ln + 5 > m->cap)
    return 0;
  wmemcpy(m->cand, dir, n);
  if (n > 0 && !is_sep(dir[n - 1]) && dir[n - 1] != L':')
    m->cand[n++] = L'\\';
  wmemcpy(m->cand + n, m->name, ln);
  return try_prog(m->cand, n + ln, m->prog, m->cap);
}

/*
** The program to run, as a full path in m->prog.  CreateProcessW's own
** search would look in the parent's executable directory and the current
** directory first, where anyone who can write a file there plants one.
** Here a name with a directory part is a path, and a relative one is
** relative to the cwd option when there is one (where the child starts);
** a bare name is looked for in each absolute directory of PATH -- the
** PATH of the env option when one is given -- and nowhere else.
*/
static int find_prog (spawn_mem *m) {
  const wchar_t *p = m->path;
  size_t ln = wcslen(m->name);
  if (wcspbrk(m->name, L"\\/:") != NULL) {
    if (m->cwd != NULL && !is_rooted(m->name, ln))
      return try_in(m, m->cwd, wcslen(m->cwd)) ? 0 : ERROR_FILE_NOT_FOUND;
    return try_in(m, L"", 0) ? 0 : ERROR_FILE_NOT_FOUND;
  }
  while (p != NULL && *p != L'\0') {
    const wchar_t *d = p, *e = wcschr(p, L';');
    size_t n = e != NULL ? (size_t)(e - p) : wcslen(p);
    p = e != NULL ? e + 1 : p + n;
    if (n >= 2 && d[0] == L'"' && d[n - 1] == L'"') {
      d++;
      n -= 2;
    }
    /* "" and "." and other relative entries mean the current directory */
    if (n >= 3 && (is_sep(d[0]) || (d[1] == L':' && is_sep(d[2]))) &&
        try_in(m, d, n))
      return 0;
  }
  return ERROR_FILE_NOT_FOUND;
}

/*
** cmd.exe runs a batch file, and it splits the command line by rules of
** its own (with %VAR% expansion and & | < > ^ as operators), which no
** quoting for the C runtime survives.  Windows picks cmd.exe by the
** extension, ignoring its case, the dots and spaces it drops from the end
** of a name, and a stream suffix (x.bat::$DATA).
*/
static int is_batch (const wchar_t *full) {
  const wchar_t *base = full + wcslen(full), *colon;
  size_t n;
  while (base > full && !is_sep(base[-1]))
    base--;
  colon = wcschr(base, L':');
  n = colon != NULL ? (size_t)(colon - base) : wcslen(base);
  while (n > 0 && (base[n - 1] == L'.' || base[n - 1] == L' '))
    n--;
  return n >= 4 && base[n - 4] == L'.' &&
         (CompareStringOrdinal(base + n - 3, 3, L"bat", 3, TRUE) == CSTR_EQUAL ||
          CompareStringOrdinal(base + n - 3, 3, L"cmd", 3, TRUE) == CSTR_EQUAL);
}

/* The program to run, in m->prog, or an error with req->failed set. */
static int pick_prog (hp_spawn_req *req, spawn_mem *m) {
  int err;
  /* a cwd that is not there would make a relative program look missing */
  if (m->cwd != NULL) {
    DWORD a = GetFileAttributesW(m->cwd);
    if (a == INVALID_FILE_ATTRIBUTES || !(a & FILE_ATTRIBUTE_DIRECTORY)) {
      req->failed = HP_FAIL_CWD;
      return a == INVALID_FILE_ATTRIBUTES ? hpw_lasterr() : ERROR_DIRECTORY;
    }
  }
  req->failed = HP_FAIL_EXEC;
  if ((err = find_prog(m)) != 0)
    return err;
  if (is_batch(m->prog))
    return ERR_BATCH;
  req->failed = HP_FAIL_OTHER;
  return 0;
}

/* }------------------------------------------------------ */


/* Index of x among the first n of list, or n. */
static size_t find_handle (const HANDLE *list, size_t n, HANDLE x) {
  size_t i;
  for (i = 0; i < n; i++)
    if (list[i] == x) break;
  return i;
}

static void add_handle (HANDLE *list, size_t *n, HANDLE x) {
  if (x != NULL && find_handle(list, *n, x) == *n)
    list[(*n)++] = x;
}

static HANDLE dup_of (const spawn_mem *m, size_t n, HANDLE x) {
  size_t i = find_handle(m->orig, n, x);
  return x != NULL && i < n ? m->dup[i] : NULL;
}


/*
** The job object for group, session and die_with_parent: it holds the
** child and everything the child starts, so that TerminateJobObject ends
** the whole tree; with die_with_parent it kills them all when its last
** handle closes, which at the latest is when this process ends, however
** it ends.  Not inheritable: a copy in the child would keep it open.
*/
static int new_job (unsigned flags, HANDLE *job) {
  *job = CreateJobObjectW(NULL, NULL);
  if (*job == NULL)
    return hpw_lasterr();
  if (flags & HP_SPAWN_DIEWITHPARENT) {
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
    memset(&li, 0, sizeof(li));
    li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (!SetInformationJobObject(*job, JobObjectExtendedLimitInformation,
                                 &li, sizeof(li))) {
      int err = hpw_lasterr();
      CloseHandle(*job);
      *job = NULL;
      return err;
    }
  }
  return 0;
}


/*
** The child was started suspended: it joins the job before it runs a
** single instruction, so nothing it starts can escape the job.
*/
static int join_job (HANDLE job, PROCESS_INFORMATION *pi) {
  int err = 0;
  if (!AssignProcessToJobObject(job, pi->hProcess))
    err = hpw_lasterr();
  else if (ResumeThread(pi->hThread) == (DWORD)-1)
    err = hpw_lasterr();
  if (err != 0) {  /* no child half started */
    TerminateProcess(pi->hProcess, 1);
    WaitForSingleObject(pi->hProcess, INFINITE);
  }
  return err;
}


/*
** Only the listed handles reach the child, and a handle can only be listed
** when it is inheritable.  Flipping the caller's own handle to inheritable
** would let any CreateProcess running meanwhile in another thread (ours
** or some other library's, with bInheritHandles and no list) take it too,
** so the child gets inheritable duplicates instead (by Winsock for
** sockets), made here and closed again right after CreateProcessW.  The
** duplicates have other values than the caller's handles: those values
** are what hp_spawn appends to the command line.
**
** The child's standard handles are req->stdio where given, else our own
** (when they are valid), passed the same way, with STARTF_USESTDHANDLES so
** that the child uses exactly these.
**
** The program is found by find_prog, not by CreateProcessW, and passed
** to it by its full path; batch files are refused (see is_batch).
*/
int hp_spawn (hp_spawn_req *req, hp_proc *p, hp_alloc alloc, void *ud) {
  static const DWORD stdids[3] = {
    STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE
  };
  spawn_mem m;
  STARTUPINFOEXW si;
  PROCESS_INFORMATION pi;
  HANDLE stdh[3];
  size_t argc, i, n = 0, nreq, nlist = 0, pos = 0;
  int err, len, listed = 0;
  DWORD flags = 0;
  HANDLE job = NULL;
  req->failed = HP_FAIL_OTHER;
  if (req->argv == NULL || req->argv[0] == NULL ||
      strchr(req->argv[0], '"') != NULL || req->nlisten > 0)
    return hp_err_inval();
  for (argc = 0; req->argv[argc] != NULL; argc++) ;
  for (i = 0; i < req->nhandles; i++) {
    HANDLE x;
    if ((err = hpw_tohandle(req->handles[i], &x)) != 0) {
      req->failed = HP_FAIL_HANDLE;
      req->failed_index = i;
      return err;
    }
  }
  for (i = 0; i < 3; i++) {
    if (req->stdio[i] == HP_NOHANDLE) {
      stdh[i] = NULL;
      continue;
    }
    if ((err = hpw_tohandle(req->stdio[i], &stdh[i])) != 0) {
      req->failed = HP_FAIL_STDIO;
      req->failed_index = i;
      return err;
    }
  }
  memset(&m, 0, sizeof(m));
  /* all memory first: a failure from here on has only handles to close */
  if ((err = spawn_alloc(req, argc, &m, alloc, ud)) != 0)
    return err;
  if ((err = pick_prog(req, &m)) != 0)
    return err;

  /*
  ** Distinct handles to pass: first those the caller named, which must
  ** all make it, then our own standard handles for the streams the caller
  ** left alone.  Those may be missing (a GUI parent) or, on old systems,
  ** console pseudo-handles that cannot be duplicated: the child then gets
  ** no such stream rather than no child at all.
  */
  for (i = 0; i < req->nhandles; i++)
    add_handle(m.orig, &n, (HANDLE)(uintptr_t)req->handles[i]);
  for (i = 0; i < 3; i++)
    add_handle(m.orig, &n, stdh[i]);
  nreq = n;
  for (i = 0; i < 3; i++) {
    if (stdh[i] != NULL)
      continue;
    stdh[i] = GetStdHandle(stdids[i]);
    if (stdh[i] == INVALID_HANDLE_VALUE)
      stdh[i] = NULL;
    add_handle(m.orig, &n, stdh[i]);
  }
  for (i = 0; i < n; i++)
    m.dup[i] = NULL;
  for (i = 0; i < n; i++) {
    HANDLE d;
    if ((err = hpw_dup_local(m.orig[i], 1, &d)) == 0)
      m.list[nlist++] = m.dup[i] = d;
    else if (i < nreq)
      goto done;
  }

  /* The command line: the arguments, then the duplicates' values. */
  for (i = 0; i < argc + req->nhandles; i++) {
    if (i >= argc) {
      HANDLE x = (HANDLE)(uintptr_t)req->handles[i - argc];
      long long v = hpw_fromhandle(dup_of(&m, n, x));
      pos += (size_t)snprintf(m.cmd8 + pos, NUMLEN, "%lld", v);
    }
    else if (i == 0)
      pos += quote_prog(m.cmd8 + pos, req->argv[0]);
    else
      pos += quote_arg(m.cmd8 + pos, req->argv[i]);
    m.cmd8[pos++] = i + 1 < argc + req->nhandles ? ' ' : '\0';
  }
  if ((err = widen(m.cmd8, m.cmd, (int)m.cmd8cap, &len)) != 0)
    goto done;

  memset(&si, 0, sizeof(si));
  si.StartupInfo.cb = sizeof(si);
  si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
  si.StartupInfo.hStdInput = dup_of(&m, n, stdh[0]);
  si.StartupInfo.hStdOutput = dup_of(&m, n, stdh[1]);
  si.StartupInfo.hStdError = dup_of(&m, n, stdh[2]);
  if (nlist > 0) {
    SIZE_T asize = 0;
    InitializeProcThreadAttributeList(NULL, 1, 0, &asize);
    if (!InitializeProcThreadAttributeList(m.attrs, 1, 0, &asize)) {
      err = hpw_lasterr();
      goto done;
    }
    listed = 1;
    if (!UpdateProcThreadAttribute(m.attrs, 0,
                                   PROC_THREAD_ATTRIBUTE_HANDLE_LIST, m.list,
                                   nlist * sizeof(HANDLE), NULL, NULL)) {
      err = hpw_lasterr();
      goto done;
    }
    si.lpAttributeList = m.attrs;
    flags |= EXTENDED_STARTUPINFO_PRESENT;
  }
  if (m.env != NULL)
    flags |= CREATE_UNICODE_ENVIRONMENT;
  if (req->flags & (HP_SPAWN_GROUP | HP_SPAWN_SESSION))
    flags |= CREATE_NEW_PROCESS_GROUP;
  if (req->flags != 0) {
    if ((err = new_job(req->flags, &job)) != 0)
      goto done;
    flags |= CREATE_SUSPENDED;
  }
  /* Without a list, inheriting would pass every inheritable handle. */
  if (!CreateProcessW(m.prog, m.cmd, NULL, NULL, nlist > 0 ? TRUE : FALSE,
                      flags, m.env, m.cwd, &si.StartupInfo, &pi)) {
    err = hpw_lasterr();
    /* ERROR_DIRECTORY: the working directory, not the program */
    req->failed = (m.cwd != NULL && err == ERROR_DIRECTORY)
                  ? HP_FAIL_CWD : HP_FAIL_EXEC;
    goto done;
  }
  if (job != NULL && (err = join_job(job, &pi)) != 0) {
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    goto done;
  }
  req->failed = HP_FAIL_NONE;
  CloseHandle(pi.hThread);
  p->pid = (long long)pi.dwProcessId;
  p->sys = pi.hProcess;
  p->group = job;
  p->flags = req->flags;
  job = NULL;
  err = 0;
done:
  if (job != NULL)
    CloseHandle(job);
  if (listed)
    DeleteProcThreadAttributeList(m.attrs);
  for (i = 0; i < n; i++)
    if (m.dup[i] != NULL) hp_close(hpw_fromhandle(m.dup[i]));
  return err;
}


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


/* The number of processes in a job; -1 when the system does not say. */
static long job_members (HANDLE job) {
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION ai;
  if (!QueryInformationJobObject(job, JobObjectBasicAccountingInformation,
                                 &ai, sizeof(ai), NULL))
    return -1;
  return (long)ai.ActiveProcesses;
}


/*
** The whole job: the child and all it started, also once the child has
** been collected (a job handle cannot name another job, unlike a pid):
** an empty job reads as a process that has ended.  sig 0 only checks, as
** in hp_kill.
*/
int hp_killgroup (hp_proc *p, int sig, int collected) {
  HANDLE job = (HANDLE)p->group;
  (void)collected;
  if (job == NULL)
    return hp_err_srch();
  if (sig < 0)
    return hp_err_inval();
  if (job_members(job) == 0)
    return hp_err_srch();
  if (sig == 0)
    return 0;
  if (!TerminateJobObject(job, (UINT)sig))
    return hpw_lasterr();
  return 0;
}


/*
** A job that kills on close and still holds a process stays open until
** this process ends: closing it now would kill processes whose parent
** lives.  Whether it kills on close is what hp_spawn asked for
** (die_with_parent), not what QueryInformationJobObject says: wine reports
** no limits at all.  Any other job is closed (that ends nothing).
*/
void hp_endgroup (hp_proc *p) {
  HANDLE job = (HANDLE)p->group;
  if (job == NULL)
    return;
  p->group = NULL;
  if ((p->flags & HP_SPAWN_DIEWITHPARENT) && job_members(job) != 0)
    return;  /* kept on purpose: this process's end closes it */
  CloseHandle(job);
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
** {======================================================
** C streams
** =======================================================
*/

/*
** A FILE * from Lua's io library belongs to the C runtime Lua was built
** with, and is only valid for that runtime's functions: Lua may use
** ucrtbase.dll while this module uses msvcrt.dll (mingw's default), or
** either may have its runtime linked in statically.  So every FILE * is
** handled through Lua's own runtime, found from this module's imports:
** the module that provides lua_* functions to us (Lua), then the module
** that provides fflush to Lua (its runtime); GetProcAddress there gives
** the functions.  A module that imports no lua_* function has Lua linked
** into the same module, hence the same runtime: its own fflush then
** leads to it.  Lua linked with a static runtime imports no fflush, and
** Lua files are refused (ERR_CRT) rather than read as foreign structs.
*/
typedef int (__cdecl *fflush_fn) (FILE *);
typedef size_t (__cdecl *fread_fn) (void *, size_t, size_t, FILE *);
typedef int (__cdecl *fileno_fn) (FILE *);
typedef intptr_t (__cdecl *osfhandle_fn) (int);
typedef int (__cdecl *openosf_fn) (intptr_t, int);
typedef FILE *(__cdecl *fdopen_fn) (int, const char *);
typedef int (__cdecl *close_fn) (int);
typedef int (__cdecl *fclose_fn) (FILE *);
typedef int *(__cdecl *errno_fn) (void);
typedef unsigned long *(__cdecl *doserrno_fn) (void);
typedef int (__cdecl *bufptrs_fn) (FILE *, char ***, char ***, int **);

typedef struct luacrt {
  fflush_fn fflush;
  fread_fn fread;
  fileno_fn fileno;
  osfhandle_fn get_osfhandle;
  openosf_fn open_osfhandle;
  fdopen_fn fdopen;
  close_fn close;
  fclose_fn fclose;
  errno_fn errnop;
  doserrno_fn doserrnop;
  bufptrs_fn bufptrs;  /* ucrt only */
  HMODULE module;  /* NULL: Lua's runtime was not found */
} luacrt;

static INIT_ONCE crt_once = INIT_ONCE_STATIC_INIT;
static luacrt crt;

/*
** The address that module m imports for the function name (or, with
** prefix set, for the first whose name starts with it), from its import
** directory as the loader filled it in; NULL if m imports no such thing.
*/
static void *imported (HMODULE m, const char *name, int prefix) {
  unsigned char *base = (unsigned char *)m;
  IMAGE_DOS_HEADER *dos = (IMAGE_DOS_HEADER *)base;
  IMAGE_NT_HEADERS *nt;
  IMAGE_DATA_DIRECTORY *dir;
  IMAGE_IMPORT_DESCRIPTOR *d;
  size_t len = strlen(name);
  if (dos->e_magic != IMAGE_DOS_SIGNATURE)
    return NULL;
  nt = (IMAGE_NT_HEADERS *)(base + dos->e_lfanew);
  if (nt->Signature != IMAGE_NT_SIGNATURE)
    return NULL;
  dir = &nt->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_IMPORT];
  if (dir->VirtualAddress == 0 || dir->Size == 0)
    return NULL;
  for (d = (IMAGE_IMPORT_DESCRIPTOR *)(base + dir->VirtualAddress);
       d->Name != 0; d++) {
    IMAGE_THUNK_DATA *names, *addrs;
    size_t i;
    /* without the names table (an old bound import) there is no telling */
    if (d->OriginalFirstThunk == 0)
      continue;
    names = (IMAGE_THUNK_DATA *)(base + d->OriginalFirstThunk);
    addrs = (IMAGE_THUNK_DATA *)(base + d->FirstThunk);
    for (i = 0; names[i].u1.AddressOfData != 0; i++) {
      IMAGE_IMPORT_BY_NAME *by;
      if (IMAGE_SNAP_BY_ORDINAL(names[i].u1.Ordinal))
        continue;
      by = (IMAGE_IMPORT_BY_NAME *)(base + names[i].u1.AddressOfData);
      if (strncmp((const char *)by->Name, name, len) == 0 &&
          (prefix || by->Name[len] == '\0'))
        return (void *)(uintptr_t)addrs[i].u1.Function;
    }
  }
  return NULL;
}

/* The module an address lies in, without taking a reference to it. */
static HMODULE module_of (const void *addr) {
  HMODULE m = NULL;
  if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                          GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                          (LPCWSTR)addr, &m))
    return NULL;
  return m;
}

/* through void (*)(void), the one cast GCC lets FARPROC take quietly */
#define CRTFN(field, type, name) \
  ((crt.field = (type)(void (*)(void))GetProcAddress(m, name)) != NULL)

static BOOL CALLBACK find_crt (PINIT_ONCE once, PVOID param, PVOID *ctx) {
  HMODULE self = module_of((const void *)hp_fflush), lua, m;
  void *f;
  (void)once; (void)param; (void)ctx;
  if (self == NULL)
    return TRUE;
  f = imported(self, "lua_", 1);
  lua = f != NULL ? module_of(f) : self;
  f = lua != NULL ? imported(lua, "fflush", 0) : NULL;
  m = f != NULL ? module_of(f) : NULL;
  if (m == NULL)
    return TRUE;
  if (CRTFN(fflush, fflush_fn, "fflush") && CRTFN(fread, fread_fn, "fread") &&
      CRTFN(fileno, fileno_fn, "_fileno") &&
      CRTFN(get_osfhandle, osfhandle_fn, "_get_osfhandle") &&
      CRTFN(open_osfhandle, openosf_fn, "_open_osfhandle") &&
      CRTFN(fdopen, fdopen_fn, "_fdopen") && CRTFN(close, close_fn, "_close") &&
      CRTFN(fclose, fclose_fn, "fclose") &&
      CRTFN(errnop, errno_fn, "_errno") &&
      CRTFN(doserrnop, doserrno_fn, "__doserrno")) {
    crt.bufptrs = (bufptrs_fn)(void (*)(void))
                  GetProcAddress(m, "_get_stream_buffer_pointers");
    crt.module = m;
  }
  return TRUE;
}

#undef CRTFN

static const luacrt *lua_crt (void) {
  InitOnceExecuteOnce(&crt_once, find_crt, NULL, NULL);
  return crt.module != NULL ? &crt : NULL;
}


/* errno as a Windows code, for failures of the runtime's own. */
static int crterr (int e) {
  switch (e) {
    case EPIPE: return hp_err_pipe();
    case EMFILE: return ERROR_TOO_MANY_OPEN_FILES;
    case ENOMEM: return ERROR_NOT_ENOUGH_MEMORY;
    case ENOSPC: return ERROR_DISK_FULL;
    case EACCES: return ERROR_ACCESS_DENIED;
    case EBADF: return ERROR_INVALID_HANDLE;
    case EINVAL: return ERROR_INVALID_PARAMETER;
    default: return ERROR_GEN_FAILURE;
  }
}

/*
** The error of a failed runtime call: the Windows code the runtime kept in
** _doserrno when a system call failed (folded like hp_write's), else its
** errno translated; never an errno passed off as a Windows code (EPIPE,
** 32, would read as ERROR_SHARING_VIOLATION).
*/
static int lasterrno (const luacrt *c) {
  unsigned long dos = *c->doserrnop();
  if (dos == ERROR_BROKEN_PIPE || dos == ERROR_NO_DATA ||
      dos == ERROR_PIPE_NOT_CONNECTED)
    return hp_err_pipe();
  return dos != 0 ? (int)dos : crterr(*c->errnop());
}

static void clearerrno (const luacrt *c) {
  *c->errnop() = 0;
  *c->doserrnop() = 0;
}


int hp_fromfile (FILE *f, hp_os *h) {
  const luacrt *c = lua_crt();
  int fd;
  intptr_t x;
  if (c == NULL)
    return ERR_CRT;
  if ((fd = c->fileno(f)) < 0)
    return ERROR_INVALID_HANDLE;
  x = c->get_osfhandle(fd);
  if (x == -1 || x == -2)  /* -2: a stream with no handle (no console) */
    return ERROR_INVALID_HANDLE;
  *h = (hp_os)x;
  return 0;
}


int hp_fflush (FILE *f) {
  const luacrt *c = lua_crt();
  if (c == NULL)
    return ERR_CRT;
  clearerrno(c);
  return c->fflush(f) == 0 ? 0 : lasterrno(c);
}


/*
** The stream's buffer state, read from the runtime's own layout.
** msvcrt.dll's FILE is public and fixed: _ptr, _cnt, _base, _flag.
** ucrt's FILE is opaque, but _get_stream_buffer_pointers gives its _cnt,
** and the flags follow it (_ptr, _base, _cnt, _flags).  Wine's ucrtbase
** keeps msvcrt's layout, which the place of _cnt also tells.  In both,
** _cnt counts the bytes left to read only while the stream reads
** (_IOREAD without _IOWRITE, 1 and 2 in both runtimes); while it writes
** it counts the room left in the buffer.
*/
#define CRT_IOREAD 0x0001
#define CRT_IOWRITE 0x0002

size_t hp_freadahead (FILE *f) {
  const luacrt *c = lua_crt();
  char *base = (char *)f, **bp, **pp;
  int *cnt, flags;
  if (c == NULL)
    return 0;
  if (c->bufptrs == NULL)
    cnt = (int *)(base + sizeof(char *));
  else if (c->bufptrs(f, &bp, &pp, &cnt) != 0)
    return 0;
  if ((char *)cnt - base == (ptrdiff_t)sizeof(char *))
    flags = *(int *)(base + 3 * sizeof(char *));  /* msvcrt's layout */
  else if ((char *)cnt - base == (ptrdiff_t)(2 * sizeof(char *)))
    flags = cnt[1];                               /* ucrt's */
  else
    return 0;  /* a layout not known: cannot tell */
  if ((flags & CRT_IOREAD) == 0 || (flags & CRT_IOWRITE) != 0 || *cnt <= 0)
    return 0;
  return (size_t)*cnt;
}


size_t hp_ftake (FILE *f, void *buf, size_t n) {
  const luacrt *c = lua_crt();
  size_t k = hp_freadahead(f);
  if (k > n) k = n;
  /* no more than the buffer holds: fread copies it, with no system call */
  return k == 0 || c == NULL ? 0 : c->fread(buf, 1, k, f);
}


/* The fopen modes Lua accepts: r, w or a, then '+' and 'b'/'t'. */
static int valid_mode (const char *mode) {
  if (mode[0] != 'r' && mode[0] != 'w' && mode[0] != 'a')
    return 0;
  return strspn(mode + 1, "+bt") == strlen(mode + 1);
}

/*
** The C runtime has no way to take a handle back from a descriptor, so a
** failing _fdopen would leave h closed with the descriptor.  To keep h
** untouched on failure, the stream gets a (non-inheritable) duplicate and
** h is closed only once the stream exists: the stream's handle has another
** value than h.  Without 'b' the stream is in text mode, as with fopen.
** The stream is made by Lua's runtime, which is the one that will use and
** close it.  A socket's stream closes it with CloseHandle, which leaves
** Winsock's state for that socket behind (see the README).
*/
FILE *hp_tofile (hp_os h, const char *mode, int *err) {
  const luacrt *c = lua_crt();
  HANDLE x, d;
  int fd, flags = 0;
  FILE *f;
  if ((*err = hpw_tohandle(h, &x)) != 0)
    return NULL;
  if (!valid_mode(mode)) {
    *err = hp_err_inval();
    return NULL;
  }
  if (c == NULL) {
    *err = ERR_CRT;
    return NULL;
  }
  if (mode[0] == 'r' && strchr(mode, '+') == NULL) flags |= _O_RDONLY;
  if (mode[0] == 'a') flags |= _O_APPEND;
  if (strchr(mode, 'b') == NULL) flags |= _O_TEXT;
  if (!DuplicateHandle(GetCurrentProcess(), x, GetCurrentProcess(), &d,
                       0, FALSE, DUPLICATE_SAME_ACCESS)) {
    *err = hpw_lasterr();
    return NULL;
  }
  clearerrno(c);
  fd = c->open_osfhandle((intptr_t)d, flags);
  if (fd == -1) {
    *err = lasterrno(c);
    CloseHandle(d);
    return NULL;
  }
  f = c->fdopen(fd, mode);
  if (f == NULL) {
    *err = lasterrno(c);
    c->close(fd);  /* closes d */
    return NULL;
  }
  hp_close(h);
  *err = 0;
  return f;
}


/* Lua's errno is its runtime's, so luaL_fileresult reads what this sets. */
int hp_fclose (FILE *f) {
  const luacrt *c = lua_crt();
  return c != NULL ? c->fclose(f) : EOF;
}

/* }====================================================== */


#endif
