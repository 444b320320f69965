/*
** lua_hpass.c - hpass, the Lua binding.
**
** Pipes and sockets as handle objects, children that inherit exactly the
** handles they are given, and a binary integer protocol over them.  All OS
** work goes through hpass_sys.h; this file checks arguments, owns the Lua
** objects and pushes results.
**
** Conventions (those of Lua's io library):
**   - misuse (wrong types, bad options, closed handles) raises an error;
**   - an OS failure returns fail, a message and the error code.
*/

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"

#include "hpass_sys.h"

#define HPASS_VERSION   "hpass 0.1.0"

#if defined(_WIN32)
#define HPASS_API __declspec(dllexport)
#elif defined(__GNUC__)
#define HPASS_API __attribute__((visibility("default")))
#else
#define HPASS_API
#endif

#define HANDLE_T    "hpass.handle"
#define PROCESS_T   "hpass.process"
#define ORPHANS     "hpass.orphans"   /* registry: pid -> true */
#define RUNNING     "hpass.running"   /* registry: process -> true, weak keys */

/* Default size of the buffer of a handle in "full" mode. */
#define DEFBUF      65536
/* Bytes read at a time by read_ints (as much as a pipe holds). */
#define CHUNK       65536
/* Bytes converted at a time by write_ints (on the C stack). */
#define WCHUNK      16384


/*
** {======================================================
** Compatibility with Lua 5.1, 5.2, 5.3 and LuaJIT
** =======================================================
*/

#if LUA_VERSION_NUM < 502

#define lua_rawlen(L,i)       lua_objlen(L, (i))
#if !defined(LUA_FILEHANDLE)
#define LUA_FILEHANDLE        "FILE*"   /* lualib.h in 5.1 and LuaJIT */
#endif

/*
** LuaJIT 2.1 has these two, Lua 5.1 does not.  The shims are used for
** both: Lua 5.1 and LuaJIT search the same lib/lua/5.1 folders, so a
** module built with either's headers gets loaded by the other, and it
** must then need nothing beyond the Lua 5.1 API.
*/
#define luaL_setfuncs       hpc_setfuncs
#define luaL_testudata      hpc_testudata

static void hpc_setfuncs (lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

static void *hpc_testudata (lua_State *L, int i, const char *tname) {
  void *p = lua_touserdata(L, i);
  if (p == NULL || !lua_getmetatable(L, i)) return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}

#endif

#if LUA_VERSION_NUM < 503
#define lua_isinteger(L,i)    0   /* all numbers are floats: checked below */
#endif

#if LUA_VERSION_NUM < 503
/*
** Before 5.3 luaL_checkinteger casts any number, and casting NaN, inf or
** a value out of range is undefined behaviour in C: accept only numbers
** with an exact integer value.
*/
#define luaL_checkinteger   hpc_checkinteger
#define luaL_optinteger     hpc_optinteger

static lua_Integer hpc_checkinteger (lua_State *L, int arg) {
  lua_Number d = luaL_checknumber(L, arg);
  if (d != d || d != floor(d) || d < -9007199254740992.0 ||
      d > 9007199254740992.0)
    luaL_argerror(L, arg, "number has no integer representation");
  return (lua_Integer)d;
}

static lua_Integer hpc_optinteger (lua_State *L, int arg, lua_Integer def) {
  return lua_isnoneornil(L, arg) ? def : hpc_checkinteger(L, arg);
}
#endif

#if LUA_VERSION_NUM < 504
#define lua_newuserdatauv(L,s,n)  lua_newuserdata(L, (s))
#define luaL_pushfail(L)          lua_pushnil(L)
#endif

/* length of a table argument, without metamethods */
static size_t rawlen (lua_State *L, int i) {
  return (size_t)lua_rawlen(L, i);
}

/*
** Lua files: since 5.2 a luaL_Stream whose closef is NULL once closed; in
** 5.1 and LuaJIT a userdata whose first field is the FILE *, NULL once
** closed.
*/
static FILE *tofilep (lua_State *L, int i, int *closed) {
  void *u = luaL_testudata(L, i, LUA_FILEHANDLE);
  if (u == NULL) return NULL;
#if LUA_VERSION_NUM >= 502
  *closed = (((luaL_Stream *)u)->closef == NULL);
  return ((luaL_Stream *)u)->f;
#else
  *closed = (*(FILE **)u == NULL);
  return *(FILE **)u;
#endif
}

/*
** newfile pushes a new Lua file that is closed for now, so that nothing
** leaks if what follows fails; setfile then gives it its stream.  newfile
** returns NULL, with fail, message and code pushed, when no file can be
** made.
*/
#if LUA_VERSION_NUM >= 502

/* closef of these files (io calls it once, then forgets the stream) */
static int file_close (lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  int res = hp_fclose(p->f);
  return luaL_fileresult(L, res == 0, NULL);
}

static void *newfile (lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)lua_newuserdatauv(L, sizeof(luaL_Stream), 0);
  p->closef = NULL;  /* closed */
  p->f = NULL;
  luaL_setmetatable(L, LUA_FILEHANDLE);
  return p;
}

static void setfile (void *u, FILE *f) {
  ((luaL_Stream *)u)->f = f;
  ((luaL_Stream *)u)->closef = file_close;
}

#else

#if defined(_WIN32)
#define NULLDEV   "NUL"
#else
#define NULLDEV   "/dev/null"
#endif

/*
** Lua 5.1 and LuaJIT.  LuaJIT tags its files with an internal type that
** the C API cannot set, so only its io library can make one.  Hence the
** file comes from io.open on the null device; its stream is closed at
** once and later replaced.  Both interpreters keep the FILE * as the
** first field of the userdata (what C modules for 5.1 read) and close it
** with fclose, so the one path serves both -- which matters, as a module
** built for either is loaded by the other (see above).
*/
static void *newfile (lua_State *L) {
  int base = lua_gettop(L);
  FILE **pf;
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_getfield(L, -1, "io");
  if (!lua_istable(L, -1)) luaL_error(L, "tofile needs the io library");
  lua_getfield(L, -1, "open");
  lua_pushliteral(L, NULLDEV);
  lua_pushliteral(L, "r");
  lua_call(L, 2, 3);  /* file or fail, message, code */
  if (lua_isnil(L, -3)) return NULL;
  pf = (FILE **)luaL_testudata(L, -3, LUA_FILEHANDLE);
  if (pf == NULL || lua_objlen(L, -3) < sizeof(FILE *) || *pf == NULL)
    luaL_error(L, "io.open did not return an open file");
  hp_fclose(*pf);  /* of the null device: nothing to report */
  *pf = NULL;   /* closed */
  lua_pop(L, 2);
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
  return pf;
}

