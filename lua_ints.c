/*
** lua_ints.c - the integer protocol: write_int, read_int, write_ints and
** read_ints, native C ints of 4 bytes over any handle form.
*/

#include <limits.h>
#include <math.h>
#include <string.h>

#include "lua_base.h"

/* Bytes read at a time by read_ints (as much as a pipe holds). */
#define CHUNK       65536
/* Bytes write_ints writes per system call (converted on the C stack). */
#define WCHUNK      16384
/* read_ints makes room for this many at once; more grow the table. */
#define PRESIZE     (1 << 20)


/*
** {======================================================
** The integer protocol
** =======================================================
*/

/*
** Integer argument that fits a C int; never silently truncated.  With
** t != NULL the value is element t->elem of a table argument.
*/
static int checkint32 (lua_State *L, int i, int arg, const HandleArg *ha) {
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
  if (ha != NULL) return hpb_handleargerror(L, ha, why);
  return luaL_argerror(L, arg, why);
}

/* A cut-short integer is given back, to be read whole next time. */
static void putback (lua_State *L, HandleArg *ha, const unsigned char *b,
                     size_t k) {
  if (ha->h != NULL && hpb_pushback(L, ha->h, b, k) != 0)
    hpb_nomem(L, nunread(ha->h) + k);
}


static int truncated (lua_State *L, size_t got) {
  luaL_pushfail(L);
  lua_pushfstring(L, "truncated integer (stream ended after %d of 4 bytes)",
                  (int)(got % 4));
  return 2;
}


static int hpass_write_int (lua_State *L) {
  HandleArg ha;
  int v, err;
  size_t sent;
  hpb_tohandlearg(L, 1, 1, &ha);
  v = checkint32(L, 2, 2, NULL);
  hpb_noextra(L, 2);
  if ((err = hpb_prepwrite(L, &ha)) != 0 ||
      (err = hpb_send(L, &ha, (unsigned char *)&v, 4, hpb_deadline(ha.h), 4, &sent)) != 0)
    return hpb_ioerror(L, err, NULL);
  lua_pushboolean(L, 1);
  return 1;
}


