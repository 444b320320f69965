/*
** lua_hpass.c - hpass, the Lua binding: entry point, handle objects and
** the integer protocol.
**
** Pipes and sockets as handle objects, children that inherit exactly the
** handles they are given (lua_spawn.c), handles passed to running
** processes (lua_passing.c), and a binary integer protocol over them.
** All OS work goes through hpass_sys.h; the binding checks arguments, owns
** the Lua objects and pushes results.
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

#include "lua_base.h"

#define HPASS_VERSION   "hpass 0.2.0"

#if defined(_WIN32)
#define HPASS_API __declspec(dllexport)
#elif defined(__GNUC__)
#define HPASS_API __attribute__((visibility("default")))
#else
#define HPASS_API
#endif

#define SCRATCH_T   "hpass.scratch"

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

void hpc_setfuncs (lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

void *hpc_testudata (lua_State *L, int i, const char *tname) {
  void *p = lua_touserdata(L, i);
  if (p == NULL || !lua_getmetatable(L, i)) return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}

#endif

#if LUA_VERSION_NUM < 503

/* t[k] for any k: lua_rawgeti takes an int there. */
void hpc_rawgeti (lua_State *L, int t, lua_Integer k) {
  if (k >= INT_MIN && k <= INT_MAX) {
    lua_rawgeti(L, t, (int)k);
    return;
  }
  if (t < 0 && t > LUA_REGISTRYINDEX) t--;  /* the key is pushed first */
  lua_pushnumber(L, (lua_Number)k);
  lua_rawget(L, t);
}

void hpc_rawseti (lua_State *L, int t, lua_Integer k) {
  if (k >= INT_MIN && k <= INT_MAX) {
    lua_rawseti(L, t, (int)k);
    return;
  }
  if (t < 0 && t > LUA_REGISTRYINDEX) t--;
  lua_pushnumber(L, (lua_Number)k);
  lua_insert(L, -2);
  lua_rawset(L, t);
}

#endif

/* }====================================================== */


/*
** {======================================================
** Argument errors (see lua_base.h)
** =======================================================
*/

#define NAMES       "hpass.names"   /* registry: function -> public name */

void hpb_setnames (lua_State *L, int t) {
  if (t < 0 && t > LUA_REGISTRYINDEX) t = lua_gettop(L) + t + 1;
  lua_getfield(L, LUA_REGISTRYINDEX, NAMES);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, NAMES);
  }
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    if (lua_iscfunction(L, -1) && lua_type(L, -2) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      lua_pushvalue(L, -3);
      lua_rawset(L, -5);  /* names[function] = name */
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/*
** As lauxlib's: a method call counts its arguments without self, and a
** bad self says so.  The name is the function's public one; a function
** of no such name (none of the binding's) is named as lauxlib would.
*/
int hpc_argerror (lua_State *L, int arg, const char *extramsg) {
  lua_Debug ar;
  const char *name = NULL;
  if (!lua_getstack(L, 0, &ar))  /* no stack frame */
    return luaL_error(L, "bad argument #%d (%s)", arg, extramsg);
  lua_getinfo(L, "nf", &ar);
  lua_getfield(L, LUA_REGISTRYINDEX, NAMES);
  if (lua_istable(L, -1)) {
    lua_pushvalue(L, -2);
    lua_rawget(L, -2);
    name = lua_tostring(L, -1);
  }
  if (name == NULL) name = ar.name != NULL ? ar.name : "?";
  if (ar.namewhat != NULL && strcmp(ar.namewhat, "method") == 0 && --arg == 0)
    return luaL_error(L, "calling '%s' on bad self (%s)", name, extramsg);
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, name, extramsg);
}

int hpc_typeerror (lua_State *L, int arg, const char *tname) {
  const char *typearg;
  if (luaL_getmetafield(L, arg, "__name") != 0 && lua_type(L, -1) == LUA_TSTRING)
    typearg = lua_tostring(L, -1);
  else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA)
    typearg = "light userdata";
  else
    typearg = luaL_typename(L, arg);
  return hpc_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", tname,
                                              typearg));
}

void hpc_checktype (lua_State *L, int arg, int t) {
  if (lua_type(L, arg) != t) hpc_typeerror(L, arg, lua_typename(L, t));
}

void hpc_checkany (lua_State *L, int arg) {
  if (lua_type(L, arg) == LUA_TNONE) hpc_argerror(L, arg, "value expected");
}

void *hpc_checkudata (lua_State *L, int arg, const char *tname) {
  void *p = luaL_testudata(L, arg, tname);
  if (p == NULL) hpc_typeerror(L, arg, tname);
  return p;
}

/* A number, never a string that looks like one (lauxlib converts). */
lua_Number hpc_checknumber (lua_State *L, int arg) {
  if (lua_type(L, arg) != LUA_TNUMBER) hpc_typeerror(L, arg, "number");
  return lua_tonumber(L, arg);
}

/*
** An integer: before 5.3 only a float with an exact integer value, as a
** cast of NaN, inf or a value out of range is undefined behaviour.
*/
lua_Integer hpc_checkinteger (lua_State *L, int arg) {
#if LUA_VERSION_NUM >= 503
  int ok;
  lua_Integer v = lua_tointegerx(L, arg, &ok);
  if (ok && lua_type(L, arg) == LUA_TNUMBER) return v;
  if (lua_type(L, arg) == LUA_TNUMBER)
    hpc_argerror(L, arg, "number has no integer representation");
  hpc_typeerror(L, arg, "number");
  return 0;
#else
  lua_Number d = hpc_checknumber(L, arg);
  if (!iswhole(d, -MAXEXACT))
    hpc_argerror(L, arg, "number has no integer representation");
  return (lua_Integer)d;
#endif
}

lua_Integer hpc_optinteger (lua_State *L, int arg, lua_Integer def) {
  return lua_isnoneornil(L, arg) ? def : hpc_checkinteger(L, arg);
}

/* A string, or a number made one, as lauxlib's. */
const char *hpc_checklstring (lua_State *L, int arg, size_t *l) {
  const char *s;
  int t = lua_type(L, arg);
  if (t != LUA_TSTRING && t != LUA_TNUMBER) hpc_typeerror(L, arg, "string");
  s = lua_tolstring(L, arg, l);
  return s;
}