static void setfile (void *u, FILE *f) {
  *(FILE **)u = f;
}

#endif

/* }====================================================== */


/*
** {======================================================
** Results
** =======================================================
*/

/* fail, "[what: ]message", code */
static int oserror (lua_State *L, int code, const char *what) {
  char buf[256];
  hp_strerror(code, buf, sizeof(buf));
  luaL_pushfail(L);
  if (what != NULL) lua_pushfstring(L, "%s: %s", what, buf);
  else lua_pushstring(L, buf);
  lua_pushinteger(L, code);
  return 3;
}

static int okresult (lua_State *L, int code) {
  if (code != 0) return oserror(L, code, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* Memory for the OS layer that the garbage collector frees. */
static void *gcalloc (void *ud, size_t size) {
  lua_State *L = (lua_State *)ud;
  if (!lua_checkstack(L, 1)) return NULL;
  return lua_newuserdatauv(L, size == 0 ? 1 : size, 0);
}

/* }====================================================== */


/*
** {======================================================
** Handles
** =======================================================
*/

typedef struct Handle {
  hp_os os;              /* HP_NOHANDLE when closed */
  unsigned char *wbuf;   /* output waiting to be written, or NULL */
  unsigned char *rbuf;   /* input read ahead, or NULL */
  size_t size;           /* buffer size in "full" mode; 0 = unbuffered */
  size_t wlen;           /* bytes in wbuf */
  size_t rpos, rlen;     /* unread input is rbuf[rpos .. rlen) */
  struct Handle *prev, *next;  /* in the exit list while buffered */
} Handle;

#define isclosed(h)   ((h)->os == HP_NOHANDLE)
#define unread(h)     ((h)->rlen - (h)->rpos)


/*
** A new handle, already marked closed, so that a memory error while the
** OS resource is being acquired leaves it in a consistent state.
*/
static Handle *newhandle (lua_State *L) {
  Handle *h = (Handle *)lua_newuserdatauv(L, sizeof(Handle), 0);
  h->os = HP_NOHANDLE;
  h->wbuf = h->rbuf = NULL;
  h->size = h->wlen = h->rpos = h->rlen = 0;
  h->prev = h->next = NULL;
  luaL_getmetatable(L, HANDLE_T);
  lua_setmetatable(L, -2);
  return h;
}


static void freebuf (lua_State *L, unsigned char **b, size_t size) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  if (*b != NULL) f(ud, *b, size, 0);
  *b = NULL;
}


static unsigned char *allocbuf (lua_State *L, size_t size) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  return (unsigned char *)f(ud, NULL, 0, size);
}


/* Write all of buf, looping over short writes. */
static int writeall (hp_os os, const unsigned char *buf, size_t n) {
  while (n > 0) {
    size_t done;
    int err = hp_write(os, buf, n, &done);
    if (err != 0) return err;
    buf += done;
    n -= done;
  }
  return 0;
}


/*
** Send what waits in the write buffer.  On failure the unsent bytes are
** dropped, as the reader is gone or the handle broken: keeping them would
** only resend a partial integer later.
*/
static int flushbuf (Handle *h) {
  int err = 0;
  if (h->wlen > 0) {
    err = writeall(h->os, h->wbuf, h->wlen);
    h->wlen = 0;
  }
  return err;
}


/*
** {------------------------------------------------------
** Buffered output at exit
**
** Like C stdio, buffered output must survive a plain exit: os.exit(n)
** does not close the Lua state, so no __gc runs.  Handles with a write
** buffer are kept in one process-wide list that an atexit handler
** flushes.  (Should the library be unloaded first, the state was closed
** and the list is empty; glibc also runs the handler of an unloaded
** library at unload.)
** -------------------------------------------------------
*/

static Handle *buffered = NULL;
static int atexit_set = 0;

static void flush_at_exit (void) {
  Handle *h;
  if (!hp_lock_atexit()) return;  /* held by a thread the exit ended */
  for (h = buffered; h != NULL; h = h->next)
    if (h->os != HP_NOHANDLE) (void)flushbuf(h);  /* nobody to tell at exit */
  hp_unlock();
}

static void listhandle (Handle *h) {
  hp_lock();
  if (!atexit_set) atexit_set = (atexit(flush_at_exit) == 0);
  h->prev = NULL;
  h->next = buffered;
  if (buffered != NULL) buffered->prev = h;
  buffered = h;
  hp_unlock();
}

static void unlisthandle (Handle *h) {
  hp_lock();
  if (h->prev != NULL) h->prev->next = h->next;
  else if (buffered == h) buffered = h->next;
  if (h->next != NULL) h->next->prev = h->prev;
  h->prev = h->next = NULL;
  hp_unlock();
}

/* Back to unbuffered: free the buffers and leave the exit list. */
static void unbuffer (lua_State *L, Handle *h) {
  if (h->size > 0) unlisthandle(h);
  freebuf(L, &h->wbuf, h->size);
  freebuf(L, &h->rbuf, h->size);
  h->size = h->wlen = h->rpos = h->rlen = 0;
}

/* }------------------------------------------------------ */


/*
** The one close, used by close, __gc and __close: flush, free the
** buffers, release the OS handle.  Safe to call any number of times.
*/
static int closehandle (lua_State *L, Handle *h) {
  int err = 0, err2;
  hp_os os = h->os;
  if (os == HP_NOHANDLE) return 0;
  err = flushbuf(h);
  unbuffer(L, h);
  h->os = HP_NOHANDLE;
  err2 = hp_close(os);
  return err != 0 ? err : err2;
}


/*
** Every function in funcs[] has the handle metatable as upvalue 1, so
** telling a handle apart costs one comparison instead of luaL_testudata's
** registry lookup by name (a third of a write_int otherwise).
*/
#define HANDLEMT    lua_upvalueindex(1)

static Handle *testhandle (lua_State *L, int i) {
  Handle *h = (Handle *)lua_touserdata(L, i);
  if (h != NULL) {
    if (!lua_getmetatable(L, i)) return NULL;
    if (!lua_rawequal(L, -1, HANDLEMT)) h = NULL;
    lua_pop(L, 1);
  }
  return h;
}


/* The handle at argument i, open (raises if it is closed). */
static Handle *checkopen (lua_State *L, int i) {
  Handle *h = testhandle(L, i);
  if (h == NULL) h = (Handle *)luaL_checkudata(L, i, HANDLE_T);  /* raises */
  if (isclosed(h)) luaL_error(L, "attempt to use a closed handle");
  return h;
}


