/*
** lua_select.c - hpass.select: waiting on many handles and processes.
**
** Shaped as LuaSocket's socket.select.  Handles in every accepted form
** and process objects are read as spawn_with_handle reads its handles:
** the lists are copied raw into a table of the call's own, every getfd()
** runs first, then everything is resolved and the OS waits with no Lua
** code and no collector allocation in between.  Lists of hpass handles
** alone, which select is called in loops over, run no Lua code before
** the results are made: they are read in place, and only the ready
** objects are copied, after the wait.
*/

#include <limits.h>
#include <string.h>

#include "lua_base.h"

/* Stack slots: the three arguments, then the call's own objects. */
enum { A_READERS = 1, A_WRITERS, A_TIMEOUT, S_SCRATCH, S_MEM, S_OBJS };

/* ms: the longest pause between two looks at a process without a waitfd */
#define POLLPAUSE   64

/*
** What one entry of the lists is: an hpass handle (h), a process (k),
** or a handle in another form (ha).  Small, since select is called in
** loops over many handles: the common hpass handle carries no argument
** state of its own (argof makes it when a call needs it).
*/
typedef struct Entry {
  Handle *h;           /* an hpass handle, told apart when copied */
  HandleArg *ha;       /* a number, a Lua file or a getfd() object */
  const Kind *k;       /* a process's Kind */
  int ready;           /* HP_READABLE / HP_WRITABLE found so far */
  int polled;          /* a process with no waitfd: checked by polling */
} Entry;

/* What one call waits on: n entries, the first nr of them readers. */
typedef struct Call {
  Entry *e;
  hp_pollitem *items;
  size_t nr, n;
  int any;              /* some entry is ready */
  int polling;          /* some process has no waitfd: poll it */
} Call;


