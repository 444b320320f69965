/*
** lua_base_result.c - the base of the binding: results (fail, message,
** code), scratch memory for the OS layer, timeouts and deadlines, and
** the kinds of objects other than handles (lua_base.h).
*/

#include <math.h>
#include <string.h>

#include "lua_base.h"

#define SCRATCH_T   "hpass.scratch"


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


int hpb_settimeout (lua_State *L, hp_time *timeout) {
  hp_time ms = hpb_opttimeout(L, 2);
  hpb_noextra(L, 2);
  *timeout = ms;
  lua_pushboolean(L, 1);
  return 1;
}


int hpb_pushtimeout (lua_State *L, hp_time timeout) {
  hpb_noextra(L, 1);
  if (timeout == HP_NEVER) lua_pushnil(L);
  else lua_pushnumber(L, (lua_Number)timeout / 1000);
  return 1;
}


hp_time hpb_deadline (Handle *h) {
  if (h == NULL) return HP_NEVER;
  h->tried = h->late = 0;
  return hp_after(h->timeout);
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

void hpb_gcmetatable (lua_State *L, const char *tname, lua_CFunction gc) {
  luaL_newmetatable(L, tname);
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

/* The metatable of scratch memory. */
void hpb_open_scratch (lua_State *L) {
  hpb_gcmetatable(L, SCRATCH_T, scratch_gc);
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
** Kinds of objects
** =======================================================
*/

#define KINDS     "hpass.kinds"   /* registry: metatable -> its Kind */

/* The metatable on top gets Kind k (in a registry table: no new field). */
void hpb_setkind (lua_State *L, Kind *k) {
  hpb_regtable(L, KINDS);
  lua_pushvalue(L, -2);
  lua_pushlightuserdata(L, k);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}


const Kind *hpb_kindof (lua_State *L, int i) {
  const Kind *k = NULL;
  if (lua_type(L, i) != LUA_TUSERDATA || !lua_getmetatable(L, i)) return NULL;
  lua_getfield(L, LUA_REGISTRYINDEX, KINDS);
  if (lua_istable(L, -1)) {
    lua_pushvalue(L, -2);
    lua_rawget(L, -2);
    k = (const Kind *)lua_touserdata(L, -1);  /* NULL unless a Kind */
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return k;
}

/* }====================================================== */

