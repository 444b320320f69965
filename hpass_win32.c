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

/*
** Windows 8 / Server 2012 is the oldest system hpass supports: before it,
** console handles are pseudo-handles, which CreateProcessW refuses in a
** handle list (ERROR_NO_SYSTEM_RESOURCES), so a child of a console parent
** could not be started.
*/
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0602
#endif

/* rand_s, for the names of the pipes that pass handles */
#define _CRT_RAND_S

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "hpass_sys.h"

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

int hp_err_badf (void) { return ERROR_INVALID_HANDLE; }

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


/* The last error, never 0: a failure must not look like success. */
static int lasterr (void) {
  DWORD e = GetLastError();
  return e != 0 ? (int)e : ERROR_GEN_FAILURE;
}

static int lastwsaerr (void) {
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
static int tohandle (hp_os h, HANDLE *out) {
  if (h <= 0 || (unsigned long long)h > (unsigned long long)UINTPTR_MAX)
    return ERROR_INVALID_HANDLE;
  *out = (HANDLE)(uintptr_t)h;
  return 0;
}

static hp_os fromhandle (HANDLE h) {
  return (hp_os)(intptr_t)h;
}


/*
** What a handle is.  Disk files and consoles are told apart by
** GetFileType without touching Winsock; sockets report FILE_TYPE_PIPE
** (or FILE_TYPE_UNKNOWN, with some providers), and getsockopt tells them
** apart from real pipes.
*/
enum { K_FILE, K_PIPE, K_SOCKET };

static int handle_kind (HANDLE h) {
  int type, len = (int)sizeof(type);
  DWORD t = GetFileType(h);
  if (t != FILE_TYPE_PIPE && t != FILE_TYPE_UNKNOWN)
    return K_FILE;
  if (getsockopt((SOCKET)h, SOL_SOCKET, SO_TYPE, (char *)&type, &len) == 0)
    return K_SOCKET;
  return t == FILE_TYPE_PIPE ? K_PIPE : K_FILE;
}

static int is_socket (HANDLE h) {
  return handle_kind(h) == K_SOCKET;
}


/*
** Whether a handle was opened for overlapped I/O (libuv's pipes are, and
** so are named pipes of many servers): ReadFile and WriteFile need an
** OVERLAPPED for such a handle, and the handle's own mode is only told by
** NtQueryInformationFile.  Found once, in hp_init.
*/
typedef struct { union { LONG status; PVOID p; } u; ULONG_PTR info; } iostatus;
typedef LONG (WINAPI *queryfile_fn) (HANDLE, iostatus *, PVOID, ULONG, int);
#define FILE_MODE_INFO 16                 /* FileModeInformation */
#define SYNC_IO_FLAGS (0x10 | 0x20)       /* FILE_SYNCHRONOUS_IO_(NON)ALERT */

static queryfile_fn queryfile;

static int is_overlapped (HANDLE h) {
  iostatus st;
  ULONG mode = SYNC_IO_FLAGS;
  if (queryfile == NULL || queryfile(h, &st, &mode, sizeof(mode),
                                     FILE_MODE_INFO) < 0)
    return 0;  /* not known: take it as synchronous, as before */
  return (mode & SYNC_IO_FLAGS) == 0;
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
    return lasterr();
  return init_error;
}


int hp_pipe (hp_os p[2]) {
  SECURITY_ATTRIBUTES sa;
  HANDLE r, w;
  sa.nLength = sizeof(sa);
  sa.lpSecurityDescriptor = NULL;
  sa.bInheritHandle = FALSE;  /* only hp_spawn passes handles on */
  if (!CreatePipe(&r, &w, &sa, 0))
    return lasterr();
  p[0] = fromhandle(r);
  p[1] = fromhandle(w);
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
    return lastwsaerr();
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
      err = lasterr();
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
    err = lastwsaerr();
    closesocket(s);
    closesocket(c);
    return err;
  }
  p[0] = fromhandle((HANDLE)s);
  p[1] = fromhandle((HANDLE)c);
  return 0;
wsafail:
  err = lastwsaerr();
fail:
  if (s != INVALID_SOCKET) closesocket(s);
  if (c != INVALID_SOCKET) closesocket(c);
  closesocket(l);
  return err;
}


int hp_check (hp_os h) {
  HANDLE x;
  DWORD flags;
  int err = tohandle(h, &x);
  if (err != 0)
    return err;
  return GetHandleInformation(x, &flags) ? 0 : lasterr();
}


int hp_noinherit (hp_os h) {
  HANDLE x;
  int err = tohandle(h, &x);
  if (err != 0)
    return err;
  return SetHandleInformation(x, HANDLE_FLAG_INHERIT, 0) ? 0 : lasterr();
}


