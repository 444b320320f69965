/*
** testaid.c - Windows-only helpers for tests/windows, never shipped.
**
** The tests need a few things hpass rightly does not offer: a handle the
** parent has made inheritable on purpose (to show that hp_spawn still
** keeps it from the child), a CreateProcess that inherits everything (to
** show that the leak test would notice a leak), the UTF-16 command line
** as the child really got it, a directory to create, whether Winsock
** knows a handle as a socket, and what another system would tell hpass
** (fake).
** tools/test-windows.sh builds it as testaid.dll next to lua.exe.
*/
#ifdef _WIN32

#include <winsock2.h>
#include <windows.h>
#include <shellapi.h>

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "hpass_sys.h"


/* fail, message, code from GetLastError */
static int winerror (lua_State *L) {
  DWORD e = GetLastError();
  luaL_pushfail(L);
  lua_pushfstring(L, "windows error %d", (int)e);
  lua_pushinteger(L, (lua_Integer)e);
  return 3;
}

static HANDLE checkhandle (lua_State *L, int i) {
  return (HANDLE)(intptr_t)luaL_checkinteger(L, i);
}


/* UTF-16 of a UTF-8 string, kept alive as a userdata on the stack. */
static wchar_t *towide (lua_State *L, const char *s) {
  int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
  wchar_t *w;
  if (n == 0) luaL_error(L, "invalid utf-8");
  w = (wchar_t *)lua_newuserdatauv(L, (size_t)n * sizeof(wchar_t), 0);
  MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n);
  return w;
}

static void pushutf8 (lua_State *L, const wchar_t *w) {
  int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
  char *s;
  if (n == 0) luaL_error(L, "invalid utf-16");
  s = (char *)lua_newuserdatauv(L, (size_t)n, 0);
  WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
  lua_pushstring(L, s);
  lua_remove(L, -2);
}


/* setinherit(h, on): flip HANDLE_FLAG_INHERIT of any handle value. */
static int ta_setinherit (lua_State *L) {
  HANDLE h = checkhandle(L, 1);
  DWORD on = lua_toboolean(L, 2) ? HANDLE_FLAG_INHERIT : 0;
  if (!SetHandleInformation(h, HANDLE_FLAG_INHERIT, on)) return winerror(L);
  lua_pushboolean(L, 1);
  return 1;
}


/* inheritable(h): true/false, or fail when h is no handle. */
static int ta_inheritable (lua_State *L) {
  DWORD flags;
  if (!GetHandleInformation(checkhandle(L, 1), &flags)) return winerror(L);
  lua_pushboolean(L, (flags & HANDLE_FLAG_INHERIT) != 0);
  return 1;
}


/*
** spawn_all(cmdline): start cmdline inheriting every inheritable handle
** (no handle list), wait, and return its exit code: the old, leaky way.
*/
static int ta_spawn_all (lua_State *L) {
  wchar_t *cmd = towide(L, luaL_checkstring(L, 1));
  int nowait = lua_toboolean(L, 2);
  STARTUPINFOW si;
  PROCESS_INFORMATION pi;
  DWORD code;
  ZeroMemory(&si, sizeof(si));
  si.cb = sizeof(si);
  if (!CreateProcessW(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi))
    return winerror(L);
  CloseHandle(pi.hThread);
  if (nowait) {  /* the process handle, for waitproc */
    lua_pushinteger(L, (lua_Integer)(intptr_t)pi.hProcess);
    return 1;
  }
  WaitForSingleObject(pi.hProcess, INFINITE);
  GetExitCodeProcess(pi.hProcess, &code);
  CloseHandle(pi.hProcess);
  lua_pushinteger(L, (lua_Integer)code);
  return 1;
}