/* A descriptor given as a number. */
static hp_os checkdescriptor (lua_State *L, int i, int arg) {
  lua_Number d;
  if (lua_isinteger(L, i)) {
    lua_Integer v = lua_tointeger(L, i);
    if (v < 0) luaL_argerror(L, arg, "invalid descriptor (negative)");
    return (hp_os)v;
  }
  d = lua_tonumber(L, i);
  if (!(d == floor(d)) || d > 9007199254740992.0)
    luaL_argerror(L, arg, "descriptor must be an integer");
  if (d < 0) luaL_argerror(L, arg, "invalid descriptor (negative)");
  return (hp_os)d;
}


/*
** What the I/O functions accept as a handle: an hpass handle, a Lua file,
** a plain descriptor number, or an object with a getfd() method.  For
** hpass handles *hp gets the handle (for buffering), for files *fp the
** stream (whose own buffer must be flushed first).
*/
typedef struct Target {
  hp_os os;
  Handle *h;
  FILE *f;
} Target;

/* An object with a getfd() method (LuaSocket sockets): 1 if it is one. */
static int getfdmethod (lua_State *L, int i, int arg, hp_os *os) {
  lua_Number d;
  if (lua_type(L, i) == LUA_TUSERDATA) {
    if (!luaL_getmetafield(L, i, "__index")) return 0;  /* not indexable */
    lua_pop(L, 1);
  }
  lua_getfield(L, i, "getfd");
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushvalue(L, i);
  lua_call(L, 1, 1);
  if (lua_type(L, -1) != LUA_TNUMBER)
    luaL_argerror(L, arg, "getfd() did not return a number");
  d = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (d < 0) luaL_argerror(L, arg, "attempt to use a closed socket");
  /* NaN, a fraction or a huge float must not reach the cast below */
  if (!(d == floor(d)) || d > 9007199254740992.0)
    luaL_argerror(L, arg, "getfd() did not return a descriptor number");
  *os = (hp_os)d;
  return 1;
}


static void totarget (lua_State *L, int i, int arg, Target *t) {
  int closed = 0;
  t->h = NULL;
  t->f = NULL;
  switch (lua_type(L, i)) {
    case LUA_TNUMBER:
      t->os = checkdescriptor(L, i, arg);
      return;
    case LUA_TUSERDATA: {
      Handle *h = testhandle(L, i);
      FILE *f;
      if (h != NULL) {
        if (isclosed(h)) luaL_argerror(L, arg, "attempt to use a closed handle");
        t->os = h->os;
        t->h = h;
        return;
      }
      f = tofilep(L, i, &closed);
      if (f != NULL || closed) {
        int err;
        if (closed) luaL_argerror(L, arg, "attempt to use a closed file");
        err = hp_fromfile(f, &t->os);
        if (err != 0) luaL_argerror(L, arg, "file has no descriptor");
        t->f = f;
        return;
      }
      if (getfdmethod(L, i, arg, &t->os)) return;
      break;
    }
    case LUA_TTABLE:
      if (getfdmethod(L, i, arg, &t->os)) return;
      break;
    default:
      break;
  }
  luaL_argerror(L, arg, lua_pushfstring(L,
      "handle, file, descriptor or socket expected, got %s",
      luaL_typename(L, i)));
}


static int tostr_handle (lua_State *L) {
  Handle *h = (Handle *)luaL_checkudata(L, 1, HANDLE_T);
  if (isclosed(h)) lua_pushliteral(L, HANDLE_T " (closed)");
  else lua_pushfstring(L, HANDLE_T " (%d)", (int)h->os);
  return 1;
}


static int h_gc (lua_State *L) {
  Handle *h = (Handle *)luaL_checkudata(L, 1, HANDLE_T);
  (void)closehandle(L, h);  /* nobody is left to hear about errors */
  return 0;
}


static int h_close (lua_State *L) {
  Handle *h = (Handle *)luaL_checkudata(L, 1, HANDLE_T);
  return okresult(L, closehandle(L, h));
}


static int h_fileno (lua_State *L) {
  Handle *h = checkopen(L, 1);
  lua_pushinteger(L, (lua_Integer)h->os);
  return 1;
}


/* Creates the two handles before the pipe, so neither can leak. */
static int pushpair (lua_State *L, int (*make)(hp_os p[2])) {
  Handle *a = newhandle(L);
  Handle *b = newhandle(L);
  hp_os p[2];
  int err = make(p);
  if (err != 0) return oserror(L, err, NULL);
  a->os = p[0];
  b->os = p[1];
  return 2;
}

static int hpass_pipe (lua_State *L) {
  return pushpair(L, hp_pipe);
}

static int hpass_socketpair (lua_State *L) {
  return pushpair(L, hp_socketpair);
}


/* hpass.handle(n): adopt an inherited descriptor, given as number or text. */
static int hpass_handle (lua_State *L) {
  hp_os os;
  Handle *h;
  int err;
  if (lua_type(L, 1) == LUA_TSTRING) {
    const char *s = lua_tostring(L, 1);
    const char *p = s;
    long long v = 0;
    /* "3\0junk" must not pass as "3" */
    if (*p == '\0' || strlen(s) != rawlen(L, 1))
      luaL_argerror(L, 1, "descriptor number expected");
    for (; *p != '\0'; p++) {
      if (*p < '0' || *p > '9' || v > (LLONG_MAX - 9) / 10)
        luaL_argerror(L, 1, lua_pushfstring(L,
            "descriptor number expected, got '%s'", s));
      v = v * 10 + (*p - '0');
    }
    os = (hp_os)v;
  }
  else {
    luaL_checktype(L, 1, LUA_TNUMBER);
    os = checkdescriptor(L, 1, 1);
  }
  h = newhandle(L);
  if ((err = hp_check(os)) != 0 || (err = hp_noinherit(os)) != 0)
    return oserror(L, err, NULL);
  h->os = os;
  return 1;
}


