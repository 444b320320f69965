/*
** lua_bytes.c - bytes and lines on handles: read, write, lines.
**
** The formats and results are those of Lua's io library ("a", "l", "L",
** a byte count; fail at the end of the stream; fail, message, code on an
** error), on the handle's own buffer, so bytes and integers mix on one
** stream in order.  Unlike C stdio these calls wait on non-blocking
** descriptors and honour settimeout.
**
** A line read must look ahead for its end: an hpass handle keeps what it
** read past the line in its buffer (it then holds unread input, which
** spawn_with_handle and tofile refuse, as ever).  Otherwise an unbuffered
** handle takes no more than a read returns.  Other handle forms have no
** buffer of hpass's, so they are read a byte at a time for lines.
*/

#include <string.h>

#include "lua_base.h"

/* Formats lines() keeps at most, as liolib's MAXARGLINE. */
#define MAXFORMATS  250


/*
** {======================================================
** Reading
** =======================================================
*/

/*
** One call of read on an hpass handle takes nothing out of the handle's
** buffer until all its formats are done: *pos counts the bytes its
** formats have taken so far, after h->rpos, and g_read consumes them at
** the end.  A timeout or an error in a later format so loses nothing:
** what the earlier formats took stays in the handle for the next read.
*/
#define have(h,pos)   (nunread(h) - (pos))

/*
** Push len bytes of h's buffer, from pos, as a string.  Never straight
** from the buffer: making the string may run a finalizer that closes h
** and frees its buffer.  The bytes are copied first into a block of the
** call's own, made before anything is read.
*/
static void pushbuf (lua_State *L, Handle *h, size_t pos, size_t len) {
  char *tmp = (char *)lua_newuserdatauv(L, len == 0 ? 1 : len, 0);
  if (isclosed(h)) luaL_error(L, "handle was closed during the call");
  if (len > 0) memcpy(tmp, h->rbuf + h->rpos + pos, len);
  lua_pushlstring(L, tmp, len);
  lua_remove(L, -2);
}


/*
** A line from handle h: everything up to '\n' (kept when keep), or the
** rest at the end of the stream; fail at the end with nothing left.
*/
static int readline_h (lua_State *L, Handle *h, int keep, hp_time dl,
                       size_t *pos) {
  size_t scanned = 0;
  int eof = 0;
  for (;;) {
    size_t n = have(h, *pos);
    const unsigned char *start = n > 0 ? h->rbuf + h->rpos + *pos : NULL;
    const unsigned char *nl = n > scanned
        ? (const unsigned char *)memchr(start + scanned, '\n', n - scanned)
        : NULL;
    if (nl != NULL || (eof && n > 0)) {
      size_t len = nl != NULL ? (size_t)(nl - start) : n;
      pushbuf(L, h, *pos, len + (nl != NULL && keep));
      *pos += len + (nl != NULL);
      return 0;
    }
    if (eof) {
      luaL_pushfail(L);
      return 0;
    }
    scanned = n;
    {  /* look ahead: as much as there is */
      int err = hpb_fill(L, h, dl, (size_t)-1, &eof);
      if (err != 0) return err;
    }
  }
}


/*
** n bytes (fewer at the end of the stream) from handle h, or fail.  An
** unbuffered handle takes no more from the OS than it returns (read(0),
** which asks whether anything is left, takes one byte).
*/
static int readcount_h (lua_State *L, Handle *h, size_t n, hp_time dl,
                        size_t *pos) {
  size_t want = n > 0 ? n : 1;
  int eof = 0;
  while (have(h, *pos) < want && !eof) {
    size_t max = h->size > 0 ? (size_t)-1 : want - have(h, *pos);
    int err = hpb_fill(L, h, dl, max, &eof);
    if (err != 0) return err;
  }
  if (have(h, *pos) == 0) {
    luaL_pushfail(L);
    return 0;
  }
  if (n > have(h, *pos)) n = have(h, *pos);
  pushbuf(L, h, *pos, n);
  *pos += n;
  return 0;
}