/* waitproc(h): wait for a process from spawn_all(cmd, true), its exit code. */
static int ta_waitproc (lua_State *L) {
  HANDLE h = checkhandle(L, 1);
  DWORD code = 0;
  WaitForSingleObject(h, INFINITE);
  GetExitCodeProcess(h, &code);
  CloseHandle(h);
  lua_pushinteger(L, (lua_Integer)code);
  return 1;
}


/* argvw(): this process's command line split by CommandLineToArgvW. */
static int ta_argvw (lua_State *L) {
  int n, i;
  wchar_t **a = CommandLineToArgvW(GetCommandLineW(), &n);
  if (a == NULL) return winerror(L);
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    pushutf8(L, a[i]);
    lua_rawseti(L, -2, i);
  }
  LocalFree(a);
  return 1;
}


/* cmdline(): the raw command line, for messages. */
static int ta_cmdline (lua_State *L) {
  pushutf8(L, GetCommandLineW());
  return 1;
}


/* mkdir(path): true when it exists afterwards. */
static int ta_mkdir (lua_State *L) {
  wchar_t *p = towide(L, luaL_checkstring(L, 1));
  if (!CreateDirectoryW(p, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)
    return winerror(L);
  lua_pushboolean(L, 1);
  return 1;
}


/* getenv(name): the UTF-16 environment as UTF-8 (os.getenv is ANSI). */
static int ta_getenv (lua_State *L) {
  wchar_t *name = towide(L, luaL_checkstring(L, 1));
  wchar_t buf[4096];
  DWORD n = GetEnvironmentVariableW(name, buf, 4096);
  if (n == 0 || n >= 4096) {
    luaL_pushfail(L);
    return 1;
  }
  pushutf8(L, buf);
  return 1;
}


/* setenv(name, value): set in this process (value nil: remove). */
static int ta_setenv (lua_State *L) {
  wchar_t *name = towide(L, luaL_checkstring(L, 1));
  wchar_t *value = lua_isnoneornil(L, 2) ? NULL
                                         : towide(L, luaL_checkstring(L, 2));
  if (!SetEnvironmentVariableW(name, value)) return winerror(L);
  lua_pushboolean(L, 1);
  return 1;
}


/* envnames(): the names in this process's environment block, in order. */
static int ta_envnames (lua_State *L) {
  wchar_t *block = GetEnvironmentStringsW(), *e;
  int i = 0;
  if (block == NULL) return winerror(L);
  lua_newtable(L);
  for (e = block; *e != L'\0'; e += wcslen(e) + 1) {
    wchar_t *eq = wcschr(e + 1, L'=');
    wchar_t save = L'\0';
    if (eq != NULL) { save = *eq; *eq = L'\0'; }
    pushutf8(L, e);
    if (eq != NULL) *eq = save;
    lua_rawseti(L, -2, ++i);
  }
  FreeEnvironmentStringsW(block);
  return 1;
}


/* alive(pid): whether that process is still running. */
static int ta_alive (lua_State *L) {
  HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)luaL_checkinteger(L, 1));
  if (h == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushboolean(L, WaitForSingleObject(h, 0) == WAIT_TIMEOUT);
  CloseHandle(h);
  return 1;
}


/* terminate(pid): end that process (a test's clean-up). */
static int ta_terminate (lua_State *L) {
  HANDLE h = OpenProcess(PROCESS_TERMINATE, FALSE,
                         (DWORD)luaL_checkinteger(L, 1));
  BOOL ok;
  if (h == NULL) return winerror(L);
  ok = TerminateProcess(h, 1);
  CloseHandle(h);
  if (!ok) return winerror(L);
  lua_pushboolean(L, 1);
  return 1;
}


/* cwd(): the current directory as UTF-8. */
static int ta_cwd (lua_State *L) {
  wchar_t buf[MAX_PATH + 1];
  DWORD n = GetCurrentDirectoryW(MAX_PATH + 1, buf);
  if (n == 0 || n > MAX_PATH) return winerror(L);
  pushutf8(L, buf);
  return 1;
}


