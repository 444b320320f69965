/*
** lua_handle.c - handle objects: hpass.pipe, socketpair and handle make
** them; close, fileno, setvbuf, flush, tofile, detach, settimeout and
** the polling protocol (pollfd, events, timeout); hpass.type; what a
** handle holds in its buffers, taken out for communicate (lua/hpass.lua).
*/

#include <limits.h>
#include <string.h>

#include "lua_base.h"

/* The range of setvbuf's size: an integer fits, and a size_t holds it. */
#define MINBUF      4
#define MAXBUF      (1 << 30)


/*
** {======================================================
** Lua files made from handles
** =======================================================
*/

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
  Handle *h = hpb_checkhandle(L, 1);
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
  HandleArg ha;
  Handle *h;
  int err;
  memset(&ha, 0, sizeof(ha));
  ha.arg = 1;
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
    ha.os = (hp_os)v;
  }
  else {
    luaL_checktype(L, 1, LUA_TNUMBER);
    ha.os = hpb_checkdescriptor(L, 1, &ha, "descriptor must be an integer");
  }
  h = hpb_newhandle(L);
  if ((err = hp_check(ha.os)) != 0 || (err = hp_noinherit(ha.os)) != 0)
    return hpb_oserror(L, err, NULL);
  h->os = ha.os;
  return 1;
}


/* h:setvbuf("no" | "full" [, size]) */
static int h_setvbuf (lua_State *L) {
  static const char *const modes[] = {"no", "full", NULL};
  Handle *h = hpb_checkhandle(L, 1);
  int mode = luaL_checkoption(L, 2, NULL, modes);
  lua_Integer size = luaL_optinteger(L, 3, DEFBUF);
  int err;
  hpb_noextra(L, 3);
  luaL_argcheck(L, size >= MINBUF && size <= MAXBUF, 3, "size out of range");
  err = hpb_flushbuf(h, hpb_deadline(h));
  if (err == hp_err_timeout()) return hpb_ioerror(L, err, NULL);
  if (nunread(h) > 0)
    luaL_error(L, "cannot change the buffering of a handle with unread input");
  hpb_unbuffer(L, h);
  if (mode == 1 && hpb_setbuffer(L, h, (size_t)size) != 0)
    return hpb_nomem(L, (size_t)size);
  return hpb_okresult(L, err);
}


static int h_flush (lua_State *L) {
  Handle *h = hpb_checkhandle(L, 1);
  hpb_noextra(L, 1);
  return hpb_okresult(L, hpb_flushbuf(h, hpb_deadline(h)));
}


/* h:tofile(mode): the descriptor moves into a new Lua file. */
static int h_tofile (lua_State *L) {
  Handle *h = hpb_checkhandle(L, 1);
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
  if (nunread(h) > 0)
    luaL_error(L, "cannot convert a handle with unread buffered input");
  dl = hpb_deadline(h);
  if ((err = hpb_flushbuf(h, dl)) != 0) return hpb_ioerror(L, err, NULL);
  if ((u = newfile(L)) == NULL) return 3;  /* fail, message, code */
  /* making the file ran Lua code (a finalizer; io.open before 5.2) */
  if (isclosed(h)) luaL_argerror(L, 1, "handle was closed during the call");
  if ((err = hpb_flushbuf(h, dl)) != 0) return hpb_ioerror(L, err, NULL);
  f = hp_tofile(h->os, mode, &err);
  if (f == NULL) return hpb_oserror(L, err, NULL);
  setfile(u, f);
  /* the stream owns the descriptor now */
  hpb_unbuffer(L, h);
  h->os = HP_NOHANDLE;
  return 1;
}


/*
** h:settimeout(seconds | nil): how long each blocking call on h may take
** from now on (nil: no limit), as LuaSocket's settimeout.
*/
static int h_settimeout (lua_State *L) {
  return hpb_settimeout(L, &hpb_checkhandle(L, 1)->timeout);
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
  Handle *h = hpb_checkhandle(L, 1);
  hpb_noextra(L, 1);
  if (hp_access(h->os) == HP_WRITABLE) lua_pushliteral(L, "w");
  else lua_pushliteral(L, "r");
  return 1;
}