/* Sockets must go through closesocket so Winsock forgets them too. */
int hp_close (hp_os h) {
  HANDLE x;
  int err = tohandle(h, &x);
  if (err != 0)
    return err;
  if (is_socket(x))
    return closesocket((SOCKET)x) == 0 ? 0 : lastwsaerr();
  return CloseHandle(x) ? 0 : lasterr();
}


/*
** A socket of our own for the one in info (which WSADuplicateSocket made
** for this process), non-inheritable unless asked otherwise.  The flag
** alone is not trusted: wine ignores the flags for such sockets.
*/
static int take_socket (WSAPROTOCOL_INFOW *info, int inherit, HANDLE *out) {
  SOCKET s = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO,
                        FROM_PROTOCOL_INFO, info, 0,
                        WSA_FLAG_OVERLAPPED |
                        (inherit ? 0 : WSA_FLAG_NO_HANDLE_INHERIT));
  if (s == INVALID_SOCKET)
    return lastwsaerr();
  if (!SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT,
                            inherit ? HANDLE_FLAG_INHERIT : 0)) {
    int err = lasterr();
    closesocket(s);
    return err;
  }
  *out = (HANDLE)s;
  return 0;
}

/* A copy of x in this process, by Winsock for a socket. */
static int dup_local (HANDLE x, int inherit, HANDLE *out) {
  if (is_socket(x)) {
    WSAPROTOCOL_INFOW info;
    if (WSADuplicateSocketW((SOCKET)x, GetCurrentProcessId(), &info) != 0)
      return lastwsaerr();
    return take_socket(&info, inherit, out);
  }
  if (!DuplicateHandle(GetCurrentProcess(), x, GetCurrentProcess(), out,
                       0, inherit ? TRUE : FALSE, DUPLICATE_SAME_ACCESS))
    return lasterr();
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
    return lastwsaerr();
  return 0;
}

static int socket_io (SOCKET s, int writing, void *buf, DWORD k,
                      size_t *done) {
  int r, err;
  for (;;) {
    r = writing ? send(s, (const char *)buf, (int)k, 0)
                : recv(s, (char *)buf, (int)k, 0);
    if (r != SOCKET_ERROR) {
      *done = (size_t)r;
      return 0;
    }
    if (WSAGetLastError() != WSAEWOULDBLOCK)
      return lastwsaerr();
    if ((err = waitsocket(s, writing)) != 0)
      return err;
  }
}