/* writefile(path, data): io.open takes ANSI names, this takes UTF-8. */
static int ta_writefile (lua_State *L) {
  wchar_t *p = towide(L, luaL_checkstring(L, 1));
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  DWORD put;
  BOOL ok;
  HANDLE h = CreateFileW(p, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                         FILE_ATTRIBUTE_NORMAL, NULL);
  if (h == INVALID_HANDLE_VALUE) return winerror(L);
  ok = WriteFile(h, data, (DWORD)len, &put, NULL);
  CloseHandle(h);
  if (!ok) return winerror(L);
  lua_pushboolean(L, 1);
  return 1;
}


/*
** issocket(h): whether Winsock knows h as a socket in this process -- what
** a socket copied without Winsock may not be.
*/
static int ta_issocket (lua_State *L) {
  int type, len = (int)sizeof(type);
  SOCKET s = (SOCKET)checkhandle(L, 1);
  lua_pushboolean(L, getsockopt(s, SOL_SOCKET, SO_TYPE, (char *)&type,
                                &len) == 0 && type == SOCK_STREAM);
  return 1;
}


/*
** in_new_state(code, arg): run code in a Lua state of its own, with arg as
** its "...", and close that state, so that modules it loaded are unloaded
** unless something holds them.  Returns true, or fail and the message.
*/
static int ta_in_new_state (lua_State *L) {
  const char *code = luaL_checkstring(L, 1);
  const char *arg = luaL_checkstring(L, 2);
  lua_State *N = luaL_newstate();
  int ok;
  if (N == NULL) return luaL_error(L, "no memory");
  luaL_openlibs(N);
  ok = luaL_loadstring(N, code) == LUA_OK;
  if (ok) {
    lua_pushstring(N, arg);
    ok = lua_pcall(N, 1, 0, 0) == LUA_OK;
  }
  if (!ok) {
    luaL_pushfail(L);
    lua_pushstring(L, lua_tostring(N, -1));
    lua_close(N);
    return 2;
  }
  lua_close(N);
  lua_pushboolean(L, 1);
  return 1;
}


/*
** The client side of a named pipe, to play a stranger who found the pipe
** of a message: pipe_open(name) gives a handle number, pipe_write(h, s)
** true, pipe_read(h, n) up to n bytes ("" when the server has hung up),
** pipe_close(h) nothing.  Failures give fail, message, code.
*/
static int ta_pipe_open (lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  HANDLE h;
  lua_pushfstring(L, "\\\\.\\pipe\\%s", name);
  h = CreateFileW(towide(L, lua_tostring(L, -1)), GENERIC_READ | GENERIC_WRITE,
                  0, NULL, OPEN_EXISTING, 0, NULL);
  if (h == INVALID_HANDLE_VALUE) return winerror(L);
  lua_pushinteger(L, (lua_Integer)(intptr_t)h);
  return 1;
}

/* pipe_serve(name): the server end of a new byte-mode pipe of that name. */
static int ta_pipe_serve (lua_State *L) {
  HANDLE h;
  lua_pushfstring(L, "\\\\.\\pipe\\%s", luaL_checkstring(L, 1));
  h = CreateNamedPipeW(towide(L, lua_tostring(L, -1)), PIPE_ACCESS_DUPLEX,
                       PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
                       1, 4096, 4096, 0, NULL);
  if (h == INVALID_HANDLE_VALUE) return winerror(L);
  lua_pushinteger(L, (lua_Integer)(intptr_t)h);
  return 1;
}

static int ta_pipe_write (lua_State *L) {
  HANDLE h = checkhandle(L, 1);
  size_t n;
  const char *b = luaL_checklstring(L, 2, &n);
  DWORD done;
  if (!WriteFile(h, b, (DWORD)n, &done, NULL)) return winerror(L);
  lua_pushboolean(L, done == n);
  return 1;
}