static int hpass_read_int (lua_State *L) {
  HandleArg ha;
  int v, err;
  size_t got;
  hpb_tohandlearg(L, 1, 1, &ha);
  hpb_noextra(L, 1);
  err = hpb_recv(L, &ha, (unsigned char *)&v, 4, &got, hpb_deadline(ha.h));
  if (err != 0) {
    putback(L, &ha, (unsigned char *)&v, got);
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
** write_ints checks every element before it writes any.  A range that
** fits chunk is converted as it is checked, and written from there; a
** longer one is converted again chunk by chunk as it is written, while
** the reader is busy with the chunk before.  (Converting all of it once,
** into memory of its own, saves that second walk but not the time: the
** second walk overlaps the reader's work, and fresh memory for millions
** of integers costs page faults that, on some machines, cost more than
** the walk.)  Returns how many integers chunk holds.
*/
static size_t checkall (lua_State *L, lua_Integer i, lua_Integer j, HandleArg *e,
                        int *chunk) {
  lua_Integer k;
  size_t n;
  int last;
  if (i > j) return 0;
  n = nextstep(i, j, WCHUNK / sizeof(int), &last);
  if (last) {
    toint32s(L, 2, i, n, chunk, e);
    return n;
  }
  for (k = i;; k += (lua_Integer)n) {
    n = nextstep(k, j, CHECKSTEP, &last);
    toint32s(L, 2, k, n, NULL, e);
    if (last) return 0;  /* k += n could overflow past j */
  }
}


/* Write the total integers at buf, 4096 a system call. */
static int sendall (lua_State *L, HandleArg *ha, const int *buf, size_t total,
                    hp_time dl, lua_Integer *written) {
  size_t off, m;
  for (off = 0; off < total; off += m) {
    size_t sent;
    int err;
    m = total - off < WCHUNK / sizeof(int) ? total - off : WCHUNK / sizeof(int);
    hpb_handlearg_check(L, ha);
    err = hpb_writeall(ha->h, ha->os, (const unsigned char *)(buf + off),
                       m * sizeof(int), dl, 4, &sent);
    *written += (lua_Integer)(sent / sizeof(int));
    if (err != 0) return err;
  }
  return 0;
}


/* Write t[i..j], converted again a chunk at a time (checked before). */
static int sendchunks (lua_State *L, HandleArg *ha, HandleArg *e, lua_Integer i,
                       lua_Integer j, int *chunk, hp_time dl, lua_Integer *written) {
  lua_Integer k;
  size_t n;
  int last;
  for (k = i; k <= j; k += (lua_Integer)n) {
    int err;
    n = nextstep(k, j, WCHUNK / sizeof(int), &last);
    toint32s(L, 2, k, n, chunk, e);
    if ((err = sendall(L, ha, chunk, n, dl, written)) != 0) return err;
    if (last) break;
  }
  return 0;
}


/*
** hpass.write_ints(h, t [, i [, j]]): true, or fail, msg, code and the
** number of integers written before the failure (a timeout included:
** then the stream holds exactly that many, whole).
*/
static int hpass_write_ints (lua_State *L) {
  HandleArg ha, e;
  lua_Integer i, j, written = 0;
  int err;
  int chunk[WCHUNK / sizeof(int)];
  size_t head;
  hp_time dl;
  hpb_tohandlearg(L, 1, 1, &ha);
  dl = hpb_deadline(ha.h);  /* the check below counts too: the call has begun */
  luaL_checktype(L, 2, LUA_TTABLE);
  i = luaL_optinteger(L, 3, 1);
  j = luaL_opt(L, luaL_checkinteger, 4, (lua_Integer)lua_rawlen(L, 2));
  hpb_noextra(L, 4);
  e.arg = 2;
  e.inarray = 1;
  e.opt = NULL;
  /* a bad element must not leave half a write: everything is checked first */
  head = checkall(L, i, j, &e, chunk);
  if ((err = hpb_prepwrite(L, &ha)) == 0 &&
      (ha.h == NULL || (err = hpb_flushbuf(ha.h, dl)) == 0))
    err = head > 0 || i > j ? sendall(L, &ha, chunk, head, dl, &written)
                            : sendchunks(L, &ha, &e, i, j, chunk, dl, &written);
  if (err == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
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
  HandleArg ha;
  lua_Integer want, have = 0;
  int tbl, own;
  int *chunk;
  hp_time dl;
  hpb_tohandlearg(L, 1, 1, &ha);
  dl = hpb_deadline(ha.h);
  want = luaL_checkinteger(L, 2);
  luaL_argcheck(L, want >= 0, 2, "count must not be negative");
  own = lua_isnoneornil(L, 3);
  if (!own) luaL_checktype(L, 3, LUA_TTABLE);
  hpb_noextra(L, 3);
  lua_settop(L, 3);
  chunk = (int *)lua_newuserdatauv(L, CHUNK, 0);
  if (own)  /* sized once integers come: a wait that times out costs none */
    lua_newtable(L);
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
    err = hpb_recv(L, &ha, (unsigned char *)chunk, m * sizeof(int), &got, dl);
    if (own && have == 0 && got >= sizeof(int)) {
      /* room for up to a million without rehashing; more grows */
      lua_createtable(L, want < PRESIZE ? (int)want : PRESIZE, 0);
      lua_replace(L, tbl);
    }
    for (k = 0; k < got / sizeof(int); k++) {
      lua_pushinteger(L, chunk[k]);
      rawseti(L, tbl, ++have);
    }
    if (err != 0)  /* a cut-short integer is read whole next time */
      putback(L, &ha, (unsigned char *)chunk + got - got % sizeof(int),
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


static const luaL_Reg funcs[] = {
  {"read_int", hpass_read_int},
  {"write_int", hpass_write_int},
  {"read_ints", hpass_read_ints},
  {"write_ints", hpass_write_ints},
  {NULL, NULL}
};

int hpb_open_ints (lua_State *L) {
  hpb_addfuncs(L, funcs);
  return 0;
}