/* h:setvbuf("no" | "full" [, size]) */
static int h_setvbuf (lua_State *L) {
  static const char *const modes[] = {"no", "full", NULL};
  Handle *h = checkopen(L, 1);
  int mode = luaL_checkoption(L, 2, NULL, modes);
  lua_Integer size = luaL_optinteger(L, 3, DEFBUF);
  int err;
  luaL_argcheck(L, size >= 4 && size <= (1 << 30), 3, "size out of range");
  err = flushbuf(h);
  if (unread(h) > 0)
    luaL_error(L, "cannot change the buffering of a handle with unread input");
  unbuffer(L, h);
  if (mode == 1) {
    unsigned char *wb = allocbuf(L, (size_t)size);
    unsigned char *rb = allocbuf(L, (size_t)size);
    if (wb == NULL || rb == NULL) {
      freebuf(L, &wb, (size_t)size);
      freebuf(L, &rb, (size_t)size);
      return luaL_error(L, "not enough memory");
    }
    h->wbuf = wb;
    h->rbuf = rb;
    h->size = (size_t)size;
    listhandle(h);
  }
  return okresult(L, err);
}


static int h_flush (lua_State *L) {
  Handle *h = checkopen(L, 1);
  return okresult(L, flushbuf(h));
}


/* h:tofile(mode): the descriptor moves into a new Lua file. */
static int h_tofile (lua_State *L) {
  Handle *h = checkopen(L, 1);
  const char *mode = luaL_optstring(L, 2, "r");
  const char *m = mode;
  int err = 0;
  FILE *f;
  void *u;
  luaL_argcheck(L, (*m != '\0' && strchr("rwa", *(m++)) != NULL &&
                    (*m != '+' || (++m, 1)) && strspn(m, "b") == strlen(m)),
                2, "invalid mode");
  if (unread(h) > 0)
    luaL_error(L, "cannot convert a handle with unread buffered input");
  if ((err = flushbuf(h)) != 0) return oserror(L, err, NULL);
  if ((u = newfile(L)) == NULL) return 3;  /* fail, message, code */
  f = hp_tofile(h->os, mode, &err);
  if (f == NULL) return oserror(L, err, NULL);
  setfile(u, f);
  /* the stream owns the descriptor now */
  unbuffer(L, h);
  h->os = HP_NOHANDLE;
  return 1;
}