static int ta_pipe_read (lua_State *L) {
  HANDLE h = checkhandle(L, 1);
  char b[1024];
  DWORD n = (DWORD)luaL_checkinteger(L, 2), done = 0;
  if (n > sizeof(b)) n = sizeof(b);
  if (!ReadFile(h, b, n, &done, NULL)) done = 0;
  lua_pushlstring(L, b, done);
  return 1;
}

static int ta_pipe_close (lua_State *L) {
  CloseHandle(checkhandle(L, 1));
  return 0;
}


/*
** msgpipe(flags, size): a named pipe, its server end and a client end, for
** the pipe edge cases hpass must survive.  flags: "m" message mode (both
** ends read messages), "o" the server end is overlapped.  size: the
** pipe's buffer in bytes.
*/
static int ta_msgpipe (lua_State *L) {
  static LONG serial;
  const char *flags = luaL_checkstring(L, 1);
  DWORD size = (DWORD)luaL_optinteger(L, 2, 4096);
  int msg = strchr(flags, 'm') != NULL, ovl = strchr(flags, 'o') != NULL;
  DWORD mode = msg ? PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE
                   : PIPE_TYPE_BYTE | PIPE_READMODE_BYTE;
  HANDLE srv, cli;
  wchar_t *name;
  lua_pushfstring(L, "\\\\.\\pipe\\hpass-test-%d-%d", (int)GetCurrentProcessId(),
                  (int)InterlockedIncrement(&serial));
  name = towide(L, lua_tostring(L, -1));
  srv = CreateNamedPipeW(name, PIPE_ACCESS_DUPLEX |
                         (ovl ? FILE_FLAG_OVERLAPPED : 0), mode | PIPE_WAIT,
                         1, size, size, 0, NULL);
  if (srv == INVALID_HANDLE_VALUE) return winerror(L);
  cli = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                    OPEN_EXISTING, 0, NULL);
  if (cli == INVALID_HANDLE_VALUE) {
    int r = winerror(L);
    CloseHandle(srv);
    return r;
  }
  if (msg) {
    DWORD m = PIPE_READMODE_MESSAGE;
    SetNamedPipeHandleState(cli, &m, NULL, NULL);
  }
  lua_pushinteger(L, (lua_Integer)(intptr_t)srv);
  lua_pushinteger(L, (lua_Integer)(intptr_t)cli);
  return 2;
}


/* setnowait(h): put a pipe handle in PIPE_NOWAIT mode (byte reads). */
static int ta_setnowait (lua_State *L) {
  DWORD m = PIPE_READMODE_BYTE | PIPE_NOWAIT;
  if (!SetNamedPipeHandleState(checkhandle(L, 1), &m, NULL, NULL))
    return winerror(L);
  lua_pushboolean(L, 1);
  return 1;
}


/* disconnect(h): DisconnectNamedPipe on a server end. */
static int ta_disconnect (lua_State *L) {
  if (!DisconnectNamedPipe(checkhandle(L, 1))) return winerror(L);
  lua_pushboolean(L, 1);
  return 1;
}


/*
** A thread that plays the slow other end of a pipe (or socket): after
** delay ms it writes data (if any), else reads until the end, counting
** the bytes.
** later(h, delay [, data]) starts it; joined(t) waits and gives the count.
*/
typedef struct later_job {
  HANDLE h;
  DWORD delay;
  size_t len, got;
  char data[1];
} later_job;

static DWORD WINAPI later_run (LPVOID arg) {
  later_job *j = (later_job *)arg;
  char b[65536];
  DWORD k, state;
  /* 0 bytes read from a pipe are a 0-byte message; from a socket, the end */
  int pipe = GetNamedPipeHandleState(j->h, &state, NULL, NULL, NULL, NULL, 0);
  Sleep(j->delay);
  if (j->len > 0) {
    WriteFile(j->h, j->data, (DWORD)j->len, &k, NULL);
    return 0;
  }
  /* a message longer than b comes in parts (ERROR_MORE_DATA) */
  for (;;) {
    BOOL ok = ReadFile(j->h, b, sizeof(b), &k, NULL);
    if ((!ok && GetLastError() != ERROR_MORE_DATA) || (ok && k == 0 && !pipe))
      return 0;
    j->got += k;
  }
}

