/*
** lua_base_arg.c - the base of the binding: handle arguments, every form
** a call accepts as a handle (an hpass handle, a Lua file, a descriptor
** number, an object with getfd()), and the transfers through one
** (lua_base.h).
*/

#include <math.h>
#include <string.h>

#include "lua_base.h"


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

/* }====================================================== */


/*
** {======================================================
** Handle arguments: every form a handle argument may take
** =======================================================
*/

int hpb_handleargerror (lua_State *L, const HandleArg *ha, const char *msg) {
  char num[32];
  if (ha->opt != NULL)
    msg = lua_pushfstring(L, "option '%s': %s", ha->opt, msg);
  else if (ha->inarray) {
    (void)snprintf(num, sizeof(num), "%lld", (long long)ha->elem);
    msg = lua_pushfstring(L, "element %s: %s", num, msg);
  }
  return luaL_argerror(L, ha->arg, msg);
}


/*
** A number that can be a descriptor: whole, not negative, not beyond
** what a double holds exactly (so that the cast below is defined).  The
** OS layer refuses numbers that are no open handle.
*/
hp_os hpb_checkdescriptor (lua_State *L, int i, const HandleArg *ha,
                           const char *what) {
  lua_Number d;
  if (lua_isinteger(L, i)) {
    lua_Integer v = lua_tointeger(L, i);
    if (v < 0) hpb_handleargerror(L, ha, "invalid descriptor (negative)");
    return (hp_os)v;
  }
  d = lua_tonumber(L, i);
  if (!iswhole(d, -HUGE_VAL)) hpb_handleargerror(L, ha, what);
  if (d < 0) hpb_handleargerror(L, ha, "invalid descriptor (negative)");
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


void hpb_handlearg_getfd (lua_State *L, int i, HandleArg *ha) {
  lua_Number d;
  ha->os = HP_NOHANDLE;
  ha->h = NULL;
  ha->f = NULL;
  ha->file = NULL;
  ha->getfd = 0;
  switch (lua_type(L, i)) {
    case LUA_TUSERDATA:
      if (hpb_testhandle(L, i) != NULL || isfile(L, i)) return;
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
    hpb_handleargerror(L, ha, "getfd() did not return a number");
  d = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (d < 0) hpb_handleargerror(L, ha, "attempt to use a closed socket");
  /* NaN, a fraction or a huge float must not reach the cast below */
  if (!iswhole(d, -HUGE_VAL))
    hpb_handleargerror(L, ha, "getfd() did not return a descriptor number");
  ha->os = (hp_os)d;
  ha->getfd = 1;
}


void hpb_handlearg_resolve (lua_State *L, int i, HandleArg *ha) {
  int closed = 0;
  if (ha->getfd) return;
  switch (lua_type(L, i)) {
    case LUA_TNUMBER:
      ha->os = hpb_checkdescriptor(L, i, ha, "descriptor must be an integer");
      return;
    case LUA_TUSERDATA: {
      Handle *h = hpb_testhandle(L, i);
      FILE *f;
      void *u;
      if (h != NULL) {
        if (isclosed(h)) hpb_handleargerror(L, ha, "attempt to use a closed handle");
        ha->os = h->os;
        ha->h = h;
        return;
      }
      f = tofilep(L, i, &closed, &u);
      if (f != NULL || closed) {
        if (closed) hpb_handleargerror(L, ha, "attempt to use a closed file");
        if (hp_fromfile(f, &ha->os) != 0)
          hpb_handleargerror(L, ha, "file has no descriptor");
        ha->f = f;
        ha->file = u;
        return;
      }
      break;
    }
    default:
      break;
  }
  hpb_handleargerror(L, ha, lua_pushfstring(L,
      "handle, file, descriptor or socket expected, got %s",
      luaL_typename(L, i)));
}


/*
** The one handle argument i.  An hpass handle, the common case (every
** read_int and write_int of the seed protocol), is told apart with one
** comparison before the general path.
*/
void hpb_tohandlearg (lua_State *L, int i, int arg, HandleArg *ha) {
  Handle *h = hpb_testhandle(L, i);
  ha->arg = arg;
  ha->inarray = 0;
  ha->elem = 0;
  ha->opt = NULL;
  ha->f = NULL;
  ha->file = NULL;
  ha->getfd = 0;
  if (h != NULL) {
    if (isclosed(h)) hpb_handleargerror(L, ha, "attempt to use a closed handle");
    ha->os = h->os;
    ha->h = h;
    return;
  }
  hpb_handlearg_getfd(L, i, ha);
  hpb_handlearg_resolve(L, i, ha);
}


/*
** Between resolving t and using it, Lua code may have run: any allocation
** through the collector can run a finalizer, and a finalizer can close
** what t names.  Closing frees a Lua file's FILE and an hpass handle's
** buffers, so every use below starts here.  The objects themselves are
** anchored by the caller: only whether they are still open can change.
*/
void hpb_handlearg_check (lua_State *L, HandleArg *ha) {
  int closed = 0;
  if (ha->h != NULL) {
    if (isclosed(ha->h))
      hpb_handleargerror(L, ha, "handle was closed during the call");
    ha->os = ha->h->os;
  }
  else if (ha->f != NULL && (streamof(ha->file, &closed) != ha->f || closed))
    hpb_handleargerror(L, ha, "file was closed during the call");
}


int hpb_hasahead (lua_State *L, HandleArg *ha) {
  hpb_handlearg_check(L, ha);
  return (ha->h != NULL && nunread(ha->h) > 0) ||
         (ha->f != NULL && hp_freadahead(ha->f) > 0);
}


int hpb_issingle (lua_State *L, int i) {
  int single = lua_type(L, i) != LUA_TTABLE || findgetfd(L, i);
  if (lua_type(L, i) == LUA_TTABLE && single) lua_pop(L, 1);
  return single;
}


int hpb_prepwrite (lua_State *L, HandleArg *ha) {
  hpb_handlearg_check(L, ha);
  return ha->f != NULL ? hp_fflush(ha->f) : 0;
}


void hpb_checkahead (lua_State *L, HandleArg *ha) {
  hpb_handlearg_check(L, ha);
  if (ha->h != NULL && nunread(ha->h) > 0)
    hpb_handleargerror(L, ha, "handle has unread buffered input");
  /* flushing a file gave back what it read ahead where it could seek */
  if (ha->f != NULL && hp_freadahead(ha->f) > 0)
    hpb_handleargerror(L, ha, "file has unread buffered input");
}


int hpb_flushout (lua_State *L, HandleArg *ha, hp_time dl) {
  hpb_handlearg_check(L, ha);
  return ha->h != NULL ? hpb_flushbuf(ha->h, dl) : hpb_prepwrite(L, ha);
}

int hpb_send (lua_State *L, HandleArg *ha, const unsigned char *b, size_t n,
              hp_time deadline, size_t whole, size_t *sent) {
  Handle *h;
  hpb_handlearg_check(L, ha);
  h = ha->h;
  *sent = 0;
  if (h != NULL && h->size > 0) {
    int join = h->nruns > 0 && h->iruns[2 * h->nruns - 1] == h->wlen;
    if (h->wlen + n > h->size || (whole > 1 && !join && h->nruns == IRUNS)) {
      /*
      ** A flush that runs out of time leaves these bytes unqueued, so a
      ** timeout never leaves part of an integer behind.
      */
      int err = hpb_flushbuf(h, deadline);
      if (err != 0) return err;
      if (n > h->size) return hpb_writeall(h, ha->os, b, n, deadline, whole, sent);
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
  return hpb_writeall(h, ha->os, b, n, deadline, whole, sent);
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
int hpb_recv (lua_State *L, HandleArg *ha, unsigned char *b, size_t n,
              size_t *got, hp_time deadline) {
  Handle *h;
  hpb_handlearg_check(L, ha);
  h = ha->h;
  *got = ha->f != NULL ? hp_ftake(ha->f, b, n) : 0;
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
    if (h != NULL && h->wlen > 0 && (err = hpb_flushbuf(h, deadline)) != 0)
      return err;
    if ((err = hpb_ready(h, ha->os, HP_READABLE, deadline)) != 0) return err;
    if (h != NULL && h->size > 0 && n - *got < h->rcap) {
      h->rpos = h->rlen = 0;
      err = hp_read(ha->os, h->rbuf, h->rcap, &done);
      if (err != 0) return err;
      if (done == 0) return 0;
      h->rlen = done;
      continue;
    }
    err = hp_read(ha->os, b + *got, n - *got, &done);
    if (err != 0) return err;
    if (done == 0) return 0;
    *got += done;
  }
  return 0;
}

/* }====================================================== */