/*
** One ReadFile or WriteFile: 0, or the error code as it is.  *n gets the
** bytes moved, also with ERROR_MORE_DATA.  An overlapped handle gets an
** OVERLAPPED and an event of its own, and the call waits for it; a disk
** file opened so has no file position to go on, so it is refused.
*/
static int file_io (HANDLE x, int writing, void *buf, DWORD k, DWORD *n) {
  OVERLAPPED o;
  BOOL ok;
  int err = 0;
  *n = 0;
  if (!is_overlapped(x)) {
    ok = writing ? WriteFile(x, buf, k, n, NULL) : ReadFile(x, buf, k, n, NULL);
    return ok ? 0 : lasterr();
  }
  if (GetFileType(x) == FILE_TYPE_DISK)
    return ERROR_NOT_SUPPORTED;
  memset(&o, 0, sizeof(o));
  if ((o.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL)
    return lasterr();
  ok = writing ? WriteFile(x, buf, k, NULL, &o) : ReadFile(x, buf, k, NULL, &o);
  if (ok || GetLastError() == ERROR_IO_PENDING ||
      GetLastError() == ERROR_MORE_DATA)
    ok = GetOverlappedResult(x, &o, n, TRUE);
  if (!ok)
    err = lasterr();
  CloseHandle(o.hEvent);
  return err;
}

/* Whether a pipe handle is in PIPE_NOWAIT mode (which nothing should use). */
static int is_nowait (HANDLE x) {
  DWORD state;
  return GetNamedPipeHandleState(x, &state, NULL, NULL, NULL, NULL, 0) &&
         (state & PIPE_NOWAIT) != 0;
}


/*
** The end of a stream: a pipe whose write ends are all closed
** (ERROR_BROKEN_PIPE), a named pipe whose other end disconnected
** (ERROR_PIPE_NOT_CONNECTED) or is closing (ERROR_NO_DATA, on a pipe
** that waits), and files that say ERROR_HANDLE_EOF.  On a pipe, a read of
** 0 bytes that succeeds is a 0-byte message (or write), not the end, and
** ERROR_MORE_DATA is a message longer than the buffer: the bytes read are
** data, and the rest comes with the next read.  A PIPE_NOWAIT pipe with
** nothing in it says ERROR_NO_DATA at once; as hpass calls block, that
** waits, by polling, since such a pipe has nothing to wait on.
*/
int hp_read (hp_os h, void *buf, size_t n, size_t *done) {
  HANDLE x;
  DWORD k = n > MAXIO ? MAXIO : (DWORD)n, got;
  int err = tohandle(h, &x), kind;
  *done = 0;
  if (err != 0)
    return err;
  if ((kind = handle_kind(x)) == K_SOCKET)
    return socket_io((SOCKET)x, 0, buf, k, done);
  for (;;) {
    err = file_io(x, 0, buf, k, &got);
    if (err == ERROR_MORE_DATA)
      err = 0;
    else if (err == ERROR_BROKEN_PIPE || err == ERROR_HANDLE_EOF ||
             err == ERROR_PIPE_NOT_CONNECTED)
      return 0;
    else if (err == ERROR_NO_DATA && kind == K_PIPE) {
      if (!is_nowait(x))
        return 0;
      Sleep(1);
      continue;
    }
    if (err != 0)
      return err;
    if (got == 0 && k > 0 && kind == K_PIPE)
      continue;
    *done = got;
    return 0;
  }
}


/*
** Windows raises no signal on a broken pipe; only the codes need folding.
** A PIPE_NOWAIT pipe that is full takes 0 bytes and succeeds: that waits
** by polling too, rather than spin.
*/
int hp_write (hp_os h, const void *buf, size_t n, size_t *done) {
  HANDLE x;
  DWORD k = n > MAXIO ? MAXIO : (DWORD)n, put;
  int err = tohandle(h, &x), kind;
  *done = 0;
  if (err != 0)
    return err;
  if ((kind = handle_kind(x)) == K_SOCKET) {
    err = socket_io((SOCKET)x, 1, (void *)buf, k, done);
    if (err == WSAECONNRESET || err == WSAECONNABORTED || err == WSAESHUTDOWN)
      return hp_err_pipe();
    return err;
  }
  for (;;) {
    err = file_io(x, 1, (void *)buf, k, &put);
    if (err == ERROR_BROKEN_PIPE || err == ERROR_NO_DATA ||
        err == ERROR_PIPE_NOT_CONNECTED)
      return hp_err_pipe();
    if (err != 0)
      return err;
    if (put == 0 && k > 0 && kind == K_PIPE) {
      Sleep(1);
      continue;
    }
    *done = put;
    return 0;
  }
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
    return lasterr();
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


/* Everything hp_spawn allocates, all of it before any OS resource. */
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
  if ((err = walloc(req->argv[0], &m->name, alloc, ud)) != 0 ||
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
    return lasterr();
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

/* }------------------------------------------------------ */


/* Index of h among the first n of list, or n. */
static size_t find_handle (const HANDLE *list, size_t n, HANDLE h) {
  size_t i;
  for (i = 0; i < n; i++)
    if (list[i] == h) break;
  return i;
}

static void add_handle (HANDLE *list, size_t *n, HANDLE h) {
  if (h != NULL && find_handle(list, *n, h) == *n)
    list[(*n)++] = h;
}

static HANDLE dup_of (const spawn_mem *m, size_t n, HANDLE h) {
  size_t i = find_handle(m->orig, n, h);
  return h != NULL && i < n ? m->dup[i] : NULL;
}


/*
** Only the listed handles reach the child, and a handle can only be listed
** when it is inheritable.  Flipping the caller's own handle to inheritable
** would let any CreateProcess running meanwhile in another thread (ours
** or some other library's, with bInheritHandles and no list) take it too,
** so the child gets inheritable duplicates instead (by Winsock for
** sockets), made here and closed again right after CreateProcessW.  The
** duplicates have other values than the caller's handles: those values
** are what hp_spawn appends to the command line and reports in
** req->child.
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
  req->failed = HP_FAIL_OTHER;
  if (req->argv == NULL || req->argv[0] == NULL ||
      strchr(req->argv[0], '"') != NULL)
    return hp_err_inval();
  for (argc = 0; req->argv[argc] != NULL; argc++) ;
  for (i = 0; i < req->nhandles; i++) {
    HANDLE x;
    if ((err = tohandle(req->handles[i], &x)) != 0) {
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
    if ((err = tohandle(req->stdio[i], &stdh[i])) != 0) {
      req->failed = HP_FAIL_STDIO;
      req->failed_index = i;
      return err;
    }
  }
  memset(&m, 0, sizeof(m));
  /* alloc may raise a Lua error: nothing must be open yet */
  if ((err = spawn_alloc(req, argc, &m, alloc, ud)) != 0)
    return err;
  /* a cwd that is not there would make a relative program look missing */
  if (m.cwd != NULL) {
    DWORD a = GetFileAttributesW(m.cwd);
    if (a == INVALID_FILE_ATTRIBUTES || !(a & FILE_ATTRIBUTE_DIRECTORY)) {
      req->failed = HP_FAIL_CWD;
      return a == INVALID_FILE_ATTRIBUTES ? lasterr() : ERROR_DIRECTORY;
    }
  }
  req->failed = HP_FAIL_EXEC;
  if ((err = find_prog(&m)) != 0)
    return err;
  if (is_batch(m.prog))
    return ERR_BATCH;
  req->failed = HP_FAIL_OTHER;

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
    if ((err = dup_local(m.orig[i], 1, &d)) == 0)
      m.list[nlist++] = m.dup[i] = d;
    else if (i < nreq)
      goto done;
  }

  /* The command line: the arguments, then the duplicates' values. */
  for (i = 0; i < argc + req->nhandles; i++) {
    if (i >= argc) {
      HANDLE x = (HANDLE)(uintptr_t)req->handles[i - argc];
      long long v = fromhandle(dup_of(&m, n, x));
      if (req->child != NULL) req->child[i - argc] = v;
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
      err = lasterr();
      goto done;
    }
    listed = 1;
    if (!UpdateProcThreadAttribute(m.attrs, 0,
                                   PROC_THREAD_ATTRIBUTE_HANDLE_LIST, m.list,
                                   nlist * sizeof(HANDLE), NULL, NULL)) {
      err = lasterr();
      goto done;
    }
    si.lpAttributeList = m.attrs;
    flags |= EXTENDED_STARTUPINFO_PRESENT;
  }
  if (m.env != NULL)
    flags |= CREATE_UNICODE_ENVIRONMENT;
  /* Without a list, inheriting would pass every inheritable handle. */
  if (!CreateProcessW(m.prog, m.cmd, NULL, NULL, nlist > 0 ? TRUE : FALSE,
                      flags, m.env, m.cwd, &si.StartupInfo, &pi)) {
    err = lasterr();
    /* ERROR_DIRECTORY: the working directory, not the program */
    req->failed = (m.cwd != NULL && err == ERROR_DIRECTORY)
                  ? HP_FAIL_CWD : HP_FAIL_EXEC;
    goto done;
  }
  req->failed = HP_FAIL_NONE;
  CloseHandle(pi.hThread);
  p->pid = (long long)pi.dwProcessId;
  p->sys = pi.hProcess;
  err = 0;
done:
  if (listed)
    DeleteProcThreadAttributeList(m.attrs);
  for (i = 0; i < n; i++)
    if (m.dup[i] != NULL) hp_close(fromhandle(m.dup[i]));
  return err;
}


/*
** A Windows process has no "signaled" end: TerminateProcess just sets the
** exit code, so every end is HP_EXITED with the full 32-bit code (unsigned:
** a crash reads 3221225477 = 0xC0000005, not a negative number).
*/
int hp_wait (hp_proc *p, int block, int *done, int *how, long long *code) {
  HANDLE h = (HANDLE)p->sys;
  DWORD r, st;
  *done = 0;
  if (h == NULL)
    return hp_err_srch();
  r = WaitForSingleObject(h, block ? INFINITE : 0);
  if (r == WAIT_TIMEOUT)
    return 0;
  if (r != WAIT_OBJECT_0)
    return lasterr();
  if (!GetExitCodeProcess(h, &st))
    return lasterr();
  CloseHandle(h);
  p->sys = NULL;
  *done = 1;
  *how = HP_EXITED;
  *code = (long long)st;
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
  HANDLE h = (HANDLE)p->sys;
  if (h == NULL)
    return hp_err_srch();
  if (sig < 0)
    return hp_err_inval();
  if (sig == 0)
    return 0;
  if (!TerminateProcess(h, (UINT)sig)) {
    int err = lasterr();
    if (WaitForSingleObject(h, 0) == WAIT_OBJECT_0)
      return 0;
    return err;
  }
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
** Windows has no signals to send, so a name stands for the exit code the
** child gets, with the numbers it has on Linux (TERM 15, KILL 9, ...):
** p:kill("TERM") then reads "exit", 15 on every system.  Only signals
** whose default action ends a process have a name here; STOP, CONT and
** the like would do something else entirely.
*/
int hp_signum (const char *name) {
  static const struct { const char *name; int sig; } sigs[] = {
    {"HUP", 1}, {"INT", 2}, {"QUIT", 3}, {"ABRT", 6}, {"KILL", 9},
    {"USR1", 10}, {"SEGV", 11}, {"USR2", 12}, {"PIPE", 13}, {"ALRM", 14},
    {"TERM", 15}, {NULL, 0}
  };
  int i;
  if (strncmp(name, "SIG", 3) == 0) name += 3;
  for (i = 0; sigs[i].name != NULL; i++)
    if (strcmp(name, sigs[i].name) == 0) return sigs[i].sig;
  return -1;
}

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
  if ((*err = tohandle(h, &x)) != 0)
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
    *err = lasterr();
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

/*
** {======================================================
** Passing handles to a running process
** =======================================================
*/

/*
** Windows has no SCM_RIGHTS.  A handle reaches another process through
** DuplicateHandle, and a socket through WSADuplicateSocket (Winsock must
** make the copy: a socket copied with DuplicateHandle may be unknown to
** Winsock in the target).  Both need the receiver's process id, and the
** peer of a loopback socket has none that can be learnt reliably (wine
** reports 0 for it), while a pid exchange on the channel itself would
** tangle with the user's own bytes.  So each message gets its own
** rendezvous, a one-instance named pipe:
**
**   sender    makes private, non-inheritable copies of the handles (they
**             outlive the caller's, which may be closed at once), creates
**             the pipe, writes the message and leaves a thread to serve
**             the pipe;
**   receiver  reads the message, opens the pipe, checks that the process
**             serving it is the sender the message names, and writes its
**             pid and the message's secret;
**   thread    checks the secret and that the pid is the client's as the
**             system reports it, copies each handle into that process
**             (WSADuplicateSocket for sockets, DuplicateHandle for the
**             rest), writes one record per handle, waits until they are
**             read and ends, closing its private copies.
**
** The message is 44 bytes: "hpH2", the sender's pid, the count (4 bytes
** each), 16 random bytes that name the pipe and 16 random bytes of
** secret.  A record is 'S' and a WSAPROTOCOL_INFOW, 'H' and the 8-byte
** handle value in the receiver, or 'E' and a 4-byte error code, after
** which nothing follows.  Integers are little-endian.
**
** Pipe names can be listed, so the name alone keeps no one out.  The
** pipe admits only this process's user, and a client that does not give
** the secret within HELLO_MS is dropped and the pipe waits again: other
** processes of the same user (which could take our handles with
** OpenProcess anyway) and anything they run at lower integrity can delay
** a message, but not take it.  Once the sender has exited, anyone may
** create a pipe of its name; the receiver's check of the server's pid
** keeps the secret (and the receiver's trust) from such a pipe.
**
** Hence the limits: the sender must still be running when the message is
** received, the receiver must run as the same user, and a message nobody
** receives keeps its thread and copies in the sender until it exits.
*/
#define MSGHEAD 44
#define NONCE 16
#define PIPENAME 64
#define HELLO 20         /* what the receiver writes: pid and secret */
#define HELLO_MS 5000    /* how long a client may take to write it */
#define BUSY_TRIES 4     /* times the receiver waits for a busy pipe */

static void put_le (unsigned char *p, unsigned long long v, int n) {
  int i;
  for (i = 0; i < n; i++, v >>= 8)
    p[i] = (unsigned char)(v & 0xff);
}

static unsigned long long get_le (const unsigned char *p, int n) {
  unsigned long long v = 0;
  while (n-- > 0)
    v = (v << 8) | p[n];
  return v;
}

static void pipe_name (wchar_t *out, unsigned long pid,
                       const unsigned char *nonce) {
  static const char hex[] = "0123456789abcdef";
  int i, k = swprintf(out, PIPENAME, L"\\\\.\\pipe\\hpass-%lu-", pid);
  for (i = 0; i < NONCE; i++) {
    out[k++] = (wchar_t)hex[nonce[i] >> 4];
    out[k++] = (wchar_t)hex[nonce[i] & 15];
  }
  out[k] = L'\0';
}

static int random_bytes (unsigned char *b, int n) {
  int i;
  for (i = 0; i < n; i += 4) {
    unsigned int r;
    if (rand_s(&r) != 0)
      return ERROR_GEN_FAILURE;
    put_le(b + i, r, 4);
  }
  return 0;
}


/* One message being served. */
typedef struct sendjob {
  HANDLE pipe;
  HANDLE event;    /* for the pipe's overlapped I/O */
  HMODULE module;  /* holds this DLL in memory while the thread runs */
  unsigned char secret[NONCE];
  size_t n;
  HANDLE h[HP_MAXFDS];  /* the private copies */
} sendjob;

static void free_job (sendjob *job) {
  size_t i;
  for (i = 0; i < job->n; i++)
    hp_close(fromhandle(job->h[i]));
  if (job->pipe != INVALID_HANDLE_VALUE)
    CloseHandle(job->pipe);
  if (job->event != NULL)
    CloseHandle(job->event);
  HeapFree(GetProcessHeap(), 0, job);
}


/*
** The thread's side of the pipe is overlapped, so that reading the hello
** can time out.  pipe_io moves all n bytes or fails; a read that times
** out is cancelled.
*/
static int pipe_io (sendjob *job, int writing, void *b, DWORD n, DWORD ms) {
  DWORD done = 0;
  while (done < n) {
    OVERLAPPED o;
    DWORD k = 0;
    BOOL ok;
    memset(&o, 0, sizeof(o));
    o.hEvent = job->event;
    ResetEvent(job->event);
    ok = writing ? WriteFile(job->pipe, (char *)b + done, n - done, NULL, &o)
                 : ReadFile(job->pipe, (char *)b + done, n - done, NULL, &o);
    if (!ok && GetLastError() != ERROR_IO_PENDING)
      return 0;
    if (WaitForSingleObject(job->event, ms) != WAIT_OBJECT_0) {
      CancelIo(job->pipe);
      GetOverlappedResult(job->pipe, &o, &k, TRUE);
      return 0;
    }
    if (!GetOverlappedResult(job->pipe, &o, &k, FALSE) || k == 0)
      return 0;
    done += k;
  }
  return 1;
}

/*
** Wait for a client; 0 when the pipe is broken for good.  A client that
** came and went before we waited (ERROR_NO_DATA) only needs a disconnect.
*/
static int pipe_accept (sendjob *job) {
  for (;;) {
    OVERLAPPED o;
    DWORD k;
    memset(&o, 0, sizeof(o));
    o.hEvent = job->event;
    ResetEvent(job->event);
    if (ConnectNamedPipe(job->pipe, &o))
      return 1;
    switch (GetLastError()) {
      case ERROR_PIPE_CONNECTED:
        return 1;
      case ERROR_IO_PENDING:
        return GetOverlappedResult(job->pipe, &o, &k, TRUE);
      case ERROR_NO_DATA:
        if (DisconnectNamedPipe(job->pipe)) continue;
        return 0;
      default:
        return 0;
    }
  }
}

/* Comparing every byte: the time taken tells nothing about the secret. */
static int same_secret (const unsigned char *a, const unsigned char *b) {
  unsigned char d = 0;
  int i;
  for (i = 0; i < NONCE; i++)
    d |= (unsigned char)(a[i] ^ b[i]);
  return d == 0;
}


/*
** The records for process pid.  A failure is reported to the receiver as
** an 'E' record; the copies already made are its to close.
*/
static void hand_over (sendjob *job, DWORD pid) {
  HANDLE target = NULL;
  unsigned char rec[1 + sizeof(WSAPROTOCOL_INFOW)];
  size_t i;
  int err = 0;
  for (i = 0; i < job->n && err == 0; i++) {
    DWORD len;
    if (is_socket(job->h[i])) {
      WSAPROTOCOL_INFOW info;
      if (WSADuplicateSocketW((SOCKET)job->h[i], pid, &info) != 0) {
        err = lastwsaerr();
        break;
      }
      rec[0] = 'S';
      memcpy(rec + 1, &info, sizeof(info));
      len = 1 + sizeof(info);
    }
    else {
      HANDLE v;
      if (target == NULL &&
          (target = OpenProcess(PROCESS_DUP_HANDLE, FALSE, pid)) == NULL) {
        err = lasterr();
        break;
      }
      if (!DuplicateHandle(GetCurrentProcess(), job->h[i], target, &v, 0,
                           FALSE, DUPLICATE_SAME_ACCESS)) {
        err = lasterr();
        break;
      }
      rec[0] = 'H';
      put_le(rec + 1, (unsigned long long)fromhandle(v), 8);
      len = 9;
    }
    if (!pipe_io(job, 1, rec, len, INFINITE))
      err = -1;  /* the receiver has gone */
  }
  if (err > 0) {
    rec[0] = 'E';
    put_le(rec + 1, (unsigned long long)err, 4);
    pipe_io(job, 1, rec, 5, INFINITE);
  }
  /* Wait until everything is read: closing first could discard it. */
  FlushFileBuffers(job->pipe);
  if (target != NULL)
    CloseHandle(target);
}

static DWORD WINAPI serve (LPVOID arg) {
  sendjob *job = (sendjob *)arg;
  HMODULE module = job->module;
  unsigned char hello[HELLO];
  while (pipe_accept(job)) {
    if (pipe_io(job, 0, hello, HELLO, HELLO_MS) &&
        same_secret(hello + 4, job->secret)) {
      ULONG pid = 0;
      /*
      ** The handles go to the process the system says is the client, and
      ** to none when it cannot say: the pid in the hello is only the
      ** client's claim.
      */
      if (GetNamedPipeClientProcessId(job->pipe, &pid) && pid != 0 &&
          pid == (ULONG)get_le(hello, 4)) {
        hand_over(job, (DWORD)pid);
        break;
      }
    }
    DisconnectNamedPipe(job->pipe);  /* not the receiver: wait again */
  }
  free_job(job);
  FreeLibraryAndExitThread(module, 0);
  return 0;
}


/*
** The thread runs code of this DLL after the Lua state that loaded it may
** have closed and unloaded it: it holds a reference of its own, dropped
** by FreeLibraryAndExitThread.
*/
static int start_serving (sendjob *job) {
  HANDLE thread;
  int err;
  if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
                          (LPCWSTR)(void *)serve, &job->module))
    return lasterr();
  thread = CreateThread(NULL, 0, serve, job, 0, NULL);
  if (thread == NULL) {
    err = lasterr();
    FreeLibrary(job->module);
    return err;
  }
  CloseHandle(thread);
  return 0;
}