static int ta_later (lua_State *L) {
  HANDLE h = checkhandle(L, 1);
  DWORD delay = (DWORD)luaL_checkinteger(L, 2);
  size_t len = 0;
  const char *data = luaL_optlstring(L, 3, "", &len);
  later_job *j = (later_job *)HeapAlloc(GetProcessHeap(), 0,
                                        sizeof(later_job) + len);
  HANDLE t;
  if (j == NULL) return luaL_error(L, "no memory");
  j->h = h; j->delay = delay; j->len = len; j->got = 0;
  memcpy(j->data, data, len);
  t = CreateThread(NULL, 0, later_run, j, 0, NULL);
  if (t == NULL) {
    HeapFree(GetProcessHeap(), 0, j);
    return winerror(L);
  }
  lua_pushinteger(L, (lua_Integer)(intptr_t)t);
  lua_pushlightuserdata(L, j);
  return 2;
}

static int ta_joined (lua_State *L) {
  HANDLE t = checkhandle(L, 1);
  later_job *j = (later_job *)lua_touserdata(L, 2);
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
  lua_pushinteger(L, (lua_Integer)j->got);
  HeapFree(GetProcessHeap(), 0, j);
  return 1;
}


/* cputime(): milliseconds of CPU this process has used, user + kernel. */
static int ta_cputime (lua_State *L) {
  FILETIME c, e, k, u;
  ULARGE_INTEGER a, b;
  if (!GetProcessTimes(GetCurrentProcess(), &c, &e, &k, &u)) return winerror(L);
  a.LowPart = k.dwLowDateTime; a.HighPart = k.dwHighDateTime;
  b.LowPart = u.dwLowDateTime; b.HighPart = u.dwHighDateTime;
  lua_pushinteger(L, (lua_Integer)((a.QuadPart + b.QuadPart) / 10000));
  return 1;
}


/*
** hpass's own stream functions, linked in here (from hpass_io_win32.c) so
** that a test can see what the binding will see: readahead(f) the bytes
** Lua's C runtime has read ahead of f's handle, take(f, n) up to n of them.
*/
static FILE *checkfile (lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  if (p->closef == NULL) luaL_argerror(L, 1, "closed file");
  return p->f;
}

static int ta_readahead (lua_State *L) {
  lua_pushinteger(L, (lua_Integer)hp_freadahead(checkfile(L)));
  return 1;
}

static int ta_take (lua_State *L) {
  FILE *f = checkfile(L);
  size_t n = (size_t)luaL_checkinteger(L, 2);
  char b[256];
  if (n > sizeof(b)) n = sizeof(b);
  lua_pushlstring(L, b, hp_ftake(f, b, n));
  return 1;
}


/*
** owncrt(): the file name of the C runtime this DLL was linked with: the
** module fflush comes from, by the import table entry mingw names
** __imp_fflush (&fflush itself is a jump stub inside this DLL).
*/
extern void *__imp_fflush;

static int ta_owncrt (lua_State *L) {
  HMODULE m = NULL;
  wchar_t w[MAX_PATH];
  DWORD n;
  if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                          GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                          (LPCWSTR)__imp_fflush, &m))
    return winerror(L);
  n = GetModuleFileNameW(m, w, MAX_PATH);
  if (n == 0 || n >= MAX_PATH) return winerror(L);
  pushutf8(L, wcsrchr(w, L'\\') != NULL ? wcsrchr(w, L'\\') + 1 : w);
  return 1;
}