const char *hpc_optlstring (lua_State *L, int arg, const char *def,
                            size_t *l) {
  if (!lua_isnoneornil(L, arg)) return hpc_checklstring(L, arg, l);
  if (l != NULL) *l = def != NULL ? strlen(def) : 0;
  return def;
}

int hpc_checkoption (lua_State *L, int arg, const char *def,
                     const char *const lst[]) {
  const char *name = def != NULL ? hpc_optlstring(L, arg, def, NULL)
                                 : hpc_checklstring(L, arg, NULL);
  int i;
  for (i = 0; lst[i] != NULL; i++)
    if (strcmp(lst[i], name) == 0) return i;
  return hpc_argerror(L, arg, lua_pushfstring(L, "invalid option '%s'", name));
}

/* }====================================================== */


/*
** {======================================================
** Lua files
** =======================================================
*/

/*
** Lua files: since 5.2 a luaL_Stream whose closef is NULL once closed; in
** 5.1 and LuaJIT a userdata whose first field is the FILE *, NULL once
** closed.
*/
static FILE *streamof (void *u, int *closed) {
#if LUA_VERSION_NUM >= 502
  *closed = (((luaL_Stream *)u)->closef == NULL);
  return ((luaL_Stream *)u)->f;
#else
  *closed = (*(FILE **)u == NULL);
  return *(FILE **)u;
#endif
}