/* Everything up to the end of the stream ("" when nothing is left). */
static int readall_h (lua_State *L, Handle *h, hp_time dl, size_t *pos) {
  int eof = 0;
  while (!eof) {
    int err = hpb_fill(L, h, dl, (size_t)-1, &eof);
    if (err != 0) return err;
  }
  pushbuf(L, h, *pos, have(h, *pos));
  *pos = nunread(h);
  return 0;
}


/*
** The same three for the other handle forms (numbers, Lua files, getfd()
** objects), which have no timeout: lines a byte at a time, so that
** nothing past the line is taken from the descriptor.
*/
static int readline_arg (lua_State *L, HandleArg *ha, int keep) {
  luaL_Buffer b;
  size_t n = 0;
  luaL_buffinit(L, &b);
  for (;;) {
    unsigned char c;
    size_t got;
    int err = hpb_recv(L, ha, &c, 1, &got, HP_NEVER);
    if (err != 0) return err;
    if (got == 0) break;
    n++;
    if (c == '\n') {
      if (keep) luaL_addchar(&b, (char)c);
      luaL_pushresult(&b);
      return 0;
    }
    luaL_addchar(&b, (char)c);
  }
  luaL_pushresult(&b);
  if (n == 0) {
    lua_pop(L, 1);
    luaL_pushfail(L);
  }
  return 0;
}

static int readcount_arg (lua_State *L, HandleArg *ha, size_t n, int all) {
  luaL_Buffer b;
  size_t total = 0;
  luaL_buffinit(L, &b);
  while (all || total < n) {
    size_t want = all || n - total > BUFSTEP ? BUFSTEP : n - total, got;
    char *p = luaL_prepbuffsize(&b, want);
    int err = hpb_recv(L, ha, (unsigned char *)p, want, &got, HP_NEVER);
    if (err != 0) return err;
    luaL_addsize(&b, got);
    total += got;
    if (got < want) break;  /* the end of the stream */
  }
  luaL_pushresult(&b);
  if (total == 0 && !all) {
    lua_pop(L, 1);
    luaL_pushfail(L);
  }
  return 0;
}


/*
** hpass.read(h, ...): one result per format, as io's read; a format that
** finds the end of the stream gives fail and ends the list.  On an error
** fail, message, code (timeout included: what was read stays readable).
*/
static int g_read (lua_State *L, int first) {
  HandleArg ha;
  int n = lua_gettop(L), i, err = 0;
  size_t pos = 0;  /* what the formats took from an hpass handle's buffer */
  hp_time dl;
  hpb_tohandlearg(L, 1, 1, &ha);
  dl = hpb_deadline(ha.h);
  if (n < first) {  /* no format: a line */
    lua_pushliteral(L, "l");
    n = first;
  }
  luaL_checkstack(L, n + LUA_MINSTACK, "too many formats");
  for (i = first; i <= n; i++) {
    if (lua_type(L, i) == LUA_TNUMBER) {
      lua_Integer k = luaL_checkinteger(L, i);
      luaL_argcheck(L, k >= 0, i, "count must not be negative");
      /* read(0) tells whether anything is left: only a buffer can */
      luaL_argcheck(L, k > 0 || ha.h != NULL, i,
                    "count 0 needs an hpass handle");
      err = ha.h != NULL ? readcount_h(L, ha.h, (size_t)k, dl, &pos)
                         : readcount_arg(L, &ha, (size_t)k, 0);
    }
    else {
      const char *p = luaL_checkstring(L, i);
      if (*p == '*') p++;  /* Lua 5.1 and 5.2 spell them "*l" */
      switch (*p) {
        case 'l': case 'L':
          err = ha.h != NULL ? readline_h(L, ha.h, *p == 'L', dl, &pos)
                             : readline_arg(L, &ha, *p == 'L');
          break;
        case 'a':
          err = ha.h != NULL ? readall_h(L, ha.h, dl, &pos)
                             : readcount_arg(L, &ha, 0, 1);
          break;
        default:
          return luaL_argerror(L, i, "invalid format");
      }
    }
    if (err != 0) return hpb_ioerror(L, err, NULL);  /* nothing consumed */
    if (ha.h != NULL && isclosed(ha.h))  /* a finalizer closed it */
      return luaL_error(L, "handle was closed during the call");
    if (lua_isnil(L, -1)) break;  /* the end: no more results */
  }
  if (ha.h != NULL) {  /* every format is done: now they take their bytes */
    ha.h->rpos += pos;
    hpb_trim(L, ha.h);
  }
  return i - first + (i > n ? 0 : 1);
}