/* A security descriptor whose DACL admits this process's user alone. */
typedef struct useronly {
  SECURITY_ATTRIBUTES sa;
  SECURITY_DESCRIPTOR sd;
  union { TOKEN_USER user; unsigned char b[128]; } tok;
  union { ACL acl; unsigned char b[128]; } dacl;
} useronly;

static int user_only (useronly *u) {
  HANDLE token;
  DWORD len;
  BOOL ok;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
    return lasterr();
  ok = GetTokenInformation(token, TokenUser, &u->tok, sizeof(u->tok), &len);
  CloseHandle(token);
  if (!ok ||
      !InitializeAcl(&u->dacl.acl, sizeof(u->dacl), ACL_REVISION) ||
      !AddAccessAllowedAce(&u->dacl.acl, ACL_REVISION, GENERIC_ALL,
                           u->tok.user.User.Sid) ||
      !InitializeSecurityDescriptor(&u->sd, SECURITY_DESCRIPTOR_REVISION) ||
      !SetSecurityDescriptorDacl(&u->sd, TRUE, &u->dacl.acl, FALSE))
    return lasterr();
  u->sa.nLength = sizeof(u->sa);
  u->sa.lpSecurityDescriptor = &u->sd;
  u->sa.bInheritHandle = FALSE;
  return 0;
}