/* Where entry i came from (argument, element), for the base's calls. */
static void argof (const Call *c, size_t i, HandleArg *ha) {
  memset(ha, 0, sizeof(*ha));
  ha->os = HP_NOHANDLE;
  ha->arg = i < c->nr ? A_READERS : A_WRITERS;
  ha->inarray = 1;
  ha->elem = (lua_Integer)(i < c->nr ? i + 1 : i - c->nr + 1);
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
static int flushreaders (lua_State *L, Call *c, hp_time dl) {
  size_t i;
  for (i = 0; i < c->nr; i++) {
    Handle *h = c->e[i].h;  /* only hpass handles have an output buffer */
    HandleArg ha;
    int err;
    if (h == NULL || h->wlen == 0) continue;
    argof(c, i, &ha);
    ha.h = h;
    ha.os = h->os;
    (void)hpb_deadline(h);  /* a call on h begins: its tries count anew */
    err = hpb_flushout(L, &ha, dl);
    if (err != 0 && err != hp_err_timeout()) return err;
  }
  return 0;
}


/*
** The entries and their poll items come from mem, outside the collector:
** select is called in loops, and memory the collector would hold until
** its next cycle goes back at once, to be taken again, still in the
** cache, by the next call.  An error leaves it to mem's finalizer.
*/
static void *memfor (lua_State *L, Scratch *mem, size_t n, size_t size) {
  void *p;
  if (n == 0) n = 1;
  if (n > ((size_t)-1) / size) hpb_nomem(L, (size_t)-1);
  p = hpb_scratchalloc(mem, n * size);
  if (p == NULL) hpb_nomem(L, n * size);
  return p;
}


/* The length of the list at arg: 0 for nil. */
static size_t listlen (lua_State *L, int arg) {
  return lua_isnil(L, arg) ? 0 : (size_t)lua_rawlen(L, arg);
}


/* Push element i of the lists (readers, then writers); its type. */
static int pushelem (lua_State *L, const Call *c, size_t i) {
  lua_Integer k = (lua_Integer)(i < c->nr ? i + 1 : i - c->nr + 1);
#if LUA_VERSION_NUM >= 503
  return lua_rawgeti(L, i < c->nr ? A_READERS : A_WRITERS, k);
#else
  rawgeti(L, i < c->nr ? A_READERS : A_WRITERS, k);
  return lua_type(L, -1);
#endif
}


/*
** Element i an hpass handle (a full userdata with the handle metatable),
** or NULL.  It leaves the element and its metatable pushed: select is
** called in loops over many handles, so the scan drops what it pushed a
** batch at a time, and telling a handle apart takes the fewest calls
** into Lua.
*/
static Handle *tohandle (lua_State *L, const Call *c, size_t i) {
  if (pushelem(L, c, i) == LUA_TUSERDATA && lua_getmetatable(L, -1) &&
      lua_rawequal(L, -1, HANDLEMT))
    return (Handle *)lua_touserdata(L, -2);
  return NULL;
}

/* Elements the scan leaves pushed (two slots each) before dropping them. */
#define SCANBATCH   32


/*
** Both lists read raw, in place: an hpass handle, the common case, is
** told apart with one comparison of metatables; it has no getfd() to
** run, and is resolved with the others, after every getfd().  Nothing
** is allocated, so no Lua code runs.  Returns how many entries are
** something else.
*/
static size_t scanlists (lua_State *L, Call *c) {
  size_t i, nother = 0;
  int top = lua_gettop(L);
  luaL_checkstack(L, 2 * SCANBATCH, NULL);
  for (i = 0; i < c->n; i++) {
    Entry *x = &c->e[i];
    x->ha = NULL;
    x->k = NULL;
    x->ready = x->polled = 0;
    x->h = tohandle(L, c, i);
    if (x->h == NULL) nother++;
    if (i % SCANBATCH == SCANBATCH - 1) lua_settop(L, top);
  }
  lua_settop(L, top);
  return nother;
}


/*
** Entries [0, n) copied into S_OBJS (made with room for them all, so
** copying allocates nothing), where ready is 0 or an entry is: before
** Lua code runs (a getfd(), or a finalizer started by an allocation)
** and could change the lists, the objects the call works with are held
** in a table of its own.  When every entry is an hpass handle, no Lua
** code runs before the results are made, and only the ready entries are
** copied, after the wait.
*/
static void copylists (lua_State *L, const Call *c, int ready) {
  size_t i;
  for (i = 0; i < c->n; i++) {
    if (ready && !c->e[i].ready) continue;
    (void)pushelem(L, c, i);
    rawseti(L, S_OBJS, (lua_Integer)i + 1);
  }
}


/* getfd() of every other entry first: the only Lua code the call runs. */
static void getfds (lua_State *L, Call *c, HandleArg *args) {
  size_t i;
  for (i = 0; i < c->n; i++) {
    Entry *x = &c->e[i];
    if (x->h != NULL) continue;
    x->ha = args++;
    argof(c, i, x->ha);
    rawgeti(L, S_OBJS, (lua_Integer)i + 1);
    x->k = hpb_kindof(L, -1);
    if (x->k != NULL && x->k->ready == NULL) x->k = NULL;
    if (x->k == NULL) hpb_handlearg_getfd(L, lua_gettop(L), x->ha);
    lua_pop(L, 1);
  }
}


/*
** An hpass handle resolved: Lua code run since it was copied (a getfd(),
** a finalizer) may have closed it, never collected it.
*/
static void resolvehandle (lua_State *L, Call *c, size_t i) {
  Entry *x = &c->e[i];
  if (isclosed(x->h)) {
    HandleArg ha;
    argof(c, i, &ha);
    hpb_handleargerror(L, &ha, "attempt to use a closed handle");
  }
  c->items[i].h = x->h->os;
  /* input already buffered here is ready without asking the OS */
  if (i < c->nr && nunread(x->h) > 0) x->ready = HP_READABLE;
}


/* Any other entry resolved: a process, or a handle in another form. */
static void resolveother (lua_State *L, Call *c, size_t i) {
  Entry *x = &c->e[i];
  hp_pollitem *it = &c->items[i];
  int top;
  rawgeti(L, S_OBJS, (lua_Integer)i + 1);
  top = lua_gettop(L);
  if (x->k != NULL) {
    int ended;
    if (i >= c->nr)
      hpb_handleargerror(L, x->ha, "a process cannot be waited on for writing");
    x->k->ready(L, top, &ended, &it->h);
    if (ended) x->ready = HP_READABLE;
    else if (it->h == HP_NOHANDLE) x->polled = c->polling = 1;
  }
  else {
    hpb_handlearg_resolve(L, top, x->ha);
    it->h = x->ha->os;
    /* input already buffered here is ready without asking the OS */
    if (i < c->nr && hpb_hasahead(L, x->ha)) x->ready = HP_READABLE;
  }
  lua_pop(L, 1);
}


/* Then every entry resolved, with no Lua code: what to poll, what is ready. */
static void resolve (lua_State *L, Call *c) {
  size_t i;
  for (i = 0; i < c->n; i++) {
    hp_pollitem *it = &c->items[i];
    it->h = HP_NOHANDLE;
    it->events = i < c->nr ? HP_READABLE : HP_WRITABLE;
    it->revents = 0;
    if (c->e[i].h != NULL) resolvehandle(L, c, i);
    else resolveother(L, c, i);
    if (c->e[i].ready) c->any = 1;
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
  for (i = 0; i < c->n; i++) {
    Entry *x = &c->e[i];
    if (x->h != NULL && isclosed(x->h)) {
      HandleArg ha;
      argof(c, i, &ha);
      hpb_handleargerror(L, &ha, "handle was closed during the call");
    }
    else if (x->ha != NULL && x->k == NULL)
      hpb_handlearg_check(L, x->ha);
  }
}


/*
** hpass.select(readers, writers [, seconds]): readable, writable, err.
** A handle is readable when a read would not block (data, input already
** buffered, end of stream, an error), writable when a write would not; a
** process is readable once it has ended.  err is "timeout" when nothing
** became ready in time.
*/
static int hpass_select (lua_State *L) {
  Scratch *scratch, *mem;
  size_t nother;
  Call c;
  hp_time dl;
  int err;
  hpb_noextra(L, 3);
  lua_settop(L, 3);
  if (!lua_isnil(L, A_READERS)) luaL_checktype(L, A_READERS, LUA_TTABLE);
  if (!lua_isnil(L, A_WRITERS)) luaL_checktype(L, A_WRITERS, LUA_TTABLE);
  dl = hpb_opttimeout(L, A_TIMEOUT);
  dl = hp_after(dl);
  c.nr = listlen(L, A_READERS);
  c.n = c.nr + listlen(L, A_WRITERS);
  c.any = c.polling = 0;
  scratch = hpb_newscratch(L);                      /* S_SCRATCH */
  mem = hpb_newscratch(L);                          /* S_MEM */
  lua_createtable(L, c.n > INT_MAX ? 0 : (int)c.n, 0);  /* S_OBJS */
  c.e = (Entry *)memfor(L, mem, c.n, sizeof(Entry));
  c.items = (hp_pollitem *)memfor(L, mem, c.n, sizeof(hp_pollitem));
  nother = scanlists(L, &c);
  if (nother > 0) {  /* Lua code may run from here: the objects held first */
    copylists(L, &c, 0);
    getfds(L, &c, (HandleArg *)lua_newuserdatauv(L, nother * sizeof(HandleArg), 0));
  }
  resolve(L, &c);
  err = flushreaders(L, &c, dl);
  if (err == 0) err = waitready(L, &c, scratch, dl);
  if (nother == 0) copylists(L, &c, 1);
  pushready(L, c.e, 0, c.nr, HP_READABLE);
  pushready(L, c.e, c.nr, c.n, HP_WRITABLE);
  recheck(L, &c);
  hpb_freescratch(mem);
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
