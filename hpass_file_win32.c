/*
** hpass_file_win32.c - Lua files on Windows: the hp_f* functions of
** hpass_sys.h, through the C runtime Lua itself uses.
**
** The whole file is empty on other platforms, so a build that lists every
** source file still works there.
*/
#ifdef _WIN32

#include "hpass_win32.h"


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
** Lua files are refused (HPW_ERR_CRT) rather than read as foreign structs.
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
    return HPW_ERR_CRT;
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
    return HPW_ERR_CRT;
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
    *err = HPW_ERR_CRT;
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
