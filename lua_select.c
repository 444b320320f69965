/*
** lua_select.c - hpass.select: waiting on many handles and processes.
**
** Shaped as LuaSocket's socket.select.  Handles in every accepted form
** and process objects are read as spawn_with_handle reads its handles:
** the lists are copied raw into a table of the call's own, every getfd()
** runs first, then everything is resolved and the OS waits with no Lua
** code and no collector allocation in between.
*/

#include <string.h>

#include "lua_base.h"

/* Stack slots: the three arguments, then the call's own objects. */
enum { A_READERS = 1, A_WRITERS, A_TIMEOUT, S_SCRATCH, S_OBJS, S_TARGETS };

/* ms: the longest pause between two looks at a process without a waitfd */
#define POLLPAUSE   64

/* What one entry of the lists is. */
typedef struct Entry {
  HandleArg ha;           /* a handle (kind E_HANDLE) */
  int kind;
  const Kind *k;          /* a process's Kind (kind E_PROCESS) */
  int ready;           /* HP_READABLE / HP_WRITABLE found so far */
  int polled;          /* a process with no waitfd: checked by polling */
} Entry;

enum { E_HANDLE, E_PROCESS };


/* Copy the list at arg into S_OBJS from position base + 1; its length. */
static size_t copylist (lua_State *L, int arg, size_t base) {
  size_t n, i;
  if (lua_isnil(L, arg)) return 0;
  luaL_checktype(L, arg, LUA_TTABLE);
  n = (size_t)lua_rawlen(L, arg);
  for (i = 1; i <= n; i++) {
    rawgeti(L, arg, (lua_Integer)i);
    rawseti(L, S_OBJS, (lua_Integer)(base + i));
  }
  return n;
}


/*
** The result list for entries [from, to) ready for ev: an array, and a
** set of the objects.  A descriptor number goes in the array only: as a
** key, 3 would overwrite the array's third entry.  An object listed
** twice is reported once.
*/
static void pushready (lua_State *L, Entry *e, size_t from, size_t to,
                       int ev) {
  size_t i;
  int k = 0;
  lua_newtable(L);                    /* seen */
  lua_newtable(L);                    /* the result */
  for (i = from; i < to; i++) {
    if (!(e[i].ready & ev)) continue;
    rawgeti(L, S_OBJS, (lua_Integer)i + 1);
    lua_pushvalue(L, -1);
    lua_rawget(L, -4);
    if (!lua_isnil(L, -1)) {          /* listed twice: once is enough */
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, -5);                /* seen[obj] = true */
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, ++k);
    if (lua_type(L, -1) == LUA_TNUMBER) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
  }
  lua_remove(L, -2);
}


/*
** A request waiting in the output buffer of a handle among the readers
** would never get the reply select waits for: it goes out first, within
** select's deadline, as before a read.  0, or the error of a flush that
** failed (a timeout is none: select then only looks).
*/
static int flushreaders (lua_State *L, Entry *e, size_t nr, hp_time dl) {
  size_t i;
  for (i = 0; i < nr; i++) {
    Handle *h = e[i].ha.h;
    int err;
    if (e[i].kind != E_HANDLE || h == NULL || h->wlen == 0) continue;
    (void)hpb_deadline(h);  /* a call on h begins: its tries count anew */
    err = hpb_flushout(L, &e[i].ha, dl);
    if (err != 0 && err != hp_err_timeout()) return err;
  }
  return 0;
}


/* What one call waits on: n entries, the first nr of them readers. */
typedef struct Call {
  Entry *e;
  hp_pollitem *items;
  size_t nr, n;
  int any;              /* some entry is ready */
  int polling;          /* some process has no waitfd: poll it */
} Call;


/* getfd() of every entry first: the only Lua code the call runs. */
static void getfds (lua_State *L, Call *c) {
  size_t i;
  for (i = 0; i < c->n; i++) {
    Entry *x = &c->e[i];
    memset(x, 0, sizeof(*x));
    x->ha.arg = i < c->nr ? A_READERS : A_WRITERS;
    x->ha.inarray = 1;
    x->ha.elem = (lua_Integer)(i < c->nr ? i + 1 : i - c->nr + 1);
    rawgeti(L, S_OBJS, (lua_Integer)i + 1);
    x->k = hpb_kindof(L, -1);
    if (x->k != NULL && x->k->ready != NULL) x->kind = E_PROCESS;
    else hpb_handlearg_getfd(L, lua_gettop(L), &x->ha);
    lua_pop(L, 1);
  }
}