/*
** h:detach(): the descriptor number, now owned by the caller; the handle
** is left closed and the descriptor open.  For handing it to a library
** that takes plain descriptors (LuaSocket's setfd, luaposix).
*/
static int h_detach (lua_State *L) {
  Handle *h = checkopen(L, 1);
  int err;
  if (unread(h) > 0)
    luaL_error(L, "cannot detach a handle with unread buffered input");
  if ((err = flushbuf(h)) != 0) return oserror(L, err, NULL);
  lua_pushinteger(L, (lua_Integer)h->os);
  unbuffer(L, h);
  h->os = HP_NOHANDLE;
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** The integer protocol
** =======================================================
*/

/* Integer argument that fits a C int; never silently truncated. */
static int checkint32 (lua_State *L, int i, int arg, lua_Integer elem) {
  const char *why;
  if (lua_type(L, i) != LUA_TNUMBER) {
    why = lua_pushfstring(L, "number expected, got %s", luaL_typename(L, i));
  }
  else if (lua_isinteger(L, i)) {
    lua_Integer v = lua_tointeger(L, i);
    if (v >= INT_MIN && v <= INT_MAX) return (int)v;
    why = "integer out of 32-bit range";
  }
  else {
    lua_Number d = lua_tonumber(L, i);
    if (d != d || d - d != 0 || d != floor(d))  /* NaN, inf, fraction */
      why = "number has no integer representation";
    else if (d >= -2147483648.0 && d <= 2147483647.0) return (int)d;
    else why = "integer out of 32-bit range";
  }
  if (elem > 0)
    why = lua_pushfstring(L, "element %d: %s", (int)elem, why);
  return luaL_argerror(L, arg, why);
}


/* Stream file data out before writing around the file's buffer. */
static int prepwrite (Target *t) {
  return t->f != NULL ? hp_fflush(t->f) : 0;
}


static int sendbytes (Target *t, const unsigned char *b, size_t n) {
  Handle *h = t->h;
  if (h != NULL && h->size > 0) {
    if (h->wlen + n > h->size) {
      int err = flushbuf(h);
      if (err != 0) return err;
      if (n > h->size) return writeall(t->os, b, n);
    }
    memcpy(h->wbuf + h->wlen, b, n);
    h->wlen += n;
    return 0;
  }
  return writeall(t->os, b, n);
}


/*
** Receive exactly n bytes unless the stream ends first; *got says how
** many arrived.  A buffered handle reads as much as is there (up to its
** buffer size) in one call; an unbuffered one never reads past the n bytes
** it was asked for, so whatever follows stays in the pipe for others.
*/
static int recvbytes (Target *t, unsigned char *b, size_t n, size_t *got) {
  Handle *h = t->h;
  *got = 0;
  while (*got < n) {
    size_t done;
    int err;
    if (h != NULL && unread(h) > 0) {
      size_t k = unread(h);
      if (k > n - *got) k = n - *got;
      memcpy(b + *got, h->rbuf + h->rpos, k);
      h->rpos += k;
      *got += k;
      continue;
    }
    /* a request may wait in our buffer for the reply we now wait for */
    if (h != NULL && h->wlen > 0 && (err = flushbuf(h)) != 0) return err;
    if (h != NULL && h->size > 0 && n - *got < h->size) {
      h->rpos = h->rlen = 0;
      err = hp_read(t->os, h->rbuf, h->size, &done);
      if (err != 0) return err;
      if (done == 0) return 0;
      h->rlen = done;
      continue;
    }
    err = hp_read(t->os, b + *got, n - *got, &done);
    if (err != 0) return err;
    if (done == 0) return 0;
    *got += done;
  }
  return 0;
}


static int truncated (lua_State *L, size_t got) {
  luaL_pushfail(L);
  lua_pushfstring(L, "truncated integer (stream ended after %d of 4 bytes)",
                  (int)(got % 4));
  return 2;
}


static int hpass_write_int (lua_State *L) {
  Target t;
  int v, err;
  totarget(L, 1, 1, &t);
  v = checkint32(L, 2, 2, 0);
  if ((err = prepwrite(&t)) != 0 || (err = sendbytes(&t, (unsigned char *)&v, 4)) != 0)
    return oserror(L, err, NULL);
  lua_pushboolean(L, 1);
  return 1;
}


static int hpass_read_int(lua_State *L) {
  Target t;
  int v, err;
  size_t got;
  totarget(L, 1, 1, &t);
  err = recvbytes(&t, (unsigned char *)&v, 4, &got);
  if (err != 0) return oserror(L, err, NULL);
  if (got == 0) {
    luaL_pushfail(L);  /* clean end of stream */
    return 1;
  }
  if (got < 4) return truncated(L, got);
  lua_pushinteger(L, v);
  return 1;
}


/* hpass.write_ints(h, t [, i [, j]]) */
static int hpass_write_ints (lua_State *L) {
  Target t;
  lua_Integer i, j, k;
  int err;
  int chunk[WCHUNK / sizeof(int)];
  size_t n = 0;
  totarget(L, 1, 1, &t);
  luaL_checktype(L, 2, LUA_TTABLE);
  i = luaL_optinteger(L, 3, 1);
  j = luaL_opt(L, luaL_checkinteger, 4, (lua_Integer)rawlen(L, 2));
  /* check everything first: a bad element must not leave half a write */
  for (k = i; k <= j; k++) {
    lua_rawgeti(L, 2, k);
    checkint32(L, -1, 2, k);
    lua_pop(L, 1);
    if (k == j) break;  /* k++ would overflow when j is LUA_MAXINTEGER */
  }
  if ((err = prepwrite(&t)) != 0) return oserror(L, err, NULL);
  if (t.h != NULL && (err = flushbuf(t.h)) != 0) return oserror(L, err, NULL);
  for (k = i; k <= j; k++) {
    lua_rawgeti(L, 2, k);
    chunk[n++] = checkint32(L, -1, 2, k);
    lua_pop(L, 1);
    if (n == sizeof(chunk) / sizeof(chunk[0]) || k == j) {
      if ((err = writeall(t.os, (unsigned char *)chunk, n * sizeof(int))) != 0)
        return oserror(L, err, NULL);
      n = 0;
    }
    if (k == j) break;
  }
  lua_pushboolean(L, 1);
  return 1;
}


/*
** With a table of the caller's, what an earlier (perhaps longer) read
** left after the count goes, up to the first nil, so that #t is the
** count.  That costs at most what filling those entries once did.
*/
static void clear_tail (lua_State *L, int tbl, lua_Integer have) {
  for (;;) {
    int empty;
    lua_rawgeti(L, tbl, ++have);
    empty = lua_isnil(L, -1);
    lua_pop(L, 1);
    if (empty) break;
    lua_pushnil(L);
    lua_rawseti(L, tbl, have);
  }
}

/*
** hpass.read_ints(h, n [, t]): an array of up to n integers (fewer when
** the stream ends); fail at a clean end with nothing read.  On an error
** the integers read before it come as a fourth result.  Given t, the
** integers go into t[1 .. n] and t is the array: a reader that reuses
** one table pays for neither a new table nor its growth.
*/
static int hpass_read_ints (lua_State *L) {
  Target t;
  lua_Integer want, have = 0;
  int tbl, own;
  int *chunk;
  totarget(L, 1, 1, &t);
  want = luaL_checkinteger(L, 2);
  luaL_argcheck(L, want >= 0, 2, "count must not be negative");
  own = lua_isnoneornil(L, 3);
  if (!own) luaL_checktype(L, 3, LUA_TTABLE);
  chunk = (int *)lua_newuserdatauv(L, CHUNK, 0);
  if (own)  /* room for up to a million without rehashing; more grows */
    lua_createtable(L, want < (1 << 20) ? (int)want : (1 << 20), 0);
  else
    lua_pushvalue(L, 3);
  tbl = lua_gettop(L);
  while (have < want) {
    size_t got, m, k;
    lua_Integer left = want - have;
    int err;
    m = left < (lua_Integer)(CHUNK / sizeof(int))
        ? (size_t)left : CHUNK / sizeof(int);
    err = recvbytes(&t, (unsigned char *)chunk, m * sizeof(int), &got);
    for (k = 0; k < got / sizeof(int); k++) {
      lua_pushinteger(L, chunk[k]);
      lua_rawseti(L, tbl, ++have);
    }
    if (err != 0 || got % sizeof(int) != 0) {
      if (!own) clear_tail(L, tbl, have);
      if ((err != 0 ? oserror(L, err, NULL) : truncated(L, got)) == 2)
        lua_pushnil(L);  /* no error code for a truncation */
      lua_pushvalue(L, tbl);  /* the integers read before the error */
      return 4;
    }
    if (got < m * sizeof(int)) break;  /* end of stream */
  }
  if (!own) clear_tail(L, tbl, have);
  if (have == 0 && want > 0) luaL_pushfail(L);  /* clean end of stream */
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** Processes
** =======================================================
*/

enum { P_NONE, P_RUNNING, P_DONE };

typedef struct Process {
  hp_proc p;
  int state;
  int how;           /* HP_EXITED or HP_SIGNALED, once P_DONE */
  long long code;
} Process;


static Process *checkproc (lua_State *L, int i) {
  return (Process *)luaL_checkudata(L, i, PROCESS_T);
}


/* The result triple of os.execute: true|fail, "exit"|"signal", code. */
static int pushstatus (lua_State *L, Process *p) {
  if (p->how == HP_EXITED && p->code == 0) lua_pushboolean(L, 1);
  else luaL_pushfail(L);
  lua_pushstring(L, p->how == HP_EXITED ? "exit" : "signal");
  lua_pushinteger(L, (lua_Integer)p->code);
  return 3;
}


static int p_wait (lua_State *L) {
  Process *p = checkproc(L, 1);
  if (p->state == P_RUNNING) {
    int done, err = hp_wait(&p->p, 1, &done, &p->how, &p->code);
    if (err != 0) return oserror(L, err, NULL);
    p->state = P_DONE;
  }
  if (p->state != P_DONE) return luaL_error(L, "process was never started");
  return pushstatus(L, p);
}


/* p:poll(): the wait triple if the child has ended, else false. */
static int p_poll (lua_State *L) {
  Process *p = checkproc(L, 1);
  if (p->state == P_RUNNING) {
    int done, err = hp_wait(&p->p, 0, &done, &p->how, &p->code);
    if (err != 0) return oserror(L, err, NULL);
    if (!done) {
      lua_pushboolean(L, 0);
      return 1;
    }
    p->state = P_DONE;
  }
  if (p->state != P_DONE) return luaL_error(L, "process was never started");
  return pushstatus(L, p);
}


static int p_kill (lua_State *L) {
  Process *p = checkproc(L, 1);
  int sig;
  if (lua_type(L, 2) == LUA_TSTRING) {
    sig = hp_signum(lua_tostring(L, 2));
    luaL_argcheck(L, sig > 0, 2, "unknown signal name");
  }
  else {
    lua_Integer s = luaL_optinteger(L, 2, 15);
    luaL_argcheck(L, s >= 0 && s <= INT_MAX, 2, "invalid signal number");
    sig = (int)s;
  }
  /* once collected, the pid may belong to someone else: never signal it */
  if (p->state != P_RUNNING) {
    luaL_pushfail(L);
    lua_pushliteral(L, "process has already been waited for");
    lua_pushinteger(L, hp_err_srch());
    return 3;
  }
  return okresult(L, hp_kill(&p->p, sig));
}


/* Poll every orphan once; collected ones leave the table. */
static void reap_orphans (lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, ORPHANS);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    hp_proc pr;
    int done = 0, how;
    long long code;
    lua_pop(L, 1);
    pr.pid = (long long)lua_tonumber(L, -1);
    pr.sys = NULL;
    if (hp_wait(&pr, 0, &done, &how, &code) != 0 || done) {
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, -4);  /* clearing a field during lua_next is allowed */
    }
  }
  lua_pop(L, 1);
}