/* A job with its pipe; the message's name and secret go to msg. */
static int new_job (sendjob **out, unsigned char *msg) {
  sendjob *job = (sendjob *)HeapAlloc(GetProcessHeap(), 0, sizeof(*job));
  wchar_t name[PIPENAME];
  useronly u;
  int err;
  if (job == NULL)
    return ERROR_NOT_ENOUGH_MEMORY;
  job->n = 0;
  job->pipe = INVALID_HANDLE_VALUE;
  job->event = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (job->event == NULL) err = lasterr();
  else if ((err = random_bytes(msg + 12, NONCE)) == 0 &&
           (err = random_bytes(job->secret, NONCE)) == 0 &&
           (err = user_only(&u)) == 0) {
    memcpy(msg + 12 + NONCE, job->secret, NONCE);
    pipe_name(name, GetCurrentProcessId(), msg + 12);
    /* FIRST_PIPE_INSTANCE: fail rather than join a pipe someone made */
    job->pipe = CreateNamedPipeW(name,
        PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE |
        FILE_FLAG_OVERLAPPED,
        PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
        PIPE_REJECT_REMOTE_CLIENTS, 1, 4096, 4096, 0, &u.sa);
    if (job->pipe == INVALID_HANDLE_VALUE)
      err = lasterr();
  }
  if (err != 0) {
    free_job(job);
    return err;
  }
  *out = job;
  return 0;
}


