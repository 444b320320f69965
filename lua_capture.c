/*
** lua_capture.c - the engine of hpass.capture: a child's standard output
** and error read to their end while its input is written, whichever is
** ready first, so that no size or interleaving of the three can deadlock.
**
** hpass.capture itself (lua/hpass.lua) makes the pipes, starts the child
** and waits for it; this file moves the bytes.  The output grows in
** buffers outside the collector, doubled as needed (memory proportional
** to the output), and becomes two strings at the end.
*/

#include <string.h>

#include "lua_hpass.h"

#define PUMP_T    "hpass.pump"
#define STEP      65536    /* bytes asked of a read at a time */


/* The output buffers, freed by __gc if an error cuts the call short. */
typedef struct Pump {
  lua_Alloc f;
  void *ud;
  unsigned char *buf[2];
  size_t len[2], cap[2];
} Pump;

static void freepump (Pump *p) {
  int i;
  for (i = 0; i < 2; i++) {
    if (p->buf[i] != NULL) p->f(p->ud, p->buf[i], p->cap[i], 0);
    p->buf[i] = NULL;
  }
}

static int pump_gc (lua_State *L) {
  freepump((Pump *)lua_touserdata(L, 1));
  return 0;
}

/* Room for STEP more bytes in buffer i: 0 or an error code. */
static int room (Pump *p, int i) {
  size_t cap = p->cap[i];
  unsigned char *b;
  if (cap - p->len[i] >= STEP) return 0;
  cap = cap < STEP ? (size_t)4 * STEP : 2 * cap;
  if (cap < p->cap[i]) return hp_err_nomem();  /* overflow */
  b = (unsigned char *)p->f(p->ud, p->buf[i], p->cap[i], cap);
  if (b == NULL) return hp_err_nomem();
  p->buf[i] = b;
  p->cap[i] = cap;
  return 0;
}


/*
** Writes to every page of b[0 .. n) before a read fills it.  A page first
** touched by the kernel's copy out of a pipe faults while the reader holds
** the pipe's lock, and the child writing into the pipe spins on that lock
** meanwhile: capturing 100 MiB took a fifth longer than io.popen's read,
** which copies through a small buffer that stays mapped.
*/
static void touch (unsigned char *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i += 4096) b[i] = 0;
}


/* The handle at i, open, or NULL for nil. */
static Handle *opthandle (lua_State *L, int i) {
  Handle *h;
  if (lua_isnil(L, i)) return NULL;
  h = (Handle *)luaL_checkudata(L, i, HANDLE_T);
  if (isclosed(h)) luaL_argerror(L, i, "attempt to use a closed handle");
  return h;
}


/*
** hpass.core._pump(out, err, in, input, seconds): out and err (read ends,
** err may be nil) are read to their end while input is written to in (a
** write end, closed when all is written or the child stopped reading).
** Returns the output, the error output (nil without err), and "timeout"
** when the time ran out first; or fail, message, code.
*/
static int capture_pump (lua_State *L) {
  Handle *hs[3];
  Pump *p;
  Scratch *scratch;
  size_t inlen = 0, inpos = 0, i;
  const char *input = NULL;
  hp_time dl, pause = 1;
  int timedout = 0, err = 0, stalled = 0;
  hs[0] = opthandle(L, 1);
  hs[1] = opthandle(L, 2);
  hs[2] = opthandle(L, 3);
  luaL_argcheck(L, hs[0] != NULL, 1, "handle expected");
  if (hs[2] != NULL) input = luaL_checklstring(L, 4, &inlen);
  dl = hpb_opttimeout(L, 5);
  if (dl != HP_NEVER) dl += hp_now();
  lua_settop(L, 5);
  p = (Pump *)lua_newuserdatauv(L, sizeof(Pump), 0);
  memset(p, 0, sizeof(*p));
  p->f = lua_getallocf(L, &p->ud);
  luaL_getmetatable(L, PUMP_T);
  lua_setmetatable(L, -2);
  scratch = hpb_newscratch(L);
  /* making those two may have run a finalizer that closed a handle */
  for (i = 0; i < 3; i++)
    if (hs[i] != NULL && isclosed(hs[i]))
      return luaL_error(L, "handle was closed during the call");
  /* writes to the child must never wait: it may be waiting for us */
  if (hs[2] != NULL && (err = hp_setnonblock(hs[2]->os)) != 0)
    return hpb_oserror(L, err, NULL);
  for (;;) {
    hp_pollitem it[3];
    int n = 0, nready, k[3];
    hp_time wake = dl;
    if (hs[2] != NULL && inpos == inlen) {  /* all written: the child sees the end */
      (void)hpb_close(L, hs[2]);
      hs[2] = NULL;
    }
    for (i = 0; i < 3; i++) {
      if (hs[i] == NULL || (i == 2 && stalled)) continue;
      it[n].h = hs[i]->os;
      it[n].events = i < 2 ? HP_READABLE : HP_WRITABLE;
      k[n++] = (int)i;
    }
    if (hs[0] == NULL && hs[1] == NULL && hs[2] == NULL) break;
    if (stalled) {  /* the pipe took nothing last time: try again soon */
      hp_time next = hp_now() + pause;
      if (wake == HP_NEVER || next < wake) wake = next;
      if (pause < 10) pause *= 2;
    }
    err = hp_poll(it, (size_t)n, wake, &nready, hpb_scratchalloc, scratch);
    hpb_freescratch(scratch);
    if (err != 0) break;
    if (nready == 0 && dl != HP_NEVER && hp_now() >= dl) {
      timedout = 1;
      break;
    }
    stalled = 0;
    for (i = 0; i < (size_t)n; i++) {
      int w = k[i];
      size_t done;
      if (!it[i].revents) continue;
      if (w < 2) {
        if ((err = room(p, w)) != 0) break;
        touch(p->buf[w] + p->len[w], STEP);
        err = hp_read(hs[w]->os, p->buf[w] + p->len[w], STEP, &done);
        if (err != 0) break;
        p->len[w] += done;
        if (done == 0) hs[w] = NULL;  /* the end of that stream */
      }
      else {
        err = hp_write(hs[2]->os, input + inpos, inlen - inpos, &done);
        if (err == hp_err_pipe()) {  /* it stopped reading: no failure */
          err = 0;
          done = inlen - inpos;
        }
        if (err != 0) break;
        inpos += done;
        if (done == 0) stalled = 1;
        else pause = 1;
      }
    }
    if (err != 0) break;
  }
  if (err != 0) {
    freepump(p);
    return hpb_oserror(L, err, NULL);
  }
  lua_pushlstring(L, (const char *)p->buf[0], p->len[0]);
  if (lua_isnil(L, 2)) lua_pushnil(L);
  else lua_pushlstring(L, (const char *)p->buf[1], p->len[1]);
  freepump(p);
  if (timedout) lua_pushliteral(L, "timeout");
  else lua_pushnil(L);
  return 3;
}


/* Adds _pump to the module table on top (upvalue: the metatable). */
void hpb_open_capture (lua_State *L) {
  luaL_newmetatable(L, PUMP_T);
  lua_pushcfunction(L, pump_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, capture_pump, 1);
  lua_setfield(L, -2, "_pump");
}