/*
** {------------------------------------------------------
** What the system tells hpass, changed for one test
**
** fake(f, what, on) rewrites, in the module that holds the C function f
** (hpass/core.dll, given hpass.pipe), the import table entries of system
** calls, so that hpass sees what another system would tell it:
**   "socket"     getsockopt and ioctlsocket fail with WSAENOTSOCK, as for
**                a socket that Winsock does not report as one (a layered
**                provider's): every socket is then of a kind hpass does
**                not know;
**   "joblimits"  QueryInformationJobObject reads a job's limits as zero,
**                as wine does.
** on = false puts the real calls back.
** -------------------------------------------------------
*/

typedef int (WSAAPI *getsockopt_fn) (SOCKET, int, int, char *, int *);
typedef int (WSAAPI *ioctlsocket_fn) (SOCKET, long, u_long *);
typedef BOOL (WINAPI *queryjob_fn) (HANDLE, JOBOBJECTINFOCLASS, LPVOID, DWORD,
                                    LPDWORD);

static int WSAAPI fake_getsockopt (SOCKET s, int level, int name, char *v,
                                   int *len) {
  (void)s; (void)level; (void)name; (void)v; (void)len;
  WSASetLastError(WSAENOTSOCK);
  return SOCKET_ERROR;
}

static int WSAAPI fake_ioctlsocket (SOCKET s, long cmd, u_long *arg) {
  (void)s; (void)cmd; (void)arg;
  WSASetLastError(WSAENOTSOCK);
  return SOCKET_ERROR;
}

static queryjob_fn real_queryjob;

static BOOL WINAPI fake_queryjob (HANDLE job, JOBOBJECTINFOCLASS cls,
                                  LPVOID info, DWORD size, LPDWORD got) {
  if (cls == JobObjectBasicLimitInformation ||
      cls == JobObjectExtendedLimitInformation) {
    memset(info, 0, size);
    if (got != NULL) *got = size;
    return TRUE;
  }
  return real_queryjob(job, cls, info, size, got);
}

/* The fakes, and the real calls they stand for once found. */
static struct {
  const char *what, *name;
  void *fake, *real;
} fakes[] = {
  {"socket", "getsockopt", (void *)fake_getsockopt, NULL},
  {"socket", "ioctlsocket", (void *)fake_ioctlsocket, NULL},
  {"joblimits", "QueryInformationJobObject", (void *)fake_queryjob, NULL},
  {NULL, NULL, NULL, NULL}
};

/* The import table slot of module m for the function name, or NULL. */
static void **import_slot (HMODULE m, const char *name) {
  unsigned char *base = (unsigned char *)m;
  IMAGE_NT_HEADERS *nt = (IMAGE_NT_HEADERS *)
      (base + ((IMAGE_DOS_HEADER *)base)->e_lfanew);
  IMAGE_DATA_DIRECTORY *dir =
      &nt->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_IMPORT];
  IMAGE_IMPORT_DESCRIPTOR *d;
  if (dir->VirtualAddress == 0) return NULL;
  for (d = (IMAGE_IMPORT_DESCRIPTOR *)(base + dir->VirtualAddress);
       d->Name != 0; d++) {
    IMAGE_THUNK_DATA *names, *addrs;
    size_t i;
    if (d->OriginalFirstThunk == 0) continue;
    names = (IMAGE_THUNK_DATA *)(base + d->OriginalFirstThunk);
    addrs = (IMAGE_THUNK_DATA *)(base + d->FirstThunk);
    for (i = 0; names[i].u1.AddressOfData != 0; i++) {
      IMAGE_IMPORT_BY_NAME *by;
      if (IMAGE_SNAP_BY_ORDINAL(names[i].u1.Ordinal)) continue;
      by = (IMAGE_IMPORT_BY_NAME *)(base + names[i].u1.AddressOfData);
      if (strcmp((const char *)by->Name, name) == 0)
        return (void **)&addrs[i].u1.Function;
    }
  }
  return NULL;
}