int hp_sendfds (hp_os chan, const hp_os *h, size_t n,
                hp_alloc alloc, void *ud) {
  unsigned char msg[MSGHEAD];
  size_t sent = 0;
  sendjob *job;
  int err;
  (void)alloc; (void)ud;
  if (n == 0 || n > HP_MAXFDS)
    return hp_err_inval();
  if ((err = new_job(&job, msg)) != 0)
    return err;
  for (job->n = 0; job->n < n; job->n++) {
    HANDLE x;
    if ((err = tohandle(h[job->n], &x)) != 0 ||
        (err = dup_local(x, 0, &job->h[job->n])) != 0) {
      free_job(job);
      return err;
    }
  }
  memcpy(msg, "hpH2", 4);
  put_le(msg + 4, GetCurrentProcessId(), 4);
  put_le(msg + 8, n, 4);
  while (sent < MSGHEAD && err == 0) {
    size_t done;
    err = hp_write(chan, msg + sent, MSGHEAD - sent, &done);
    sent += done;
  }
  /*
  ** Only a message that went out whole gets its thread.  Otherwise, and
  ** if the thread cannot start, closing the pipe makes a receiver fail
  ** at once instead of waiting for handles that never come.
  */
  if (err == 0)
    err = start_serving(job);
  if (err != 0)
    free_job(job);
  return err;
}


