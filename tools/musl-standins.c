/*
** musl-standins - what busted needs from lua-term and lua-system, for the
** toolchain test runs (tools/test-toolchain.sh), whose C sources Debian's archive
** does not always serve.  One file, built once and installed as both
** term/core.so and system/core.so:
**
**   term.core.isatty(file)     whether a Lua file is a terminal
**   system.core.gettime()      wall-clock seconds, as a float
**   system.core.monotime()     monotonic seconds, as a float
**   system.core.sleep(s)       sleep s seconds
**
** A test tool, not part of hpass.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "lua.h"
#include "lauxlib.h"

int luaopen_term_core (lua_State *L);
int luaopen_system_core (lua_State *L);

static int t_isatty (lua_State *L) {
  luaL_Stream *s = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  lua_pushboolean(L, s->f != NULL && isatty(fileno(s->f)));
  return 1;
}

static double seconds (clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int s_gettime (lua_State *L) {
  lua_pushnumber(L, seconds(CLOCK_REALTIME));
  return 1;
}

static int s_monotime (lua_State *L) {
  lua_pushnumber(L, seconds(CLOCK_MONOTONIC));
  return 1;
}

static int s_sleep (lua_State *L) {
  double s = luaL_checknumber(L, 1);
  struct timespec ts;
  if (s < 0) s = 0;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) ;
  return 0;
}

int luaopen_term_core (lua_State *L) {
  static const luaL_Reg f[] = {{"isatty", t_isatty}, {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}

int luaopen_system_core (lua_State *L) {
  static const luaL_Reg f[] = {
    {"gettime", s_gettime}, {"monotime", s_monotime}, {"sleep", s_sleep},
    {NULL, NULL}
  };
  luaL_newlib(L, f);
  return 1;
}