static int ta_fake (lua_State *L) {
  lua_CFunction f = lua_tocfunction(L, 1);
  const char *what = luaL_checkstring(L, 2);
  int on = lua_toboolean(L, 3), i, found = 0;
  HMODULE m = NULL;
  luaL_argcheck(L, f != NULL, 1, "C function expected");
  if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                          GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                          (LPCWSTR)(void *)f, &m))
    return winerror(L);
  /* all or nothing: every import is found before any is rewritten */
  for (i = 0; fakes[i].what != NULL; i++)
    if (strcmp(fakes[i].what, what) == 0 &&
        import_slot(m, fakes[i].name) == NULL)
      return luaL_error(L, "the module does not import %s", fakes[i].name);
  for (i = 0; fakes[i].what != NULL; i++) {
    void **slot;
    DWORD old;
    if (strcmp(fakes[i].what, what) != 0) continue;
    found = 1;
    slot = import_slot(m, fakes[i].name);
    if (fakes[i].real == NULL) fakes[i].real = *slot;
    if (fakes[i].fake == (void *)fake_queryjob)
      real_queryjob = (queryjob_fn)fakes[i].real;
    if (!VirtualProtect(slot, sizeof(void *), PAGE_READWRITE, &old))
      return winerror(L);
    *slot = on ? fakes[i].fake : fakes[i].real;
    VirtualProtect(slot, sizeof(void *), old, &old);
  }
  luaL_argcheck(L, found, 2, "'socket' or 'joblimits' expected");
  lua_pushboolean(L, 1);
  return 1;
}


/*
** tcppair(): two connected loopback TCP sockets made by socket(), so
** opened for overlapped I/O (hpass's own are not), as handle numbers.
*/
static int ta_tcppair (lua_State *L) {
  WSADATA wd;
  SOCKET l, c, s;
  struct sockaddr_in a;
  int len = (int)sizeof(a);
  WSAStartup(MAKEWORD(2, 2), &wd);  /* counted: never undone, as hpass's */
  l = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (l == INVALID_SOCKET || bind(l, (struct sockaddr *)&a, len) != 0 ||
      getsockname(l, (struct sockaddr *)&a, &len) != 0 || listen(l, 1) != 0)
    return luaL_error(L, "tcppair: listener: %d", WSAGetLastError());
  c = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  if (c == INVALID_SOCKET ||
      connect(c, (struct sockaddr *)&a, (int)sizeof(a)) != 0 ||
      (s = accept(l, NULL, NULL)) == INVALID_SOCKET)
    return luaL_error(L, "tcppair: %d", WSAGetLastError());
  closesocket(l);
  lua_pushinteger(L, (lua_Integer)s);
  lua_pushinteger(L, (lua_Integer)c);
  return 2;
}

/* }------------------------------------------------------ */


/* ticks(): milliseconds since boot, for timing tests. */
static int ta_ticks (lua_State *L) {
  lua_pushinteger(L, (lua_Integer)GetTickCount64());
  return 1;
}


static int ta_sleep (lua_State *L) {
  Sleep((DWORD)luaL_checkinteger(L, 1));
  return 0;
}


/*
** A TCP socket on 127.0.0.1 (Lua has none here): tcp_listen() gives a
** listening socket and its port, tcp_accept(s) and tcp_connect(port) a
** connected socket; all as handle numbers, not inheritable.
*/
static SOCKET newsock (void) {
  return WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                    WSA_FLAG_OVERLAPPED | 0x80 /* WSA_FLAG_NO_HANDLE_INHERIT */);
}

static int wsaerror (lua_State *L) {
  int e = WSAGetLastError();
  luaL_pushfail(L);
  lua_pushfstring(L, "winsock error %d", e);
  lua_pushinteger(L, (lua_Integer)e);
  return 3;
}