/* Exactly n bytes, or ERROR_INVALID_DATA if the stream ends first. */
static int read_full (hp_os chan, unsigned char *b, size_t n, size_t *got) {
  *got = 0;
  while (*got < n) {
    size_t done;
    int err = hp_read(chan, b + *got, n - *got, &done);
    if (err != 0) return err;
    if (done == 0) return ERROR_INVALID_DATA;
    *got += done;
  }
  return 0;
}

/* The receiver's side of the pipe is a plain blocking handle. */
static int read_all (HANDLE f, void *b, DWORD n) {
  DWORD done = 0, k;
  while (done < n) {
    if (!ReadFile(f, (char *)b + done, n - done, &k, NULL) || k == 0)
      return 0;
    done += k;
  }
  return 1;
}

/*
** Open the sender's pipe.  It has one instance, busy while some other
** client holds it (for at most HELLO_MS, unless that client is the
** receiver of the message): wait for it a few times.
*/
static int open_pipe (const wchar_t *name, HANDLE *out) {
  int tries;
  for (tries = 0; ; tries++) {
    *out = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                       OPEN_EXISTING,
                       SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    if (*out != INVALID_HANDLE_VALUE)
      return 0;
    if (GetLastError() != ERROR_PIPE_BUSY || tries == BUSY_TRIES)
      return lasterr();
    WaitNamedPipeW(name, 2 * HELLO_MS);
  }
}