/*
** Poll every process object whose child has not been collected, once.
** Without this a parent that keeps spawning and never waits would hold a
** zombie per child until the collector happens to free the objects, which
** in a large heap can be thousands.  The status waits in the object for
** wait or poll; objects whose child is collected leave the table.
*/
static void reap_running (lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, RUNNING);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    Process *p = (Process *)luaL_testudata(L, -2, PROCESS_T);
    int done = 0;
    lua_pop(L, 1);
    /* on an error the object keeps running, and wait will report it */
    if (p == NULL || p->state != P_RUNNING ||
        hp_wait(&p->p, 0, &done, &p->how, &p->code) != 0 || done) {
      if (done) p->state = P_DONE;
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, -4);
    }
  }
  lua_pop(L, 1);
}


/*
** A process object collected before its child was waited for: if the
** child has ended it is collected now; if not, its pid joins the orphans,
** which are polled at every spawn and every such collection, so a
** long-running parent that never waits does not pile up zombies.
*/
static int p_gc (lua_State *L) {
  Process *p = checkproc(L, 1);
  if (p->state == P_RUNNING) {
    int done = 0, how;
    long long code;
    if ((hp_wait(&p->p, 0, &done, &how, &code) != 0 || !done) &&
        hp_release(&p->p)) {
      lua_getfield(L, LUA_REGISTRYINDEX, ORPHANS);
      if (lua_istable(L, -1)) {
        lua_pushnumber(L, (lua_Number)p->p.pid);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
      }
      lua_pop(L, 1);
    }
    p->state = P_NONE;
  }
  reap_orphans(L);
  return 0;
}


#if LUA_VERSION_NUM >= 504
/* A to-be-closed process is waited for when it goes out of scope. */
static int p_close (lua_State *L) {
  Process *p = checkproc(L, 1);
  if (p->state == P_RUNNING) {
    int done;
    if (hp_wait(&p->p, 1, &done, &p->how, &p->code) == 0) p->state = P_DONE;
  }
  return 0;
}
#endif


static int p_tostring (lua_State *L) {
  Process *p = checkproc(L, 1);
  if (p->state == P_DONE)
    lua_pushfstring(L, PROCESS_T " (%d, %s %d)", (int)p->p.pid,
                    p->how == HP_EXITED ? "exit" : "signal", (int)p->code);
  else if (p->state == P_RUNNING)
    lua_pushfstring(L, PROCESS_T " (%d)", (int)p->p.pid);
  else
    lua_pushliteral(L, PROCESS_T " (none)");
  return 1;
}


/* proc.pid and the methods */
static int p_index (lua_State *L) {
  Process *p = checkproc(L, 1);
  const char *k = lua_tostring(L, 2);
  if (k != NULL && strcmp(k, "pid") == 0) {
    if (p->state == P_NONE) lua_pushnil(L);
    else lua_pushinteger(L, (lua_Integer)p->p.pid);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}


/*
** String (or number) at stack index i without embedded zeros, for
** argument arg; 'what' names it in errors, with [elem] when elem > 0.
*/
static const char *checkcstr (lua_State *L, int i, int arg, const char *what,
                              int elem) {
  size_t len;
  const char *s;
  int t = lua_type(L, i);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    s = lua_tolstring(L, i, &len);
    if (strlen(s) == len) return s;
  }
  if (elem > 0) what = lua_pushfstring(L, "%s[%d]", what, elem);
  if (t == LUA_TSTRING || t == LUA_TNUMBER)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s contains a zero byte", what));
  /* lua_typename(t): i may be relative, and the pushes above moved -1 */
  luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a string, got %s",
                                        what, lua_typename(L, t)));
  return NULL;
}


/* 0, 1, 2 for the option names of the standard streams, else -1. */
static int stdslot (const char *k) {
  static const char *const names[] = {"stdin", "stdout", "stderr"};
  int i;
  for (i = 0; i < 3; i++)
    if (strcmp(k, names[i]) == 0) return i;
  return -1;
}


/* Keep a string alive in the anchor table at index a; returns it. */
static const char *anchor (lua_State *L, int a) {
  const char *s = lua_tostring(L, -1);
  lua_rawseti(L, a, (int)rawlen(L, a) + 1);
  return s;
}


/* Gather the handles of argument 2 into an array of Targets. */
static size_t gettargets (lua_State *L, Target **out) {
  size_t n, i;
  Target *t;
  int single = 1;
  luaL_argcheck(L, !lua_isnoneornil(L, 2), 2, "handle expected, got no value");
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_getfield(L, 2, "getfd");
    single = !lua_isnil(L, -1);
    lua_pop(L, 1);
  }
  n = single ? 1 : rawlen(L, 2);
  t = (Target *)lua_newuserdatauv(L, (n == 0 ? 1 : n) * sizeof(Target), 0);
  if (single) totarget(L, 2, 2, &t[0]);
  else {
    for (i = 0; i < n; i++) {
      lua_rawgeti(L, 2, (int)i + 1);
      totarget(L, lua_gettop(L), 2, &t[i]);
      lua_pop(L, 1);
    }
  }
  *out = t;
  return n;
}


