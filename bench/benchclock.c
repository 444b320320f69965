/*
** benchclock.c - a monotonic clock for the Lua benchmarks.
**
** Lua has no wall clock finer than a second, and os.clock() counts only
** this process's CPU time (not the time spent waiting for a child), so the
** benchmarks load this one function.  Built by bench/run.sh for each Lua
** version it runs:  require("benchclock").now() -> nanoseconds (integer).
*/
#define _POSIX_C_SOURCE 199309L
#include <time.h>

#include "lua.h"
#include "lauxlib.h"

int luaopen_benchclock (lua_State *L);

static int bc_now (lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000000000 + ts.tv_nsec);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"now", bc_now},
  {NULL, NULL}
};

int luaopen_benchclock (lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
