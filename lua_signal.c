/*
** lua_signal.c - hpass.signals: signals as a handle.
**
** hpass.signals(names) catches the named signals until the object is
** closed or collected, and is readable while one waits: it plugs into
** hpass.select (through its getfd method, as a LuaSocket object does),
** into cqueues (pollfd, events, timeout) and luv (uv.new_poll on
** pollfd()).  s:read_signal() takes the next one, within the timeout
** set by s:settimeout.  The OS side, which never calls Lua, is
** hpass_signal_posix.c (a self-pipe) and hpass_signal_win32.c (console
** control events).
*/

#include <string.h>

#include "lua_base.h"

#define SIGNALS_T   "hpass.signals"

typedef struct Signals {
  hp_signals s;          /* s.h is HP_NOHANDLE once closed */
  hp_time timeout;       /* ms read_signal may wait, or HP_NEVER */
} Signals;


static Signals *checksignals (lua_State *L) {
  return (Signals *)luaL_checkudata(L, 1, SIGNALS_T);
}

static Signals *checkopen (lua_State *L) {
  Signals *s = checksignals(L);
  if (s->s.h == HP_NOHANDLE) luaL_argerror(L, 1, "attempt to use a closed handle");
  return s;
}


/* The name of signal number sig, as read_signal returns it. */
static const char *signame (int sig) {
  int i;
  for (i = 0; hp_catchable[i].name != NULL; i++)
    if (hp_catchable[i].sig == sig) return hp_catchable[i].name;
  return "?";
}


/* Whether name is in list (with or without "SIG"). */
static int findname (const hp_signame *list, const char *name) {
  int i;
  if (strncmp(name, "SIG", 3) == 0) name += 3;
  for (i = 0; list[i].name != NULL; i++)
    if (strcmp(name, list[i].name) == 0) return list[i].sig;
  return 0;
}


/*
** The number of signal name (element k of the list), or an error:
** names of signals no handle may catch say so, others are unknown.
*/
static int checkname (lua_State *L, int k) {
  static const char *const faults[] = {"KILL", "STOP", "SEGV", "BUS", "FPE",
                                       "ILL", "TRAP", "SYS", "ABRT", NULL};
  const char *name, *bare;
  size_t len;
  int sig, i;
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_argerror(L, 1, lua_pushfstring(L, "element %d: signal name expected, "
                                        "got %s", k, luaL_typename(L, -1)));
  name = lua_tolstring(L, -1, &len);
  if (strlen(name) == len && (sig = findname(hp_catchable, name)) > 0)
    return sig;
  bare = strncmp(name, "SIG", 3) == 0 ? name + 3 : name;
  for (i = 0; faults[i] != NULL; i++)
    if (strcmp(bare, faults[i]) == 0) break;
  if (strlen(name) == len && (faults[i] != NULL || findname(hp_signames, name)))
    luaL_argerror(L, 1, lua_pushfstring(L, "element %d: signal '%s' cannot be "
                                        "caught by a handle", k, name));
  return luaL_argerror(L, 1, lua_pushfstring(L, "element %d: unknown signal "
                                             "name '%s'", k, name));
}


/*
** hpass.signals(names): a new signals handle catching the named signals,
** e.g. {"HUP", "TERM"}.  A name listed twice counts once.  A signal that
** another open signals handle catches raises; an OS failure gives fail,
** msg, code.
*/
static int hpass_signals (lua_State *L) {
  Signals *s;
  lua_Integer n, k;
  int err, busy = 0, i;
  luaL_checktype(L, 1, LUA_TTABLE);
  hpb_noextra(L, 1);
  n = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, n > 0, 1, "signal names expected, got an empty list");
  s = (Signals *)lua_newuserdatauv(L, sizeof(Signals), 0);
  memset(s, 0, sizeof(*s));
  s->s.h = s->s.w = HP_NOHANDLE;
  s->timeout = HP_NEVER;
  luaL_getmetatable(L, SIGNALS_T);
  lua_setmetatable(L, -2);
  for (k = 1; k <= n; k++) {
    int sig;
    rawgeti(L, 1, k);
    sig = checkname(L, (int)k);
    lua_pop(L, 1);
    for (i = 0; i < s->s.n; i++)
      if (s->s.sig[i] == sig) break;
    if (i < s->s.n) continue;  /* listed twice */
    if (s->s.n == HP_MAXSIGS)
      luaL_argerror(L, 1, "too many signals");
    s->s.sig[s->s.n++] = sig;
  }
  if ((err = hp_sigopen(&s->s, &busy)) == hp_err_busy() && busy != 0)
    return luaL_argerror(L, 1, lua_pushfstring(L, "signal '%s' is already "
                         "caught by another signals handle", signame(busy)));
  if (err != 0) return hpb_oserror(L, err, NULL);
  return 1;
}