/*
** hpass.spawn_with_handle(argv, handle [, options])
** The child inherits exactly the given handles, and finds their numbers
** (as it sees them) appended to its command line.
*/
static int hpass_spawn (lua_State *L) {
  hp_spawn_req req;
  Process *proc;
  Target *targets;
  Target stdio[3];
  hp_os *handles;
  const char **argv;
  const char **envp = NULL;
  const char *cwd = NULL;
  size_t argc, nh, i;
  int a, pidx, err;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 3);
  argc = rawlen(L, 1);
  luaL_argcheck(L, argc > 0, 1, "argv is empty");
  /* options */
  if (!lua_isnil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 3) != 0) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (strcmp(k, "env") == 0) {
        if (!lua_istable(L, -1))
          luaL_argerror(L, 3, lua_pushfstring(L, "option 'env' must be a table, got %s",
                                              luaL_typename(L, -1)));
      }
      else if (stdslot(k) >= 0) {
        Target t;
        totarget(L, lua_gettop(L), 3, &t);  /* checks it is a handle */
      }
      else if (strcmp(k, "cwd") == 0) {
        if (lua_type(L, -1) != LUA_TSTRING)
          luaL_argerror(L, 3, lua_pushfstring(L, "option 'cwd' must be a string, got %s",
                                              luaL_typename(L, -1)));
      }
      else if (lua_type(L, -2) == LUA_TSTRING)
        luaL_argerror(L, 3, lua_pushfstring(L, "unknown option '%s'", k));
      else
        luaL_argerror(L, 3, "option names must be strings");
      lua_pop(L, 1);
    }
  }
  lua_newtable(L);
  a = lua_gettop(L);  /* anchor for the strings made here */
  if (!lua_isnil(L, 3)) {
    lua_getfield(L, 3, "cwd");
    if (!lua_isnil(L, -1)) cwd = checkcstr(L, -1, 3, "option 'cwd'", 0);
    lua_pop(L, 1);
    lua_getfield(L, 3, "env");
    if (!lua_isnil(L, -1)) {
      int e = lua_gettop(L);
      size_t ne = 0;
      lua_pushnil(L);
      while (lua_next(L, e) != 0) { ne++; lua_pop(L, 1); }
      envp = (const char **)lua_newuserdatauv(L, (ne + 1) * sizeof(char *), 0);
      lua_rawseti(L, a, (int)rawlen(L, a) + 1);
      ne = 0;
      lua_pushnil(L);
      while (lua_next(L, e) != 0) {
        const char *k, *v;
        if (lua_type(L, -2) != LUA_TSTRING)
          luaL_argerror(L, 3, "env names must be strings");
        k = checkcstr(L, -2, 3, "env name", 0);
        luaL_argcheck(L, *k != '\0' && strchr(k, '=') == NULL, 3,
                      "env name is empty or contains '='");
        v = checkcstr(L, -1, 3, "env value", 0);
        lua_pushfstring(L, "%s=%s", k, v);
        envp[ne++] = anchor(L, a);
        lua_pop(L, 1);
      }
      envp[ne] = NULL;
    }
    lua_pop(L, 1);
  }
  for (i = 0; i < 3; i++) {
    static const char *const names[] = {"stdin", "stdout", "stderr"};
    stdio[i].os = HP_NOHANDLE;
    stdio[i].h = NULL;
    stdio[i].f = NULL;
    if (lua_isnil(L, 3)) continue;
    lua_getfield(L, 3, names[i]);
    if (!lua_isnil(L, -1)) totarget(L, lua_gettop(L), 3, &stdio[i]);
    lua_pop(L, 1);
  }
  nh = gettargets(L, &targets);
  lua_rawseti(L, a, (int)rawlen(L, a) + 1);
  handles = (hp_os *)lua_newuserdatauv(L, (nh + 1) * sizeof(hp_os), 0);
  lua_rawseti(L, a, (int)rawlen(L, a) + 1);
  argv = (const char **)lua_newuserdatauv(L, (argc + 1) * sizeof(char *), 0);
  lua_rawseti(L, a, (int)rawlen(L, a) + 1);
  for (i = 0; i < argc; i++) {
    lua_rawgeti(L, 1, (int)i + 1);
    checkcstr(L, -1, 1, "argv", (int)i + 1);
    argv[i] = anchor(L, a);
  }
  for (i = 0; i < nh; i++) handles[i] = targets[i].os;
  argv[argc] = NULL;  /* hp_spawn appends the handles' numbers */
  /* what waits in buffers must reach the pipe before the child starts */
  for (i = 0; i < nh + 3; i++) {
    Target *t = i < nh ? &targets[i] : &stdio[i - nh];
    if (t->h != NULL && unread(t->h) > 0)
      luaL_argerror(L, i < nh ? 2 : 3, "handle has unread buffered input");
    err = t->h != NULL ? flushbuf(t->h) : prepwrite(t);
    if (err != 0) return oserror(L, err, NULL);
  }
  reap_orphans(L);
  reap_running(L);
  proc = (Process *)lua_newuserdatauv(L, sizeof(Process), 0);
  pidx = lua_gettop(L);
  proc->state = P_NONE;
  proc->p.pid = -1;
  proc->p.sys = NULL;
  luaL_getmetatable(L, PROCESS_T);
  lua_setmetatable(L, -2);
  req.argv = argv;
  req.envp = envp;
  req.cwd = cwd;
  req.handles = handles;
  req.nhandles = nh;
  req.child = NULL;
  for (i = 0; i < 3; i++) req.stdio[i] = stdio[i].os;
  err = hp_spawn(&req, &proc->p, gcalloc, L);
  if (err != 0) return oserror(L, err, argv[0]);
  proc->state = P_RUNNING;
  lua_getfield(L, LUA_REGISTRYINDEX, RUNNING);
  lua_pushvalue(L, pidx);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_pushvalue(L, pidx);
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** Passing handles
** =======================================================
*/

#define FDBOX_T     "hpass.fdbox"

/*
** Descriptors received but not yet owned by handle objects.  Should
** making the handles run out of memory, the box becomes garbage and its
** __gc closes the descriptors no handle took, so none leaks.
*/
typedef struct FdBox {
  size_t n;
  hp_os fds[HP_MAXFDS];
} FdBox;

static int box_gc (lua_State *L) {
  FdBox *b = (FdBox *)lua_touserdata(L, 1);
  size_t i;
  for (i = 0; i < b->n; i++)
    if (b->fds[i] != HP_NOHANDLE) (void)hp_close(b->fds[i]);
  b->n = 0;
  return 0;
}

