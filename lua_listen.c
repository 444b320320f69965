/*
** lua_listen.c - systemd's socket-activation protocol: hpass.listen_fds
** receives sockets the way sd_listen_fds_with_names(3) does, and the
** names of spawn's listen option are checked here (spawn itself, in
** lua_spawn.c and hp_spawn, passes the sockets and sets the variables).
** Also the clock and the pid hpass.server (lua/hpass/server.lua) uses.
**
** The protocol: descriptors 3, 4, ... of a process are sockets handed to
** it when LISTEN_PID is its pid and LISTEN_FDS their count, a positive
** decimal; LISTEN_FDNAMES, when set, names them, separated by ':'.
*/

#include <limits.h>
#include <string.h>

#include "lua_base.h"

/* systemd's SD_LISTEN_FDS_START */
#define FIRSTFD     3

static const char *const vars[] = {"LISTEN_PID", "LISTEN_FDS",
                                   "LISTEN_FDNAMES"};
enum { V_PID, V_FDS, V_NAMES };


/* A positive decimal that fits below max, as *v; 0 if s is none. */
static int positive (const char *s, long long max, long long *v) {
  *v = 0;
  if (*s == '\0') return 0;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9' || *v > (max - (*s - '0')) / 10) return 0;
    *v = *v * 10 + (*s - '0');
  }
  return *v > 0;
}


/* fail, message, EINVAL: a variable that the protocol does not allow */
static int malformed (lua_State *L, const char *fmt, const char *value,
                      int n) {
  luaL_pushfail(L);
  lua_pushfstring(L, fmt, value, n);
  lua_pushinteger(L, hp_err_inval());
  return 3;
}


/*
** Split the names (at stack index i, a string) on ':' into a new table,
** keeping empty names between separators; "" holds none.  Returns the
** count.
*/
static int splitnames (lua_State *L, int i) {
  size_t len;
  const char *s = lua_tolstring(L, i, &len), *end = s + len;
  int n = 0;
  lua_newtable(L);
  if (len == 0) return 0;
  for (;;) {
    const char *c = (const char *)memchr(s, ':', (size_t)(end - s));
    lua_pushlstring(L, s, c == NULL ? (size_t)(end - s) : (size_t)(c - s));
    lua_rawseti(L, -2, ++n);
    if (c == NULL) return n;
    s = c + 1;
  }
}


/* Two empty arrays: nothing was passed to this process. */
static int nothing (lua_State *L) {
  lua_newtable(L);
  lua_newtable(L);
  return 2;
}


/*
** The descriptors 3 .. 2+n once the variables were found right: each
** must be open, then all are made close-on-exec and adopted.  The names
** table is on top.
*/
static int adopt (lua_State *L, int n) {
  int i, err;
  for (i = 0; i < n; i++)
    if ((err = hp_check((hp_os)(FIRSTFD + i))) != 0) {
      char what[64];
      (void)snprintf(what, sizeof(what), "LISTEN_FDS: descriptor %d",
                     FIRSTFD + i);
      return hpb_oserror(L, err, what);
    }
  for (i = 0; i < n; i++)
    if ((err = hp_noinherit((hp_os)(FIRSTFD + i))) != 0)
      return hpb_oserror(L, err, "LISTEN_FDS");
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    Handle *h = hpb_newhandle(L);
    h->os = (hp_os)(FIRSTFD + i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_insert(L, -2);  /* handles, names */
  return 2;
}


/*
** hpass.listen_fds([keep_env]): handles, names -- the sockets a service
** manager passed to this process, as sd_listen_fds_with_names(3) finds
** them.  Two empty arrays when none were passed to this process.  The
** variables are removed from the environment unless keep_env is true,
** whatever the outcome, as systemd does.  Malformed values: fail, msg,
** EINVAL, and nothing is adopted.
*/
static int hpass_listen_fds (lua_State *L) {
  long long pid, n;
  int i, keep;
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TBOOLEAN);
  keep = lua_toboolean(L, 1);
  hpb_noextra(L, 1);
  lua_settop(L, 1);
  /* the values are copied before they are removed */
  for (i = 0; i < 3; i++) {
    const char *v = hp_listenvar(vars[i]);
    if (v != NULL) lua_pushstring(L, v);
    else lua_pushnil(L);
  }
  if (!keep)
    for (i = 0; i < 3; i++) hp_unlistenvar(vars[i]);
  if (lua_isnil(L, 2 + V_PID)) return nothing(L);
  if (!positive(lua_tostring(L, 2 + V_PID), LLONG_MAX, &pid))
    return malformed(L, "LISTEN_PID='%s' is not a process id",
                     lua_tostring(L, 2 + V_PID), 0);
  if (pid != hp_getpid() || lua_isnil(L, 2 + V_FDS)) return nothing(L);
  if (!positive(lua_tostring(L, 2 + V_FDS), LLONG_MAX, &n))
    return malformed(L, "LISTEN_FDS='%s' is not a positive number",
                     lua_tostring(L, 2 + V_FDS), 0);
  if (n > INT_MAX - FIRSTFD || (hp_maxfd() >= 0 && FIRSTFD + n - 1 > hp_maxfd()))
    return malformed(L, "LISTEN_FDS=%s goes past the descriptor limit",
                     lua_tostring(L, 2 + V_FDS), 0);
  if (!lua_isnil(L, 2 + V_NAMES)) {
    int k = splitnames(L, 2 + V_NAMES);
    if (k != n) {
      lua_pushfstring(L, "LISTEN_FDNAMES='%s' has %d names for LISTEN_FDS=%s",
                      lua_tostring(L, 2 + V_NAMES), k,
                      lua_tostring(L, 2 + V_FDS));
      return malformed(L, "%s", lua_tostring(L, -1), 0);
    }
  }
  else {
    lua_createtable(L, (int)n, 0);
    for (i = 1; i <= (int)n; i++) {
      lua_pushliteral(L, "unknown");
      lua_rawseti(L, -2, i);
    }
  }
  return adopt(L, (int)n);
}


/*
** hpass.core._now(): seconds on the monotonic clock, for the deadlines of
** hpass.server (Lua has no such clock: os.time is wall time, in seconds).
*/
static int core_now (lua_State *L) {
  hpb_noextra(L, 0);
  lua_pushnumber(L, (lua_Number)hp_now() / 1000);
  return 1;
}


/* hpass.core._pid(): this process's id, for hpass.server. */
static int core_pid (lua_State *L) {
  hpb_noextra(L, 0);
  lua_pushinteger(L, (lua_Integer)hp_getpid());
  return 1;
}


int hpb_open_listen (lua_State *L) {
  lua_pushcfunction(L, hpass_listen_fds);
  lua_setfield(L, -2, "listen_fds");
  lua_pushcfunction(L, core_now);
  lua_setfield(L, -2, "_now");
  lua_pushcfunction(L, core_pid);
  lua_setfield(L, -2, "_pid");
  return 0;
}