static int ta_tcp_listen (lua_State *L) {
  struct sockaddr_in a;
  int len = (int)sizeof(a);
  SOCKET s = newsock();
  if (s == INVALID_SOCKET) return wsaerror(L);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 16) != 0 ||
      getsockname(s, (struct sockaddr *)&a, &len) != 0) {
    closesocket(s);
    return wsaerror(L);
  }
  lua_pushinteger(L, (lua_Integer)s);
  lua_pushinteger(L, (lua_Integer)ntohs(a.sin_port));
  return 2;
}

static int ta_tcp_accept (lua_State *L) {
  SOCKET s = accept((SOCKET)luaL_checkinteger(L, 1), NULL, NULL);
  if (s == INVALID_SOCKET) return wsaerror(L);
  SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
  lua_pushinteger(L, (lua_Integer)s);
  return 1;
}

static int ta_tcp_connect (lua_State *L) {
  struct sockaddr_in a;
  SOCKET s = newsock();
  if (s == INVALID_SOCKET) return wsaerror(L);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((unsigned short)luaL_checkinteger(L, 1));
  if (connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
    closesocket(s);
    return wsaerror(L);
  }
  lua_pushinteger(L, (lua_Integer)s);
  return 1;
}


/*
** ctrlevent(kind [, group]): GenerateConsoleCtrlEvent, kind "c" (Ctrl+C)
** or "break", to the processes of the console (group 0) or of a group.
*/
static int ta_ctrlevent (lua_State *L) {
  const char *k = luaL_checkstring(L, 1);
  DWORD ev = strcmp(k, "c") == 0 ? CTRL_C_EVENT : CTRL_BREAK_EVENT;
  if (!GenerateConsoleCtrlEvent(ev, (DWORD)luaL_optinteger(L, 2, 0)))
    return winerror(L);
  lua_pushboolean(L, 1);
  return 1;
}


/* allocconsole(): a console of this process's own (AllocConsole). */
static int ta_allocconsole (lua_State *L) {
  if (!AllocConsole()) return winerror(L);
  lua_pushboolean(L, 1);
  return 1;
}


static const luaL_Reg funcs[] = {
  {"allocconsole", ta_allocconsole},
  {"tcp_listen", ta_tcp_listen},
  {"tcp_accept", ta_tcp_accept},
  {"tcp_connect", ta_tcp_connect},
  {"ctrlevent", ta_ctrlevent},
  {"setinherit", ta_setinherit},
  {"inheritable", ta_inheritable},
  {"spawn_all", ta_spawn_all},
  {"waitproc", ta_waitproc},
  {"argvw", ta_argvw},
  {"cmdline", ta_cmdline},
  {"mkdir", ta_mkdir},
  {"getenv", ta_getenv},
  {"cwd", ta_cwd},
  {"alive", ta_alive},
  {"terminate", ta_terminate},
  {"setenv", ta_setenv},
  {"envnames", ta_envnames},
  {"writefile", ta_writefile},
  {"issocket", ta_issocket},
  {"in_new_state", ta_in_new_state},
  {"pipe_open", ta_pipe_open},
  {"pipe_serve", ta_pipe_serve},
  {"pipe_write", ta_pipe_write},
  {"pipe_read", ta_pipe_read},
  {"pipe_close", ta_pipe_close},
  {"msgpipe", ta_msgpipe},
  {"setnowait", ta_setnowait},
  {"disconnect", ta_disconnect},
  {"later", ta_later},
  {"joined", ta_joined},
  {"cputime", ta_cputime},
  {"readahead", ta_readahead},
  {"take", ta_take},
  {"owncrt", ta_owncrt},
  {"ticks", ta_ticks},
  {"fake", ta_fake},
  {"tcppair", ta_tcppair},
  {"sleep", ta_sleep},
  {NULL, NULL}
};

__declspec(dllexport) int luaopen_testaid (lua_State *L);

__declspec(dllexport) int luaopen_testaid (lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}

#endif
