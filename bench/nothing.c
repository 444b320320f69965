/*
** nothing.c - a C module that does nothing, for the benchmarks: what
** require of any C module costs (bench/mem.lua).  Built by bench/run.sh,
** never installed.  require("benchnothing") -> an empty table.
*/
#include "lua.h"

int luaopen_benchnothing (lua_State *L);

int luaopen_benchnothing (lua_State *L) {
  lua_newtable(L);
  return 1;
}