/* The stream of the Lua file at i, or NULL for any other value. */
static FILE *tofilep (lua_State *L, int i, int *closed, void **u) {
  *u = luaL_testudata(L, i, LUA_FILEHANDLE);
  return *u != NULL ? streamof(*u, closed) : NULL;
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
** Results and scratch memory
** =======================================================
*/

int hpb_oserror (lua_State *L, int code, const char *what) {
  char buf[256];
  hp_strerror(code, buf, sizeof(buf));
  luaL_pushfail(L);
  if (what != NULL) lua_pushfstring(L, "%s: %s", what, buf);
  else lua_pushstring(L, buf);
  lua_pushinteger(L, code);
  return 3;
}

int hpb_ioerror (lua_State *L, int code, const char *what) {
  if (code != hp_err_timeout()) return hpb_oserror(L, code, what);
  luaL_pushfail(L);
  if (what != NULL) lua_pushfstring(L, "%s: timeout", what);
  else lua_pushliteral(L, "timeout");
  lua_pushinteger(L, code);
  return 3;
}

/*
** Whole milliseconds, rounded up so that a tiny timeout still waits.
** Anything above MAXWAIT seconds (math.huge too) is MAXWAIT: a wait of
** 31 million years, whose deadline still fits an hp_time with room to
** spare (now + 10^18 ms < 2^63).
*/
#define MAXWAIT     1e15

hp_time hpb_opttimeout (lua_State *L, int arg) {
  lua_Number s;
  if (lua_isnoneornil(L, arg)) return HP_NEVER;
  s = luaL_checknumber(L, arg);  /* a number, never a numeric string */
  luaL_argcheck(L, s >= 0, arg, "timeout must be a non-negative number");
  if (s > MAXWAIT) s = MAXWAIT;
  return (hp_time)ceil(s * 1000);
}


hp_time hpb_deadline (Handle *h) {
  if (h == NULL) return HP_NEVER;
  h->tried = h->late = 0;
  return h->timeout == HP_NEVER ? HP_NEVER : hp_now() + h->timeout;
}


int hpb_ready (Handle *h, hp_os os, int events, hp_time dl) {
  int err;
  if (dl == HP_NEVER) return 0;
  /* past the deadline a read only looks, and only a few times (LATE) */
  if (h != NULL && (h->tried & events) && hp_now() >= dl &&
      (events != HP_READABLE || h->late++ >= LATE))
    return hp_err_timeout();
  err = hp_ready(os, events, dl);
  if (err == 0 && h != NULL) h->tried |= events;
  return err;
}

int hpb_okresult (lua_State *L, int code) {
  if (code != 0) return hpb_ioerror(L, code, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/*
** Arguments a function does not take are refused rather than ignored: a
** user who writes p:wait(5) or read_int(h, 10) expects them to mean
** something.
*/
void hpb_noextra (lua_State *L, int n) {
  if (lua_gettop(L) > n) luaL_argerror(L, n + 1, "no value expected");
}


/* Blocks of scratch memory: a header aligned for any use, then the data. */
typedef union Block {
  struct { union Block *next; size_t size; } b;
  /* cppcheck-suppress unusedStructMember ; they only align the data */
  double d;
  /* cppcheck-suppress unusedStructMember */
  long long l;
  /* cppcheck-suppress unusedStructMember */
  void *p;
} Block;

struct Scratch {
  Block *blocks;
  lua_Alloc f;
  void *ud;
};

void hpb_freescratch (Scratch *s) {
  while (s->blocks != NULL) {
    Block *b = s->blocks;
    s->blocks = b->b.next;
    s->f(s->ud, b, sizeof(Block) + b->b.size, 0);
  }
}

static int scratch_gc (lua_State *L) {
  hpb_freescratch((Scratch *)lua_touserdata(L, 1));
  return 0;
}

Scratch *hpb_newscratch (lua_State *L) {
  Scratch *s = (Scratch *)lua_newuserdatauv(L, sizeof(Scratch), 0);
  s->blocks = NULL;
  s->f = lua_getallocf(L, &s->ud);
  luaL_getmetatable(L, SCRATCH_T);
  lua_setmetatable(L, -2);
  return s;
}

/* The hp_alloc of hpass_sys.h: NULL when out of memory, never raises. */
void *hpb_scratchalloc (void *ud, size_t size) {
  Scratch *s = (Scratch *)ud;
  Block *b;
  if (size > (size_t)-1 - sizeof(Block)) return NULL;
  b = (Block *)s->f(s->ud, NULL, 0, sizeof(Block) + size);
  if (b == NULL) return NULL;
  b->b.size = size;
  b->b.next = s->blocks;
  s->blocks = b;
  return b + 1;
}

/* }====================================================== */


/*
** {======================================================
** Handles
** =======================================================
*/

/*
** A new handle, already marked closed, so that a memory error while the
** OS resource is being acquired leaves it in a consistent state.
*/
Handle *hpb_newhandle (lua_State *L) {
  Handle *h = (Handle *)lua_newuserdatauv(L, sizeof(Handle), 0);
  h->os = HP_NOHANDLE;
  h->wbuf = h->rbuf = NULL;
  h->size = h->wlen = h->rpos = h->rlen = h->rcap = 0;
  h->iruns = NULL;
  h->nruns = 0;
  h->tried = h->late = 0;
  h->timeout = HP_NEVER;
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


/* rbuf resized to cap bytes (its unread input kept at the front). */
static int resizeread (lua_State *L, Handle *h, size_t cap) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  unsigned char *b;
  size_t k = unread(h);
  if (h->rbuf != NULL && h->rpos > 0) memmove(h->rbuf, h->rbuf + h->rpos, k);
  h->rpos = 0;
  h->rlen = k;
  b = (unsigned char *)f(ud, h->rbuf, h->rbuf != NULL ? h->rcap : 0, cap);
  if (b == NULL) return hp_err_nomem();
  h->rbuf = b;
  h->rcap = cap;
  return 0;
}


/*
** Where a write may stop: how many bytes of the integer that position p
** falls inside lie before p, 0 when p is between two units.  The units
** of a direct write are `whole` bytes from its start (4 for integers, 1
** for bytes); those of h's write buffer (whole == 0) are its integers'
** runs, and single bytes elsewhere.
*/
static size_t begun (const Handle *h, size_t whole, size_t p) {
  size_t i;
  if (whole > 0) return p % whole;
  for (i = 0; i < h->nruns; i++)
    if (p > h->iruns[2 * i] && p < h->iruns[2 * i + 1])
      return (p - h->iruns[2 * i]) % 4;
  return 0;
}


/*
** Write all of buf to os (of handle object h, or NULL), looping over
** short writes; *sent says how much went.  The units that a write may
** not cut are `whole` bytes long, or, with whole == 0, those of h's write
** buffer (begun).  With a deadline each write waits until the handle
** takes hp_room bytes without blocking (HP_ATOMIC, a pipe's PIPE_BUF; on
** Windows a socket's send buffer), and ends between two units, so that
** the write can stop there when the deadline passes (hpb_ready: also
** while the reader keeps up).  Should a short write have cut an integer
** all the same, its rest is still written past the deadline: the stream
** never holds a torn one.
*/
static int writeall (Handle *h, hp_os os, const unsigned char *buf, size_t n,
                     hp_time deadline, size_t whole, size_t *sent) {
  size_t room = deadline != HP_NEVER ? hp_room(os) : 0;
  *sent = 0;
  while (*sent < n) {
    size_t done, k = n - *sent;
    int err;
    if (deadline != HP_NEVER) {
      size_t in = begun(h, whole, *sent);
      err = hpb_ready(h, os, HP_WRITABLE, deadline);
      if (err == hp_err_timeout() && in > 0)
        k = 4 - in;  /* the rest of the integer, and no more */
      else if (err != 0) return err;
      else if (k > room) {
        k = room;
        k -= begun(h, whole, *sent + k);
      }
    }
    err = hp_write(os, buf + *sent, k, &done);
    if (err != 0) return err;
    *sent += done;
  }
  return 0;
}


/* The first sent bytes of the write buffer went out: drop them. */
static void dropsent (Handle *h, size_t sent) {
  size_t i, k = 0;
  memmove(h->wbuf, h->wbuf + sent, h->wlen - sent);
  h->wlen -= sent;
  for (i = 0; i < h->nruns; i++) {
    size_t from = h->iruns[2 * i], to = h->iruns[2 * i + 1];
    if (to <= sent) continue;
    h->iruns[2 * k] = from > sent ? from - sent : 0;  /* sent is between two */
    h->iruns[2 * k + 1] = to - sent;
    k++;
  }
  h->nruns = k;
}


/*
** Send what waits in the write buffer.  On failure the unsent bytes are
** dropped, as the reader is gone or the handle broken: keeping them would
** only resend a partial integer later.  When a deadline passes they stay,
** whole integers, to go first next time.
*/
static int flushbuf (Handle *h, hp_time deadline) {
  int err = 0;
  if (h->wlen > 0) {
    size_t sent;
    err = writeall(h, h->os, h->wbuf, h->wlen, deadline, 0, &sent);
    if (err == hp_err_timeout()) dropsent(h, sent);
    else h->wlen = 0;
  }
  if (h->wlen == 0) h->nruns = 0;
  return err;
}


int hpb_unread (lua_State *L, Handle *h, const void *b, size_t k) {
  size_t have = unread(h);
  if (k == 0) return 0;
  if (h->rpos < k) {  /* no room in front: move what is there up */
    int err;
    if (have + k > h->rcap &&
        (err = resizeread(L, h, have + k < DEFBUF ? DEFBUF : have + k)) != 0)
      return err;
    memmove(h->rbuf + k, h->rbuf + h->rpos, have);
    h->rpos = k;
    h->rlen = k + have;
  }
  h->rpos -= k;
  memcpy(h->rbuf + h->rpos, b, k);
  return 0;
}


int hpb_fill (lua_State *L, Handle *h, hp_time deadline, size_t max,
              int *eof) {
  size_t done, room;
  int err;
  *eof = 0;
  /* a request may wait in our buffer for the reply we now wait for */
  if (h->wlen > 0 && (err = flushbuf(h, deadline)) != 0) return err;
  /* the wait first: a deadline that has passed grows no buffer */
  if ((err = hpb_ready(h, h->os, HP_READABLE, deadline)) != 0) return err;
  if (h->rlen == h->rcap) {
    if (h->rpos > 0) (void)resizeread(L, h, h->rcap);   /* compact */
    else if ((err = resizeread(L, h, h->rcap < DEFBUF / 16 ? DEFBUF / 16
                                                        : 2 * h->rcap)) != 0)
      return err;
  }
  room = h->rcap - h->rlen;
  err = hp_read(h->os, h->rbuf + h->rlen, room < max ? room : max, &done);
  if (err != 0) return err;
  if (done == 0) *eof = 1;
  h->rlen += done;
  return 0;
}


void hpb_trim (lua_State *L, Handle *h) {
  if (h->rcap > (h->size > DEFBUF ? h->size : DEFBUF) && unread(h) < h->size)
    (void)resizeread(L, h, h->size > 0 ? h->size : DEFBUF);
  if (h->size == 0 && unread(h) == 0 && h->rbuf != NULL) {
    freebuf(L, &h->rbuf, h->rcap);
    h->rpos = h->rlen = h->rcap = 0;
  }
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
    if (h->os != HP_NOHANDLE) (void)flushbuf(h, HP_NEVER);  /* nobody to tell */
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
  freebuf(L, &h->rbuf, h->rcap);
  if (h->iruns != NULL) {
    void *ud;
    lua_Alloc f = lua_getallocf(L, &ud);
    f(ud, h->iruns, 2 * IRUNS * sizeof(size_t), 0);
    h->iruns = NULL;
  }
  h->size = h->wlen = h->rpos = h->rlen = h->rcap = h->nruns = 0;
}

/* }------------------------------------------------------ */


/*
** The one close, used by close, __gc and __close: flush, free the
** buffers, release the OS handle.  Safe to call any number of times.
*/
int hpb_close (lua_State *L, Handle *h) {
  int err = 0, err2;
  hp_os os = h->os;
  if (os == HP_NOHANDLE) return 0;
  err = flushbuf(h, HP_NEVER);  /* flush() first bounds this */
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

/* }====================================================== */


/*
** {======================================================
** Handle arguments: every form a handle argument may take
** =======================================================
*/

int hpb_handleargerror (lua_State *L, const HandleArg *t, const char *msg) {
  char num[32];
  if (t->opt != NULL)
    msg = lua_pushfstring(L, "option '%s': %s", t->opt, msg);
  else if (t->inarray) {
    (void)snprintf(num, sizeof(num), "%lld", (long long)t->elem);
    msg = lua_pushfstring(L, "element %s: %s", num, msg);
  }
  return luaL_argerror(L, t->arg, msg);
}


/*
** A number that can be a descriptor: whole, not negative, not beyond
** what a double holds exactly (so that the cast below is defined).  The
** OS layer refuses numbers that are no open handle.
*/
static hp_os checkdescriptor (lua_State *L, int i, const HandleArg *t,
                              const char *what) {
  lua_Number d;
  if (lua_isinteger(L, i)) {
    lua_Integer v = lua_tointeger(L, i);
    if (v < 0) hpb_handleargerror(L, t, "invalid descriptor (negative)");
    return (hp_os)v;
  }
  d = lua_tonumber(L, i);
  if (!iswhole(d, -HUGE_VAL)) hpb_handleargerror(L, t, what);
  if (d < 0) hpb_handleargerror(L, t, "invalid descriptor (negative)");
  return (hp_os)d;
}


/*
** The getfd method of the object at i, pushed, or 0 with nothing pushed.
** It is looked up without running Lua code: in the object itself when it
** is a table, then through the __index tables of its metatables (how
** LuaSocket and class-style objects keep their methods), a few deep.
*/
static int findgetfd (lua_State *L, int i) {
  int depth;
  lua_pushvalue(L, i);
  for (depth = 0; depth < 8; depth++) {
    if (lua_istable(L, -1)) {
      lua_pushliteral(L, "getfd");
      lua_rawget(L, -2);
      if (lua_isfunction(L, -1)) {
        lua_remove(L, -2);
        return 1;
      }
      lua_pop(L, 1);
    }
    if (!lua_getmetatable(L, -1)) break;
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);           /* object, mt, mt.__index */
    lua_remove(L, -2);
    lua_remove(L, -2);
    if (!lua_istable(L, -1)) break;
  }
  lua_pop(L, 1);
  return 0;
}


/* Whether the object at i is a Lua file (open or closed). */
static int isfile (lua_State *L, int i) {
  int closed = 0;
  void *u;
  return tofilep(L, i, &closed, &u) != NULL || closed;
}


void hpb_handlearg_getfd (lua_State *L, int i, HandleArg *t) {
  lua_Number d;
  t->os = HP_NOHANDLE;
  t->h = NULL;
  t->f = NULL;
  t->file = NULL;
  t->getfd = 0;
  switch (lua_type(L, i)) {
    case LUA_TUSERDATA:
      if (testhandle(L, i) != NULL || isfile(L, i)) return;
      break;
    case LUA_TTABLE:
      break;
    default:
      return;  /* numbers, and wrong types, which resolve refuses */
  }
  if (!findgetfd(L, i)) return;
  lua_pushvalue(L, i);
  lua_call(L, 1, 1);
  if (lua_type(L, -1) != LUA_TNUMBER)
    hpb_handleargerror(L, t, "getfd() did not return a number");
  d = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (d < 0) hpb_handleargerror(L, t, "attempt to use a closed socket");
  /* NaN, a fraction or a huge float must not reach the cast below */
  if (!iswhole(d, -HUGE_VAL))
    hpb_handleargerror(L, t, "getfd() did not return a descriptor number");
  t->os = (hp_os)d;
  t->getfd = 1;
}


void hpb_handlearg_resolve (lua_State *L, int i, HandleArg *t) {
  int closed = 0;
  if (t->getfd) return;
  switch (lua_type(L, i)) {
    case LUA_TNUMBER:
      t->os = checkdescriptor(L, i, t, "descriptor must be an integer");
      return;
    case LUA_TUSERDATA: {
      Handle *h = testhandle(L, i);
      FILE *f;
      void *u;
      if (h != NULL) {
        if (isclosed(h)) hpb_handleargerror(L, t, "attempt to use a closed handle");
        t->os = h->os;
        t->h = h;
        return;
      }
      f = tofilep(L, i, &closed, &u);
      if (f != NULL || closed) {
        if (closed) hpb_handleargerror(L, t, "attempt to use a closed file");
        if (hp_fromfile(f, &t->os) != 0)
          hpb_handleargerror(L, t, "file has no descriptor");
        t->f = f;
        t->file = u;
        return;
      }
      break;
    }
    default:
      break;
  }
  hpb_handleargerror(L, t, lua_pushfstring(L,
      "handle, file, descriptor or socket expected, got %s",
      luaL_typename(L, i)));
}


/*
** The one handle argument i.  An hpass handle, the common case (every
** read_int and write_int of the seed protocol), is told apart with one
** comparison before the general path.
*/
void hpb_tohandlearg (lua_State *L, int i, int arg, HandleArg *t) {
  Handle *h = testhandle(L, i);
  t->arg = arg;
  t->inarray = 0;
  t->elem = 0;
  t->opt = NULL;
  t->f = NULL;
  t->file = NULL;
  t->getfd = 0;
  if (h != NULL) {
    if (isclosed(h)) hpb_handleargerror(L, t, "attempt to use a closed handle");
    t->os = h->os;
    t->h = h;
    return;
  }
  hpb_handlearg_getfd(L, i, t);
  hpb_handlearg_resolve(L, i, t);
}


/*
** Between resolving t and using it, Lua code may have run: any allocation
** through the collector can run a finalizer, and a finalizer can close
** what t names.  Closing frees a Lua file's FILE and an hpass handle's
** buffers, so every use below starts here.  The objects themselves are
** anchored by the caller: only whether they are still open can change.
*/
void hpb_handlearg_check (lua_State *L, HandleArg *t) {
  int closed = 0;
  if (t->h != NULL) {
    if (isclosed(t->h))
      hpb_handleargerror(L, t, "handle was closed during the call");
    t->os = t->h->os;
  }
  else if (t->f != NULL && (streamof(t->file, &closed) != t->f || closed))
    hpb_handleargerror(L, t, "file was closed during the call");
}


int hpb_hasahead (lua_State *L, HandleArg *t) {
  hpb_handlearg_check(L, t);
  return (t->h != NULL && unread(t->h) > 0) ||
         (t->f != NULL && hp_freadahead(t->f) > 0);
}


int hpb_issingle (lua_State *L, int i) {
  int single = lua_type(L, i) != LUA_TTABLE || findgetfd(L, i);
  if (lua_type(L, i) == LUA_TTABLE && single) lua_pop(L, 1);
  return single;
}


/* Stream a Lua file's buffered output out before writing around it. */
static int prepwrite (lua_State *L, HandleArg *t) {
  hpb_handlearg_check(L, t);
  return t->f != NULL ? hp_fflush(t->f) : 0;
}


void hpb_checkahead (lua_State *L, HandleArg *t) {
  hpb_handlearg_check(L, t);
  if (t->h != NULL && unread(t->h) > 0)
    hpb_handleargerror(L, t, "handle has unread buffered input");
  /* flushing a file gave back what it read ahead where it could seek */
  if (t->f != NULL && hp_freadahead(t->f) > 0)
    hpb_handleargerror(L, t, "file has unread buffered input");
}


int hpb_flushout (lua_State *L, HandleArg *t, hp_time dl) {
  hpb_handlearg_check(L, t);
  return t->h != NULL ? flushbuf(t->h, dl) : prepwrite(L, t);
}

/* }====================================================== */


/*
** {======================================================
** Handle objects
** =======================================================
*/

static int h_tostring (lua_State *L) {
  Handle *h = (Handle *)luaL_checkudata(L, 1, HANDLE_T);
  if (isclosed(h)) lua_pushliteral(L, HANDLE_T " (closed)");
  else lua_pushfstring(L, HANDLE_T " (%d)", (int)h->os);
  return 1;
}


static int h_gc (lua_State *L) {
  Handle *h = (Handle *)luaL_checkudata(L, 1, HANDLE_T);
  (void)hpb_close(L, h);  /* nobody is left to hear about errors */
  return 0;
}


static int h_close (lua_State *L) {
  Handle *h = (Handle *)luaL_checkudata(L, 1, HANDLE_T);
  hpb_noextra(L, 1);
  return hpb_okresult(L, hpb_close(L, h));
}


static int h_fileno (lua_State *L) {
  Handle *h = checkopen(L, 1);
  hpb_noextra(L, 1);
  lua_pushinteger(L, (lua_Integer)h->os);
  return 1;
}


/* Creates the two handles before the pipe, so neither can leak. */
static int pushpair (lua_State *L, int (*make)(hp_os p[2])) {
  Handle *a, *b;
  hp_os p[2];
  int err;
  hpb_noextra(L, 0);
  a = hpb_newhandle(L);
  b = hpb_newhandle(L);
  err = make(p);
  if (err != 0) return hpb_oserror(L, err, NULL);
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
  HandleArg t;
  Handle *h;
  int err;
  memset(&t, 0, sizeof(t));
  t.arg = 1;
  hpb_noextra(L, 1);
  if (lua_type(L, 1) == LUA_TSTRING) {
    const char *s = lua_tostring(L, 1);
    const char *p = s;
    long long v = 0;
    /* "3\0junk" must not pass as "3" */
    if (*p == '\0' || strlen(s) != (size_t)lua_rawlen(L, 1))
      luaL_argerror(L, 1, "descriptor number expected");
    for (; *p != '\0'; p++) {
      if (*p < '0' || *p > '9' || v > (LLONG_MAX - 9) / 10)
        luaL_argerror(L, 1, lua_pushfstring(L,
            "descriptor number expected, got '%s'", s));
      v = v * 10 + (*p - '0');
    }
    t.os = (hp_os)v;
  }
  else {
    luaL_checktype(L, 1, LUA_TNUMBER);
    t.os = checkdescriptor(L, 1, &t, "descriptor must be an integer");
  }
  h = hpb_newhandle(L);
  if ((err = hp_check(t.os)) != 0 || (err = hp_noinherit(t.os)) != 0)
    return hpb_oserror(L, err, NULL);
  h->os = t.os;
  return 1;
}


/* h:setvbuf("no" | "full" [, size]) */
static int h_setvbuf (lua_State *L) {
  static const char *const modes[] = {"no", "full", NULL};
  Handle *h = checkopen(L, 1);
  int mode = luaL_checkoption(L, 2, NULL, modes);
  lua_Integer size = luaL_optinteger(L, 3, DEFBUF);
  int err;
  hpb_noextra(L, 3);
  luaL_argcheck(L, size >= 4 && size <= (1 << 30), 3, "size out of range");
  err = flushbuf(h, hdeadline(h));
  if (err == hp_err_timeout()) return hpb_ioerror(L, err, NULL);
  if (unread(h) > 0)
    luaL_error(L, "cannot change the buffering of a handle with unread input");
  unbuffer(L, h);
  if (mode == 1) {
    unsigned char *wb = allocbuf(L, (size_t)size);
    unsigned char *rb = allocbuf(L, (size_t)size);
    unsigned char *ir = allocbuf(L, 2 * IRUNS * sizeof(size_t));
    if (wb == NULL || rb == NULL || ir == NULL) {
      freebuf(L, &wb, (size_t)size);
      freebuf(L, &rb, (size_t)size);
      freebuf(L, &ir, 2 * IRUNS * sizeof(size_t));
      return luaL_error(L, "not enough memory");
    }
    h->wbuf = wb;
    h->rbuf = rb;
    h->iruns = (size_t *)(void *)ir;
    h->size = h->rcap = (size_t)size;
    listhandle(h);
  }
  return hpb_okresult(L, err);
}


static int h_flush (lua_State *L) {
  Handle *h = checkopen(L, 1);
  hpb_noextra(L, 1);
  return hpb_okresult(L, flushbuf(h, hdeadline(h)));
}


/* h:tofile(mode): the descriptor moves into a new Lua file. */
static int h_tofile (lua_State *L) {
  Handle *h = checkopen(L, 1);
  const char *mode = luaL_optstring(L, 2, "r");
  const char *m = mode;
  int err = 0;
  hp_time dl;
  FILE *f;
  void *u;
  hpb_noextra(L, 2);
  luaL_argcheck(L, (*m != '\0' && strchr("rwa", *(m++)) != NULL &&
                    (*m != '+' || (++m, 1)) && strspn(m, "b") == strlen(m)),
                2, "invalid mode");
  if (unread(h) > 0)
    luaL_error(L, "cannot convert a handle with unread buffered input");
  dl = hdeadline(h);
  if ((err = flushbuf(h, dl)) != 0) return hpb_ioerror(L, err, NULL);
  if ((u = newfile(L)) == NULL) return 3;  /* fail, message, code */
  /* making the file ran Lua code (a finalizer; io.open before 5.2) */
  if (isclosed(h)) luaL_error(L, "attempt to use a closed handle");
  if ((err = flushbuf(h, dl)) != 0) return hpb_ioerror(L, err, NULL);
  f = hp_tofile(h->os, mode, &err);
  if (f == NULL) return hpb_oserror(L, err, NULL);
  setfile(u, f);
  /* the stream owns the descriptor now */
  unbuffer(L, h);
  h->os = HP_NOHANDLE;
  return 1;
}


/*
** h:settimeout(seconds | nil): how long each blocking call on h may take
** from now on (nil: no limit), as LuaSocket's settimeout.
*/
static int h_settimeout (lua_State *L) {
  Handle *h = checkopen(L, 1);
  hp_time ms = hpb_opttimeout(L, 2);
  hpb_noextra(L, 2);
  h->timeout = ms;
  lua_pushboolean(L, 1);
  return 1;
}


/*
** cqueues' polling protocol, which luv users can follow too
** (uv.new_poll(h:pollfd())): the descriptor, the events a poller should
** wait for ("r", or "w" for a handle opened for writing only), and the
** timeout in seconds (nil when none is set).
*/
static int h_pollfd (lua_State *L) {
  return h_fileno(L);
}

static int h_events (lua_State *L) {
  Handle *h = checkopen(L, 1);
  hpb_noextra(L, 1);
  if (hp_access(h->os) == HP_WRITABLE) lua_pushliteral(L, "w");
  else lua_pushliteral(L, "r");
  return 1;
}

static int h_timeout (lua_State *L) {
  Handle *h = checkopen(L, 1);
  hpb_noextra(L, 1);
  if (h->timeout == HP_NEVER) lua_pushnil(L);
  else lua_pushnumber(L, (lua_Number)h->timeout / 1000);
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
  hpb_noextra(L, 1);
  if (unread(h) > 0)
    luaL_error(L, "cannot detach a handle with unread buffered input");
  if ((err = flushbuf(h, hdeadline(h))) != 0) return hpb_ioerror(L, err, NULL);
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

/*
** Integer argument that fits a C int; never silently truncated.  With
** t != NULL the value is element t->elem of a table argument.
*/
static int checkint32 (lua_State *L, int i, int arg, const HandleArg *t) {
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
  if (t != NULL) return hpb_handleargerror(L, t, why);
  return luaL_argerror(L, arg, why);
}


int hpb_send (lua_State *L, HandleArg *t, const unsigned char *b, size_t n,
              hp_time deadline, size_t whole, size_t *sent) {
  Handle *h;
  hpb_handlearg_check(L, t);
  h = t->h;
  *sent = 0;
  if (h != NULL && h->size > 0) {
    int join = h->nruns > 0 && h->iruns[2 * h->nruns - 1] == h->wlen;
    if (h->wlen + n > h->size || (whole > 1 && !join && h->nruns == IRUNS)) {
      /*
      ** A flush that runs out of time leaves these bytes unqueued, so a
      ** timeout never leaves part of an integer behind.
      */
      int err = flushbuf(h, deadline);
      if (err != 0) return err;
      if (n > h->size) return writeall(h, t->os, b, n, deadline, whole, sent);
      join = 0;
    }
    if (whole > 1) {  /* integers: where they are, for flushbuf */
      if (!join) h->iruns[2 * h->nruns++] = h->wlen;
      h->iruns[2 * h->nruns - 1] = h->wlen + n;
    }
    memcpy(h->wbuf + h->wlen, b, n);
    h->wlen += n;
    *sent = n;
    return 0;
  }
  return writeall(h, t->os, b, n, deadline, whole, sent);
}


/*
** Receive exactly n bytes unless the stream ends first; *got says how
** many arrived.  Input a Lua file read ahead comes first, as a read from
** the file would give it, then what the handle holds.  A buffered handle
** reads as much as is there (up to its buffer size) in one call; an
** unbuffered one never reads past the n bytes it was asked for, so
** whatever follows stays in the pipe for others.  With a deadline, each
** read waits for data first.
*/
int hpb_recv (lua_State *L, HandleArg *t, unsigned char *b, size_t n,
              size_t *got, hp_time deadline) {
  Handle *h;
  hpb_handlearg_check(L, t);
  h = t->h;
  *got = t->f != NULL ? hp_ftake(t->f, b, n) : 0;
  while (*got < n) {
    size_t done;
    int err;
    if (h != NULL && h->rlen > h->rpos) {
      size_t k = h->rlen - h->rpos;
      if (k > n - *got) k = n - *got;
      memcpy(b + *got, h->rbuf + h->rpos, k);
      h->rpos += k;
      *got += k;
      continue;
    }
    /* a request may wait in our buffer for the reply we now wait for */
    if (h != NULL && h->wlen > 0 && (err = flushbuf(h, deadline)) != 0)
      return err;
    if ((err = hpb_ready(h, t->os, HP_READABLE, deadline)) != 0) return err;
    if (h != NULL && h->size > 0 && n - *got < h->rcap) {
      h->rpos = h->rlen = 0;
      err = hp_read(t->os, h->rbuf, h->rcap, &done);
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


/* A cut-short integer is given back, to be read whole next time. */
static void putback (lua_State *L, HandleArg *t, const unsigned char *b,
                     size_t k) {
  if (t->h != NULL && hpb_unread(L, t->h, b, k) != 0)
    luaL_error(L, "not enough memory");
}


static int truncated (lua_State *L, size_t got) {
  luaL_pushfail(L);
  lua_pushfstring(L, "truncated integer (stream ended after %d of 4 bytes)",
                  (int)(got % 4));
  return 2;
}


static int hpass_write_int (lua_State *L) {
  HandleArg t;
  int v, err;
  size_t sent;
  hpb_tohandlearg(L, 1, 1, &t);
  v = checkint32(L, 2, 2, NULL);
  hpb_noextra(L, 2);
  if ((err = prepwrite(L, &t)) != 0 ||
      (err = hpb_send(L, &t, (unsigned char *)&v, 4, deadline(t.h), 4, &sent)) != 0)
    return hpb_ioerror(L, err, NULL);
  lua_pushboolean(L, 1);
  return 1;
}


static int hpass_read_int (lua_State *L) {
  HandleArg t;
  int v, err;
  size_t got;
  hpb_tohandlearg(L, 1, 1, &t);
  hpb_noextra(L, 1);
  err = hpb_recv(L, &t, (unsigned char *)&v, 4, &got, deadline(t.h));
  if (err != 0) {
    putback(L, &t, (unsigned char *)&v, got);
    return hpb_ioerror(L, err, NULL);
  }
  if (got == 0) {
    luaL_pushfail(L);  /* clean end of stream */
    return 1;
  }
  if (got < 4) return truncated(L, got);
  lua_pushinteger(L, v);
  return 1;
}


/* Elements left on the stack before one lua_settop drops them all. */
#define POPBATCH    64
/* Elements write_ints checks per call of toint32s. */
#define CHECKSTEP   ((size_t)163840)

/*
** t[k .. k+n-1] (t at stack index tbl) as 32-bit ints into out, or only
** checked when out is NULL; a bad element raises as write_int would.
** This is write_ints' inner loop: the common case costs a lua_rawgeti
** and one conversion, and the values are popped a batch at a time.
*/
static void toint32s (lua_State *L, int tbl, lua_Integer k, size_t n,
                      int *out, HandleArg *e) {
  int top = lua_gettop(L);
  size_t i = 0;
  luaL_checkstack(L, POPBATCH, NULL);
  while (i < n) {
    size_t stop = n - i < POPBATCH ? n : i + POPBATCH;
    for (; i < stop; i++) {
      int v;
#if LUA_VERSION_NUM >= 503
      lua_Integer x = 0;
      int ok = 0;
      if (lua_rawgeti(L, tbl, k + (lua_Integer)i) == LUA_TNUMBER)
        x = lua_tointegerx(L, -1, &ok);  /* exact floats too, as 42.0 */
      if (ok && x >= INT_MIN && x <= INT_MAX)
        v = (int)x;
#else
      lua_Number d;
      rawgeti(L, tbl, k + (lua_Integer)i);
      d = lua_tonumber(L, -1);  /* 0 for a non-number: checked below */
      if (d >= -2147483648.0 && d <= 2147483647.0 && d == (lua_Number)(int)d
          && lua_type(L, -1) == LUA_TNUMBER)
        v = (int)d;
#endif
      else {
        e->elem = k + (lua_Integer)i;
        v = checkint32(L, -1, e->arg, e);  /* raises */
      }
      if (out != NULL) out[i] = v;
    }
    lua_settop(L, top);
  }
}


/*
** How many of t[k .. j] (k <= j) the next step of at most max takes;
** *last says whether it reaches j.  j - k + 1 could overflow, so the
** count less one is what is compared.
*/
static size_t nextstep (lua_Integer k, lua_Integer j, size_t max, int *last) {
  unsigned long long left = (unsigned long long)j - (unsigned long long)k;
  *last = left < max;
  return *last ? (size_t)left + 1 : max;
}


/*
** hpass.write_ints(h, t [, i [, j]]): true, or fail, msg, code and the
** number of integers written before the failure (a timeout included:
** then the stream holds exactly that many, whole).
*/
static int hpass_write_ints (lua_State *L) {
  HandleArg t, e;
  lua_Integer i, j, k, written = 0;
  int err, last;
  int chunk[WCHUNK / sizeof(int)];
  size_t n;
  hp_time dl;
  hpb_tohandlearg(L, 1, 1, &t);
  dl = deadline(t.h);  /* the check below counts too: the call has begun */
  luaL_checktype(L, 2, LUA_TTABLE);
  i = luaL_optinteger(L, 3, 1);
  j = luaL_opt(L, luaL_checkinteger, 4, (lua_Integer)lua_rawlen(L, 2));
  hpb_noextra(L, 4);
  e.arg = 2;
  e.inarray = 1;
  e.opt = NULL;
  /*
  ** Check everything first: a bad element must not leave half a write.
  ** Then convert again chunk by chunk, so that the reader is busy with
  ** the first chunk while the next is made, and memory stays small.
  */
  for (k = i; k <= j; k += (lua_Integer)n) {
    n = nextstep(k, j, CHECKSTEP, &last);
    toint32s(L, 2, k, n, NULL, &e);
    if (last) break;  /* k += n could overflow past j */
  }
  if ((err = prepwrite(L, &t)) != 0 ||
      (t.h != NULL && (err = flushbuf(t.h, dl)) != 0))
    goto failed;
  for (k = i; k <= j; k += (lua_Integer)n) {
    size_t sent;
    n = nextstep(k, j, sizeof(chunk) / sizeof(chunk[0]), &last);
    toint32s(L, 2, k, n, chunk, &e);
    hpb_handlearg_check(L, &t);
    err = writeall(t.h, t.os, (unsigned char *)chunk, n * sizeof(int), dl, 4,
                   &sent);
    written += (lua_Integer)(sent / sizeof(int));
    if (err != 0) goto failed;
    if (last) break;
  }
  lua_pushboolean(L, 1);
  return 1;
failed:
  hpb_ioerror(L, err, NULL);
  lua_pushinteger(L, written);
  return 4;
}


/*
** With a table of the caller's, what an earlier (perhaps longer) read
** left after the count goes, up to the first nil, so that #t is the
** count.  That costs at most what filling those entries once did.
*/
static void clear_tail (lua_State *L, int tbl, lua_Integer have) {
  for (;;) {
    int empty;
    rawgeti(L, tbl, ++have);
    empty = lua_isnil(L, -1);
    lua_pop(L, 1);
    if (empty) break;
    lua_pushnil(L);
    rawseti(L, tbl, have);
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
  HandleArg t;
  lua_Integer want, have = 0;
  int tbl, own;
  int *chunk;
  hp_time dl;
  hpb_tohandlearg(L, 1, 1, &t);
  dl = deadline(t.h);
  want = luaL_checkinteger(L, 2);
  luaL_argcheck(L, want >= 0, 2, "count must not be negative");
  own = lua_isnoneornil(L, 3);
  if (!own) luaL_checktype(L, 3, LUA_TTABLE);
  hpb_noextra(L, 3);
  lua_settop(L, 3);
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
    /* filling the table may have run a finalizer: hpb_recv checks */
    err = hpb_recv(L, &t, (unsigned char *)chunk, m * sizeof(int), &got, dl);
    for (k = 0; k < got / sizeof(int); k++) {
      lua_pushinteger(L, chunk[k]);
      rawseti(L, tbl, ++have);
    }
    if (err != 0)  /* a cut-short integer is read whole next time */
      putback(L, &t, (unsigned char *)chunk + got - got % sizeof(int),
              got % sizeof(int));
    if (err != 0 || got % sizeof(int) != 0) {
      if (!own) clear_tail(L, tbl, have);
      if ((err != 0 ? hpb_ioerror(L, err, NULL) : truncated(L, got)) == 2)
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


/* hpass.type(x): "handle", "closed handle", "process" or fail. */
int hpb_type (lua_State *L) {
  Handle *h;
  int closed;
  luaL_checkany(L, 1);
  if ((h = (Handle *)luaL_testudata(L, 1, HANDLE_T)) != NULL)
    lua_pushstring(L, isclosed(h) ? "closed handle" : "handle");
  else if (luaL_testudata(L, 1, PROCESS_T) != NULL)
    lua_pushliteral(L, "process");
  else if (hpb_issignals(L, 1, &closed))
    lua_pushstring(L, closed ? "closed signals" : "signals");
  else
    luaL_pushfail(L);
  return 1;
}


/*
** The module's functions.  Those named in handle_methods are also the
** methods of handles -- the same closures, so hpass.read_int(h) and
** h:read_int() are one function -- and a handle has no others.
*/
static const luaL_Reg funcs[] = {
  {"pipe", hpass_pipe},
  {"socketpair", hpass_socketpair},
  {"handle", hpass_handle},
  {"spawn_with_handle", hpb_spawn},
  {"read_int", hpass_read_int},
  {"write_int", hpass_write_int},
  {"read_ints", hpass_read_ints},
  {"write_ints", hpass_write_ints},
  {"send_handle", hpb_send_handle},
  {"recv_handle", hpb_recv_handle},
  {"close", h_close},
  {"fileno", h_fileno},
  {"setvbuf", h_setvbuf},
  {"flush", h_flush},
  {"tofile", h_tofile},
  {"detach", h_detach},
  {"type", hpb_type},
  {"select", hpb_select},
  {"settimeout", h_settimeout},
  {"pollfd", h_pollfd},
  {"events", h_events},
  {"timeout", h_timeout},
  {NULL, NULL}
};

static const char *const handle_methods[] = {
  "read_int", "write_int", "read_ints", "write_ints", "send_handle",
  "recv_handle", "close", "fileno", "setvbuf", "flush", "tofile", "detach",
  "settimeout", "pollfd", "events", "timeout", "read", "write", "lines",
  NULL
};

static const luaL_Reg handle_meta[] = {
  {"__gc", h_gc},
#if LUA_VERSION_NUM >= 504
  {"__close", h_gc},
#endif
  {"__tostring", h_tostring},
  {NULL, NULL}
};


HPASS_API int luaopen_hpass_core (lua_State *L);

HPASS_API int luaopen_hpass_core (lua_State *L) {
  int err = hp_init(), i;
  if (err != 0) {
    char buf[256];
    return luaL_error(L, "hpass: %s", hp_strerror(err, buf, sizeof(buf)));
  }
#if LUA_VERSION_NUM >= 502
  luaL_checkversion(L);
#endif
  /* scratch memory's metatable */
  luaL_newmetatable(L, SCRATCH_T);
  lua_pushcfunction(L, scratch_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  /* handle metatable, then the module table */
  luaL_newmetatable(L, HANDLE_T);
  luaL_setfuncs(L, handle_meta, 0);
  lua_pushliteral(L, HANDLE_T);
  lua_setfield(L, -2, "__name");
  lua_createtable(L, 0, (int)(sizeof(funcs) / sizeof(funcs[0])) + 1);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, funcs, 1);  /* upvalue 1: the handle metatable */
  hpb_open_bytes(L);
  hpb_open_capture(L);
  /* the handle methods: the module's own closures */
  lua_createtable(L, 0, (int)(sizeof(handle_methods) / sizeof(char *)));
  for (i = 0; handle_methods[i] != NULL; i++) {
    lua_getfield(L, -2, handle_methods[i]);
    lua_setfield(L, -2, handle_methods[i]);
  }
  lua_setfield(L, -3, "__index");
  lua_remove(L, -2);
  lua_pushliteral(L, HPASS_VERSION);
  lua_setfield(L, -2, "_VERSION");
  hpb_open_spawn(L);
  hpb_open_signal(L);
  hpb_open_listen(L);
  hpb_setnames(L, -1);  /* argument errors name them so */
  return 1;
}