/* Then every entry resolved, with no Lua code: what to poll, what is ready. */
static void resolve (lua_State *L, Call *c) {
  size_t i;
  for (i = 0; i < c->n; i++) {
    Entry *x = &c->e[i];
    hp_pollitem *it = &c->items[i];
    int top;
    rawgeti(L, S_OBJS, (lua_Integer)i + 1);
    top = lua_gettop(L);
    it->h = HP_NOHANDLE;
    it->events = i < c->nr ? HP_READABLE : HP_WRITABLE;
    it->revents = 0;
    if (x->kind == E_PROCESS) {
      int ended;
      if (i >= c->nr)
        hpb_handleargerror(L, &x->ha, "a process cannot be waited on for writing");
      x->k->ready(L, top, &ended, &it->h);
      if (ended) x->ready = HP_READABLE;
      else if (it->h == HP_NOHANDLE) x->polled = c->polling = 1;
    }
    else {
      hpb_handlearg_resolve(L, top, &x->ha);
      it->h = x->ha.os;
      /* input already buffered here is ready without asking the OS */
      if (i < c->nr && hpb_hasahead(L, &x->ha))
        x->ready = HP_READABLE;
    }
    if (x->ready) c->any = 1;
    lua_pop(L, 1);
  }
}


/* What one wait found: the OS's events, and the polled processes. */
static void collectready (lua_State *L, Call *c) {
  size_t i;
  for (i = 0; i < c->n; i++) {
    Entry *x = &c->e[i];
    x->ready |= c->items[i].revents;
    if (x->polled) {
      int ended;
      hp_os fd;
      rawgeti(L, S_OBJS, (lua_Integer)i + 1);
      x->k->ready(L, lua_gettop(L), &ended, &fd);
      lua_pop(L, 1);
      if (ended) x->ready = HP_READABLE;
    }
    if (x->ready) c->any = 1;
  }
}


/*
** Wait until an entry is ready or the deadline passes, looking again
** with back-off at processes that have nothing to wait on.  0 or an
** error code.
*/
static int waitready (lua_State *L, Call *c, Scratch *scratch, hp_time dl) {
  hp_time pause = 1;
  int err, nready;
  for (;;) {
    hp_time wake = c->any ? hp_now() : dl;
    if (c->polling && !c->any) {
      hp_time next = hp_now() + hp_backoff(&pause, POLLPAUSE);
      if (wake == HP_NEVER || next < wake) wake = next;
    }
    err = hp_poll(c->items, c->n, wake, &nready, hpb_scratchalloc, scratch);
    hpb_freescratch(scratch);
    if (err == hp_err_inval())
      return luaL_error(L, "too many objects for select (%d)", (int)c->n);
    if (err != 0) return err;
    collectready(L, c);
    if (c->any || (dl != HP_NEVER && hp_now() >= dl)) return 0;
  }
}


/*
** Building the results allocates, and so may the wait's own steps: a
** finalizer may have closed an argument since resolve took it up.  Its
** number may already name something else, so nothing about it can be
** reported: the call raises, as any call does then.
*/
static void recheck (lua_State *L, Call *c) {
  size_t i;
  for (i = 0; i < c->n; i++)
    if (c->e[i].kind != E_PROCESS) hpb_handlearg_check(L, &c->e[i].ha);
}


/*
** hpass.select(readers, writers [, seconds]): readable, writable, err.
** A handle is readable when a read would not block (data, input already
** buffered, end of stream, an error), writable when a write would not; a
** process is readable once it has ended.  err is "timeout" when nothing
** became ready in time.
*/
static int hpass_select (lua_State *L) {
  Scratch *scratch;
  Call c;
  hp_time dl;
  int err;
  hpb_noextra(L, 3);
  lua_settop(L, 3);
  if (!lua_isnil(L, A_READERS)) luaL_checktype(L, A_READERS, LUA_TTABLE);
  if (!lua_isnil(L, A_WRITERS)) luaL_checktype(L, A_WRITERS, LUA_TTABLE);
  dl = hpb_opttimeout(L, A_TIMEOUT);
  dl = hp_after(dl);
  scratch = hpb_newscratch(L);                      /* S_SCRATCH */
  lua_newtable(L);                                  /* S_OBJS */
  c.nr = copylist(L, A_READERS, 0);
  c.n = c.nr + copylist(L, A_WRITERS, c.nr);
  c.any = c.polling = 0;
  c.e = (Entry *)lua_newuserdatauv(L, (c.n == 0 ? 1 : c.n) * sizeof(Entry), 0);
  c.items = (hp_pollitem *)lua_newuserdatauv(L,
      (c.n == 0 ? 1 : c.n) * sizeof(hp_pollitem), 0);
  getfds(L, &c);
  resolve(L, &c);
  err = flushreaders(L, c.e, c.nr, dl);
  if (err == 0) err = waitready(L, &c, scratch, dl);
  pushready(L, c.e, 0, c.nr, HP_READABLE);
  pushready(L, c.e, c.nr, c.n, HP_WRITABLE);
  recheck(L, &c);
  if (err != 0) {
    hpb_oserror(L, err, NULL);   /* fail, message, code */
    lua_remove(L, -3);
    return 4;                    /* readable, writable, message, code */
  }
  if (!c.any) {
    lua_pushliteral(L, "timeout");
    return 3;
  }
  return 2;
}


static const luaL_Reg funcs[] = {
  {"select", hpass_select},
  {NULL, NULL}
};

int hpb_open_select (lua_State *L) {
  hpb_addfuncs(L, funcs);
  return 0;
}
