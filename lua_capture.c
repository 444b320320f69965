/*
** lua_capture.c - the engine of hpass.capture: a child's standard output
** and error read to their end while its input is written, whichever is
** ready first, so that no size or interleaving of the three can deadlock.
**
** hpass.capture itself (lua/hpass.lua) makes the pipes, starts the child
** and waits for it; this file moves the bytes.  The output grows in
** buffers outside the collector, doubled as needed (memory proportional
** to the output, up to a limit), and becomes two strings at the end.
**
** Everything the engine knows lives in a Pump: what came so far, how much
** of the input went, which streams are still open.  pumprun moves bytes
** until the streams end, the deadline passes or the limit is reached, and
** can be called again on the same Pump after a deadline, losing and
** repeating nothing.
*/

#include <string.h>

#include "lua_base.h"

#define PUMP_T    "hpass.pump"
#define PUMPSTEP  65536    /* bytes asked of a read at a time */
#define STALLPAUSE  16     /* ms: the longest wait for a stalled input pipe */
#define NOLIMIT   ((size_t)-1)


/* Why pumprun returned (with no error). */
enum { PUMP_ENDED, PUMP_TIMEOUT, PUMP_FULL };

/* The state of a capture, freed by __gc if an error cuts the call short. */
typedef struct Pump {
  lua_Alloc f;
  void *ud;
  unsigned char *buf[2];  /* output [0] and error [1] so far */
  size_t len[2], cap[2];
  Handle *hs[3];          /* out, err (read ends), in (write end); NULL once
                             ended, closed or never given */
  const char *input;      /* what goes to in (kept alive by the caller) */
  size_t inlen, inpos;
  size_t max;             /* bytes len[0] + len[1] may reach, or NOLIMIT */
  int stalled;            /* the input pipe took nothing last time */
  hp_time pause;          /* before the input is tried again (ms) */
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

/*
** Room for PUMPSTEP more bytes in buffer i: 0 or an error code.  With a limit
** the buffer never grows past what the limit lets it hold, plus a step.
*/
static int room (Pump *p, int i) {
  size_t cap = p->cap[i];
  unsigned char *b;
  if (cap - p->len[i] >= PUMPSTEP) return 0;
  cap = cap < PUMPSTEP ? (size_t)4 * PUMPSTEP : 2 * cap;
  if (cap < p->cap[i]) return hp_err_nomem();  /* overflow */
  if (p->max < NOLIMIT - PUMPSTEP && cap > p->max + PUMPSTEP) cap = p->max + PUMPSTEP;
  b = (unsigned char *)p->f(p->ud, p->buf[i], p->cap[i], cap);
  if (b == NULL) return hp_err_nomem();
  p->buf[i] = b;
  p->cap[i] = cap;
  return 0;
}


/*
** One read from stream i into its buffer: at most one byte more than the
** limit leaves, so that a stream which ends exactly at the limit is no
** overflow; that byte is dropped, and *full set.
*/
static int readone (Pump *p, int i, int *full) {
  size_t done, want = PUMPSTEP, total = p->len[0] + p->len[1];
  int err;
  if (p->max != NOLIMIT && p->max - total < want) want = p->max - total + 1;
  if ((err = room(p, i)) != 0) return err;
  /* the pages present before the read (hpass_sys.h says why) */
  hp_prefault(p->buf[i] + p->len[i], want);
  err = hp_read(p->hs[i]->os, p->buf[i] + p->len[i], want, &done);
  if (err != 0) return err;
  if (done == 0) p->hs[i] = NULL;  /* the end of that stream */
  p->len[i] += done;
  if (p->max != NOLIMIT && total + done > p->max) {
    p->len[i] -= total + done - p->max;
    *full = 1;
  }
  return 0;
}


/* One write of what is left of the input; the pipe is non-blocking. */
static int writeone (Pump *p) {
  size_t done;
  int err = hp_write(p->hs[2]->os, p->input + p->inpos, p->inlen - p->inpos,
                     &done);
  if (err == hp_err_pipe()) {  /* it stopped reading: no failure */
    err = 0;
    done = p->inlen - p->inpos;
  }
  if (err != 0) return err;
  p->inpos += done;
  p->stalled = done == 0;
  if (done > 0) p->pause = 1;
  return 0;
}


/*
** What the next wait watches: it[0 .. n) for streams k[0 .. n).  Input
** that has all gone is closed first, so that the child sees its end.
*/
static size_t watch (lua_State *L, Pump *p, hp_pollitem *it, int *k) {
  size_t n = 0;
  int i;
  if (p->hs[2] != NULL && p->inpos == p->inlen) {
    (void)hpb_close(L, p->hs[2]);
    p->hs[2] = NULL;
  }
  for (i = 0; i < 3; i++) {
    if (p->hs[i] == NULL || (i == 2 && p->stalled)) continue;
    it[n].h = p->hs[i]->os;
    it[n].events = i < 2 ? HP_READABLE : HP_WRITABLE;
    k[n++] = i;
  }
  return n;
}


/*
** Move bytes until both outputs have ended (PUMP_ENDED), the deadline dl
** has passed (PUMP_TIMEOUT) or the outputs reached the limit (PUMP_FULL);
** *why says which.  0 or an error code.  The deadline is checked at every
** turn, not only when nothing is ready, so a child that floods its output
** cannot hold the capture: a turn moves at most a step from each stream
** and what the input pipe takes, and the first turn always looks.
*/
static int pumprun (lua_State *L, Pump *p, hp_time dl, Scratch *scratch,
                    int *why) {
  int turn, err = 0, full = 0;
  *why = PUMP_ENDED;
  for (turn = 0; ; turn++) {
    hp_pollitem it[3];
    int k[3], nready;
    size_t n = watch(L, p, it, k), i;
    hp_time wake = dl;
    if (p->hs[0] == NULL && p->hs[1] == NULL && p->hs[2] == NULL) break;
    if (turn > 0 && dl != HP_NEVER && hp_now() >= dl) {
      *why = PUMP_TIMEOUT;
      break;
    }
    if (p->stalled) {  /* the pipe took nothing last time: try again soon */
      hp_time next = hp_now() + hp_backoff(&p->pause, STALLPAUSE);
      if (wake == HP_NEVER || next < wake) wake = next;
      p->stalled = 0;
    }
    err = hp_poll(it, n, wake, &nready, hpb_scratchalloc, scratch);
    hpb_freescratch(scratch);
    for (i = 0; i < n && err == 0 && !full; i++) {
      if (!it[i].revents) continue;
      err = k[i] < 2 ? readone(p, k[i], &full) : writeone(p);
    }
    if (err != 0) break;
    if (full) {
      *why = PUMP_FULL;
      break;
    }
  }
  return err;
}


/* The handle at i, open, or NULL for nil. */
static Handle *opthandle (lua_State *L, int i) {
  Handle *h;
  if (lua_isnil(L, i)) return NULL;
  h = (Handle *)luaL_checkudata(L, i, HANDLE_T);
  if (isclosed(h)) luaL_argerror(L, i, "attempt to use a closed handle");
  return h;
}


/* The limit at arg: nil or math.huge for none, else a byte count. */
static size_t optmax (lua_State *L, int arg) {
  lua_Number m;
  if (lua_isnoneornil(L, arg)) return NOLIMIT;
  m = luaL_checknumber(L, arg);
  luaL_argcheck(L, m >= 0, arg, "limit must be a non-negative number");
  /* a cast of a float past size_t's range would be undefined */
  return m >= (lua_Number)NOLIMIT ? NOLIMIT : (size_t)m;
}


/*
** hpass.core._pump(out, err, in, input, seconds, max [, done]): out and
** err (read ends, err may be nil) are read to their end while input is
** written to in (a write end, closed when all is written or the child
** stopped reading), within seconds (nil: no limit), until out and err
** hold max bytes together (nil: no limit).  done bytes of input went in
** an earlier call (communicate resumes so): the writing starts past them.
** Returns the output, the error output (nil without err), why it stopped
** early ("timeout", "max_output", or nil when both streams ended), the
** seconds left before the deadline (nil without one) and how many bytes
** of input have gone in all; or fail, message, code.
*/
static int capture_pump (lua_State *L) {
  Pump *p;
  Scratch *scratch;
  hp_time dl;
  int i, why, err = 0;
  Handle *hs[3];
  for (i = 0; i < 3; i++) hs[i] = opthandle(L, i + 1);
  luaL_argcheck(L, hs[0] != NULL, 1, "handle expected");
  lua_settop(L, 7);
  p = (Pump *)lua_newuserdatauv(L, sizeof(Pump), 0);
  memset(p, 0, sizeof(*p));
  p->f = lua_getallocf(L, &p->ud);
  p->pause = 1;
  luaL_getmetatable(L, PUMP_T);
  lua_setmetatable(L, -2);
  if (hs[2] != NULL) {
    lua_Integer done = luaL_optinteger(L, 7, 0);
    p->input = luaL_checklstring(L, 4, &p->inlen);
    luaL_argcheck(L, done >= 0 && (size_t)done <= p->inlen, 7,
                  "input position out of range");
    p->inpos = (size_t)done;
  }
  dl = hpb_opttimeout(L, 5);
  dl = hp_after(dl);
  p->max = optmax(L, 6);
  scratch = hpb_newscratch(L);
  /* making those may have run a finalizer that closed a handle */
  for (i = 0; i < 3; i++) {
    if (hs[i] != NULL && isclosed(hs[i]))
      return luaL_error(L, "handle was closed during the call");
    p->hs[i] = hs[i];
  }
  /* writes to the child must never wait: it may be waiting for us */
  if (hs[2] != NULL && (err = hp_setnonblock(hs[2]->os)) != 0)
    return hpb_oserror(L, err, NULL);
  if ((err = pumprun(L, p, dl, scratch, &why)) != 0) {
    freepump(p);
    return hpb_oserror(L, err, NULL);
  }
  lua_pushlstring(L, (const char *)p->buf[0], p->len[0]);
  if (hs[1] == NULL) lua_pushnil(L);
  else lua_pushlstring(L, (const char *)p->buf[1], p->len[1]);
  freepump(p);
  if (why == PUMP_TIMEOUT) lua_pushliteral(L, "timeout");
  else if (why == PUMP_FULL) lua_pushliteral(L, "max_output");
  else lua_pushnil(L);
  if (dl == HP_NEVER) lua_pushnil(L);
  else {
    hp_time left = dl - hp_now();
    lua_pushnumber(L, left > 0 ? (lua_Number)left / 1000 : 0);
  }
  lua_pushinteger(L, (lua_Integer)p->inpos);
  return 5;
}


static const luaL_Reg funcs[] = {
  {"_pump", capture_pump},
  {NULL, NULL}
};

/* Adds _pump to the module table on top (upvalue: the metatable). */
int hpb_open_capture (lua_State *L) {
  hpb_gcmetatable(L, PUMP_T, pump_gc);
  hpb_addfuncs(L, funcs);
  return 0;
}