static int hpass_read (lua_State *L) {
  return g_read(L, 2);
}

/* }====================================================== */


/*
** {======================================================
** Writing and lines()
** =======================================================
*/

/*
** hpass.write(h, ...): strings and numbers, as io's write; the handle,
** or fail, message, code and the number of bytes of this call that went
** out (on a timeout, exactly those are in the stream).
*/
static int hpass_write (lua_State *L) {
  HandleArg ha;
  int n = lua_gettop(L), i, err = 0;
  size_t total = 0;
  hp_time dl;
  /* numbers become strings first: that allocates, and may run a finalizer
     that closes the handle, which must happen before it is read */
  luaL_checkany(L, 1);
  for (i = 2; i <= n; i++) {
    if (lua_type(L, i) != LUA_TNUMBER) luaL_checktype(L, i, LUA_TSTRING);
    else (void)lua_tolstring(L, i, NULL);
  }
  hpb_tohandlearg(L, 1, 1, &ha);
  dl = hpb_deadline(ha.h);
  if (ha.f != NULL && (err = hp_fflush(ha.f)) != 0) goto failed;
  for (i = 2; i <= n; i++) {
    size_t len, sent;
    const char *s = lua_tolstring(L, i, &len);
    err = hpb_send(L, &ha, (const unsigned char *)s, len, dl, 1, &sent);
    total += sent;
    if (err != 0) goto failed;
  }
  lua_pushvalue(L, 1);
  return 1;
failed:
  hpb_ioerror(L, err, NULL);
  lua_pushinteger(L, (lua_Integer)total);
  return 4;
}


/*
** The iterator of lines().  Upvalues: the handle metatable (as every
** function of the module has), the number of formats, the handle, the
** formats.
*/
static int io_readline (lua_State *L) {
  int n = (int)lua_tointeger(L, lua_upvalueindex(2)), i, r;
  lua_settop(L, 0);
  luaL_checkstack(L, n + LUA_MINSTACK, "too many formats");
  for (i = 0; i <= n; i++) lua_pushvalue(L, lua_upvalueindex(3 + i));
  r = g_read(L, 2);
  /* an error (fail, message, code) raises, as io's lines() does */
  if (r == 3 && lua_isnil(L, -3) && lua_type(L, -1) == LUA_TNUMBER)
    return luaL_error(L, "%s", lua_tostring(L, -2));
  return r;
}

/*
** hpass.lines(h, ...): an iterator reading with the formats (default
** "l") until the end of the stream.  The handle stays open at the end;
** an error raises.
*/
static int hpass_lines (lua_State *L) {
  int n = lua_gettop(L) - 1, i;
  HandleArg ha;
  hpb_tohandlearg(L, 1, 1, &ha);  /* checks that it is a handle */
  luaL_argcheck(L, n <= MAXFORMATS, MAXFORMATS + 2, "too many arguments");
  for (i = 2; i <= n + 1; i++)
    if (lua_type(L, i) != LUA_TNUMBER) luaL_checkstring(L, i);
  luaL_checkstack(L, n + 3, "too many arguments");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushinteger(L, n);
  for (i = 1; i <= n + 1; i++) lua_pushvalue(L, i);
  lua_pushcclosure(L, io_readline, n + 3);
  return 1;
}


static const luaL_Reg funcs[] = {
  {"read", hpass_read},
  {"write", hpass_write},
  {"lines", hpass_lines},
  {NULL, NULL}
};

/* Adds the byte calls to the module table on top (upvalue: metatable). */
int hpb_open_bytes (lua_State *L) {
  hpb_addfuncs(L, funcs);
  return 0;
}

/* }====================================================== */