/* ERROR_ACCESS_DENIED unless the pipe is served by process pid. */
static int check_server (HANDLE pipe, ULONG pid) {
  ULONG server = 0;
  if (!GetNamedPipeServerProcessId(pipe, &server))
    return lasterr();
  return server == pid ? 0 : ERROR_ACCESS_DENIED;
}

/*
** Take the records from the sender's pipe.  Every handle a record brings
** is already ours, so each is kept (up to max) or closed, whatever fails
** on the way: the first error is the result.
*/
static int take_records (HANDLE pipe, size_t count, hp_os *h, size_t max,
                         size_t *kept) {
  unsigned char rec[1 + sizeof(WSAPROTOCOL_INFOW)];
  size_t i;
  int err = 0;
  for (i = 0; i < count; i++) {
    WSAPROTOCOL_INFOW info;
    HANDLE x;
    DWORD body;
    int e = 0;
    if (!read_all(pipe, rec, 1))
      e = ERROR_BROKEN_PIPE;
    else if ((body = rec[0] == 'S' ? sizeof(info) : rec[0] == 'H' ? 8 :
                     rec[0] == 'E' ? 4 : 0) == 0)
      e = ERROR_INVALID_DATA;
    else if (!read_all(pipe, rec + 1, body))
      e = ERROR_BROKEN_PIPE;
    else if (rec[0] == 'E' && (e = (int)get_le(rec + 1, 4)) == 0)
      e = ERROR_GEN_FAILURE;
    if (e != 0)  /* no more records come */
      return err != 0 ? err : e;
    if (rec[0] == 'H')
      x = (HANDLE)(uintptr_t)get_le(rec + 1, 8);
    else {
      memcpy(&info, rec + 1, sizeof(info));  /* rec + 1 is not aligned */
      if ((e = take_socket(&info, 0, &x)) != 0) {
        if (err == 0) err = e;
        continue;  /* the next records still bring handles */
      }
    }
    if (*kept < max)
      h[(*kept)++] = fromhandle(x);
    else
      hp_close(fromhandle(x));
  }
  return err;
}


int hp_recvfds (hp_os chan, hp_os *h, size_t max, size_t *n,
                hp_alloc alloc, void *ud) {
  unsigned char msg[MSGHEAD], hello[HELLO];
  wchar_t name[PIPENAME];
  size_t count, got, i, kept = 0;
  HANDLE pipe;
  DWORD done;
  int err;
  (void)alloc; (void)ud;
  *n = 0;
  err = read_full(chan, msg, MSGHEAD, &got);
  if (err == ERROR_INVALID_DATA && got == 0)
    return 0;  /* the peer closed between messages */
  if (err != 0)
    return err;
  count = (size_t)get_le(msg + 8, 4);
  if (memcmp(msg, "hpH2", 4) != 0 || count == 0 || count > HP_MAXFDS)
    return ERROR_INVALID_DATA;
  pipe_name(name, (unsigned long)get_le(msg + 4, 4), msg + 12);
  if ((err = open_pipe(name, &pipe)) != 0)
    return err;
  /*
  ** Once the sender has exited, any local process can create a pipe of
  ** that name: the secret goes only to the process the message names.
  */
  if ((err = check_server(pipe, (ULONG)get_le(msg + 4, 4))) != 0) {
    CloseHandle(pipe);
    return err;
  }
  put_le(hello, GetCurrentProcessId(), 4);
  memcpy(hello + 4, msg + 12 + NONCE, NONCE);
  if (!WriteFile(pipe, hello, HELLO, &done, NULL) || done != HELLO)
    err = lasterr();
  if (err == 0)
    err = take_records(pipe, count, h, max, &kept);
  CloseHandle(pipe);
  if (err == 0 && count > max)
    err = WSAEMSGSIZE;
  if (err != 0) {
    for (i = 0; i < kept; i++) hp_close(h[i]);
    return err;
  }
  *n = kept;
  return 0;
}

/* }====================================================== */

#endif