static int h_timeout (lua_State *L) {
  return hpb_pushtimeout(L, hpb_checkhandle(L, 1)->timeout);
}


/*
** h:detach(): the descriptor number, now owned by the caller; the handle
** is left closed and the descriptor open.  For handing it to a library
** that takes plain descriptors (LuaSocket's setfd, luaposix).
*/
static int h_detach (lua_State *L) {
  Handle *h = hpb_checkhandle(L, 1);
  int err;
  hpb_noextra(L, 1);
  if (nunread(h) > 0)
    luaL_error(L, "cannot detach a handle with unread buffered input");
  if ((err = hpb_flushbuf(h, hpb_deadline(h))) != 0) return hpb_ioerror(L, err, NULL);
  lua_pushinteger(L, (lua_Integer)h->os);
  hpb_unbuffer(L, h);
  h->os = HP_NOHANDLE;
  return 1;
}


/*
** hpass.core._takebuffered(h): what hpass handle h holds in its
** buffers, taken out of them: the input read ahead and not yet read, and
** the output not yet written.  communicate moves bytes past the buffers,
** straight to and from the OS, so it takes them first: nothing the
** script read ahead, or wrote into a buffer, is lost or reordered.
*/
static int h_takebuffered (lua_State *L) {
  Handle *h = hpb_checkhandle(L, 1);
  size_t nin, nout;
  unsigned char *b;
  hpb_noextra(L, 1);
  nin = nunread(h);
  nout = h->wlen;
  /* room first: the allocation may run a finalizer that closes h */
  b = (unsigned char *)lua_newuserdatauv(L, nin + nout + 1, 0);
  if (isclosed(h)) luaL_argerror(L, 1, "handle was closed during the call");
  /* a finalizer may also have read from it, or flushed it */
  if (nin > nunread(h)) nin = nunread(h);
  /* cppcheck-suppress knownConditionTrueFalse ; see above */
  if (nout > h->wlen) nout = h->wlen;
  if (nin > 0) memcpy(b, h->rbuf + h->rpos, nin);
  if (nout > 0) memcpy(b + nin, h->wbuf, nout);
  h->rpos += nin;
  h->wlen = 0;
  h->nruns = 0;
  hpb_trim(L, h);
  lua_pushlstring(L, (const char *)b, nin);
  lua_pushlstring(L, (const char *)b + nin, nout);
  return 2;
}


/*
** hpass.type(x): "handle", "closed handle", "process", "signals",
** "closed signals" or fail.
*/
static int hpass_type (lua_State *L) {
  Handle *h;
  const Kind *k;
  luaL_checkany(L, 1);
  hpb_noextra(L, 1);
  if ((h = (Handle *)luaL_testudata(L, 1, HANDLE_T)) != NULL)
    lua_pushstring(L, isclosed(h) ? "closed handle" : "handle");
  else if ((k = hpb_kindof(L, 1)) == NULL)
    luaL_pushfail(L);
  else if (k->closed != NULL && k->closed(L, 1))
    lua_pushfstring(L, "closed %s", k->name);
  else
    lua_pushstring(L, k->name);
  return 1;
}

/* }====================================================== */


static const luaL_Reg funcs[] = {
  {"pipe", hpass_pipe},
  {"socketpair", hpass_socketpair},
  {"handle", hpass_handle},
  {"close", h_close},
  {"fileno", h_fileno},
  {"setvbuf", h_setvbuf},
  {"flush", h_flush},
  {"tofile", h_tofile},
  {"detach", h_detach},
  {"type", hpass_type},
  {"settimeout", h_settimeout},
  {"pollfd", h_pollfd},
  {"events", h_events},
  {"timeout", h_timeout},
  {"_takebuffered", h_takebuffered},
  {NULL, NULL}
};

static const luaL_Reg handle_meta[] = {
  {"__gc", h_gc},
#if LUA_VERSION_NUM >= 504
  {"__close", h_gc},
#endif
  {"__tostring", h_tostring},
  {NULL, NULL}
};

/* The handle calls, and the metamethods of the handle metatable. */
int hpb_open_handle (lua_State *L) {
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, handle_meta, 0);
  lua_pop(L, 1);
  hpb_addfuncs(L, funcs);
  return 0;
}