/*
** s:read_signal(): the name of the next signal that arrived, oldest
** first.  Waits for one within the handle's timeout: then fail,
** "timeout", code.
*/
static int s_read_signal (lua_State *L) {
  Signals *s = checkopen(L);
  hp_time dl = hp_after(s->timeout);
  hpb_noextra(L, 1);
  for (;;) {
    int sig, err = hp_sigtake(&s->s, &sig);
    if (err != 0) return hpb_oserror(L, err, NULL);
    if (sig != 0) {
      lua_pushstring(L, signame(sig));
      return 1;
    }
    if ((err = hp_ready(s->s.h, HP_READABLE, dl)) != 0)
      return hpb_ioerror(L, err, NULL);
  }
}


static int s_settimeout (lua_State *L) {
  return hpb_settimeout(L, &checkopen(L)->timeout);
}


/* cqueues' polling protocol, and getfd for hpass.select and the like. */
static int s_timeout (lua_State *L) {
  return hpb_pushtimeout(L, checkopen(L)->timeout);
}

static int pushfd (lua_State *L) {
  Signals *s = checkopen(L);
  hpb_noextra(L, 1);
  lua_pushinteger(L, (lua_Integer)s->s.h);
  return 1;
}

/* three names, three functions: an argument error names the one called */
static int s_pollfd (lua_State *L) { return pushfd(L); }
static int s_getfd (lua_State *L) { return pushfd(L); }
static int s_fileno (lua_State *L) { return pushfd(L); }

static int s_events (lua_State *L) {
  (void)checkopen(L);
  hpb_noextra(L, 1);
  lua_pushliteral(L, "r");
  return 1;
}


/*
** s:close(): the signals get back what they had before, exactly; those
** not yet read are dropped.  true, or fail, msg, code; again: true.
*/
static int s_close (lua_State *L) {
  Signals *s = checksignals(L);
  hpb_noextra(L, 1);
  return hpb_okresult(L, hp_sigclose(&s->s));
}

static int s_gc (lua_State *L) {
  (void)hp_sigclose(&checksignals(L)->s);
  return 0;
}


static int s_tostring (lua_State *L) {
  Signals *s = checksignals(L);
  luaL_Buffer b;
  int i;
  if (s->s.h == HP_NOHANDLE) {
    lua_pushliteral(L, SIGNALS_T " (closed)");
    return 1;
  }
  luaL_buffinit(L, &b);
  luaL_addstring(&b, SIGNALS_T " (");
  for (i = 0; i < s->s.n; i++) {
    if (i > 0) luaL_addstring(&b, ", ");
    luaL_addstring(&b, signame(s->s.sig[i]));
  }
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
  return 1;
}


static const luaL_Reg signals_methods[] = {
  {"read_signal", s_read_signal},
  {"settimeout", s_settimeout},
  {"timeout", s_timeout},
  {"pollfd", s_pollfd},
  {"getfd", s_getfd},
  {"fileno", s_fileno},
  {"events", s_events},
  {"close", s_close},
  {NULL, NULL}
};

static const luaL_Reg signals_meta[] = {
  {"__gc", s_gc},
#if LUA_VERSION_NUM >= 504
  {"__close", s_gc},
#endif
  {"__tostring", s_tostring},
  {NULL, NULL}
};


/* The Kind's isclosed, for hpass.type: see lua_base.h. */
static int s_isclosed (lua_State *L, int i) {
  return ((Signals *)luaL_checkudata(L, i, SIGNALS_T))->s.h == HP_NOHANDLE;
}

static Kind signals_kind = {"signals", s_isclosed, NULL};


/* The metatable, and hpass.signals in the module table on top. */
int hpb_open_signal (lua_State *L) {
  luaL_newmetatable(L, SIGNALS_T);
  luaL_setfuncs(L, signals_meta, 0);
  hpb_setkind(L, &signals_kind);
  lua_newtable(L);
  luaL_setfuncs(L, signals_methods, 0);
  hpb_setnames(L, -1);  /* argument errors name the methods so */
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, SIGNALS_T);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lua_pushcfunction(L, hpass_signals);
  lua_setfield(L, -2, "signals");
  return 0;
}