static FdBox *newbox (lua_State *L) {
  FdBox *b = (FdBox *)lua_newuserdatauv(L, sizeof(FdBox), 0);
  b->n = 0;
  if (luaL_newmetatable(L, FDBOX_T)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return b;
}


/*
** Output waiting in the channel's buffer goes first, so that the peer
** sees bytes and handles in the order they were written.
*/
static int flushchannel (Target *t) {
  return t->h != NULL ? flushbuf(t->h) : prepwrite(t);
}


/* hpass.send_handle(channel, handle [, ...]): true or fail, msg, code */
static int hpass_send_handle (lua_State *L) {
  Target chan = {HP_NOHANDLE, NULL, NULL};  /* set by totarget, or it raises */
  Target *t;
  hp_os *fds;
  int n = lua_gettop(L) - 1, i, err;
  totarget(L, 1, 1, &chan);
  luaL_argcheck(L, n >= 1, 2, "handle expected, got no value");
  if (n > HP_MAXFDS)
    luaL_argerror(L, HP_MAXFDS + 2, lua_pushfstring(L,
        "too many handles, at most %d in one message", HP_MAXFDS));
  t = (Target *)lua_newuserdatauv(L, (size_t)n * sizeof(Target), 0);
  fds = (hp_os *)lua_newuserdatauv(L, (size_t)n * sizeof(hp_os), 0);
  for (i = 0; i < n; i++) {
    totarget(L, i + 2, i + 2, &t[i]);
    /* input we read ahead would never reach the receiver */
    if (t[i].h != NULL && unread(t[i].h) > 0)
      luaL_argerror(L, i + 2, "handle has unread buffered input");
    fds[i] = t[i].os;
  }
  for (i = 0; i < n; i++)
    if ((err = flushchannel(&t[i])) != 0) return oserror(L, err, NULL);
  if ((err = flushchannel(&chan)) != 0) return oserror(L, err, NULL);
  return okresult(L, hp_sendfds(chan.os, fds, (size_t)n, gcalloc, L));
}


/*
** hpass.recv_handle(channel): the handles of one message, as new handle
** objects; fail at a clean end of stream; fail, msg, code on an error.
*/
static int hpass_recv_handle (lua_State *L) {
  Target chan = {HP_NOHANDLE, NULL, NULL};  /* set by totarget, or it raises */
  FdBox *box;
  size_t n, i;
  int err;
  totarget(L, 1, 1, &chan);
  /* bytes we read ahead may have carried handles: they are gone */
  if (chan.h != NULL && unread(chan.h) > 0)
    luaL_argerror(L, 1, "channel has unread buffered input");
  if ((err = flushchannel(&chan)) != 0) return oserror(L, err, NULL);
  luaL_checkstack(L, HP_MAXFDS + 4, "too many handles");
  box = newbox(L);
  err = hp_recvfds(chan.os, box->fds, HP_MAXFDS, &n, gcalloc, L);
  if (err != 0) return oserror(L, err, NULL);
  if (n == 0) {
    luaL_pushfail(L);  /* clean end of stream */
    return 1;
  }
  box->n = n;
  for (i = 0; i < n; i++) {
    Handle *h = newhandle(L);
    h->os = box->fds[i];
    box->fds[i] = HP_NOHANDLE;
  }
  box->n = 0;
  return (int)n;
}

/* }====================================================== */


/* hpass.type(x): "handle", "closed handle", "process" or fail. */
static int hpass_type (lua_State *L) {
  Handle *h;
  luaL_checkany(L, 1);
  if ((h = (Handle *)luaL_testudata(L, 1, HANDLE_T)) != NULL)
    lua_pushstring(L, isclosed(h) ? "closed handle" : "handle");
  else if (luaL_testudata(L, 1, PROCESS_T) != NULL)
    lua_pushliteral(L, "process");
  else
    luaL_pushfail(L);
  return 1;
}


/*
** The module table doubles as the handle's __index, so hpass.read_int(h)
** and h:read_int() are one function.
*/
static const luaL_Reg funcs[] = {
  {"pipe", hpass_pipe},
  {"socketpair", hpass_socketpair},
  {"handle", hpass_handle},
  {"spawn_with_handle", hpass_spawn},
  {"read_int", hpass_read_int},
  {"write_int", hpass_write_int},
  {"read_ints", hpass_read_ints},
  {"write_ints", hpass_write_ints},
  {"send_handle", hpass_send_handle},
  {"recv_handle", hpass_recv_handle},
  {"close", h_close},
  {"fileno", h_fileno},
  {"setvbuf", h_setvbuf},
  {"flush", h_flush},
  {"tofile", h_tofile},
  {"detach", h_detach},
  {"type", hpass_type},
  {NULL, NULL}
};

static const luaL_Reg handle_meta[] = {
  {"__gc", h_gc},
#if LUA_VERSION_NUM >= 504
  {"__close", h_gc},
#endif
  {"__tostring", tostr_handle},
  {NULL, NULL}
};

static const luaL_Reg process_methods[] = {
  {"wait", p_wait},
  {"poll", p_poll},
  {"kill", p_kill},
  {NULL, NULL}
};

static const luaL_Reg process_meta[] = {
  {"__gc", p_gc},
#if LUA_VERSION_NUM >= 504
  {"__close", p_close},
#endif
  {"__tostring", p_tostring},
  {NULL, NULL}
};


HPASS_API int luaopen_hpass_core (lua_State *L);

HPASS_API int luaopen_hpass_core (lua_State *L) {
  int err = hp_init();
  if (err != 0) {
    char buf[256];
    return luaL_error(L, "hpass: %s", hp_strerror(err, buf, sizeof(buf)));
  }
#if LUA_VERSION_NUM >= 502
  luaL_checkversion(L);
#endif
  /* handle metatable, then the module table as its __index */
  luaL_newmetatable(L, HANDLE_T);
  luaL_setfuncs(L, handle_meta, 0);
  lua_pushliteral(L, HANDLE_T);
  lua_setfield(L, -2, "__name");
  lua_createtable(L, 0, (int)(sizeof(funcs) / sizeof(funcs[0])) + 1);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, funcs, 1);  /* upvalue 1: the handle metatable */
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__index");
  lua_remove(L, -2);
  lua_pushliteral(L, HPASS_VERSION);
  lua_setfield(L, -2, "_VERSION");
  /* process metatable */
  luaL_newmetatable(L, PROCESS_T);
  luaL_setfuncs(L, process_meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, process_methods, 0);
  lua_pushcclosure(L, p_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, PROCESS_T);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  /* orphans: pids of collected processes not yet reaped */
  lua_getfield(L, LUA_REGISTRYINDEX, ORPHANS);
  if (!lua_istable(L, -1)) {
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, ORPHANS);
  }
  lua_pop(L, 1);
  /* running: process objects whose child is not collected yet */
  lua_getfield(L, LUA_REGISTRYINDEX, RUNNING);
  if (!lua_istable(L, -1)) {
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, RUNNING);
  }
  lua_pop(L, 1);
  return 1;
}
