/*
** sanlua - a minimal stand-alone Lua interpreter for `make check-asan`.
**
** Built with -fsanitize=address,undefined it carries the sanitizer runtime
** itself, so nothing is preloaded through the environment.  A preload
** would reach every program the tests start (sh, cat, ps, ...), and some
** of them hang under a preloaded ASan (procps' ps deadlocks in
** textdomain).  With this interpreter only Lua processes -- the suite and
** the Lua children it starts through HPASS_TEST_LUA -- run instrumented.
**
**   sanlua SCRIPT [ARGS...]
**
** runs SCRIPT as lua does: arg[0] is the script, arg[-1] this program,
** arg[1..n] and the chunk's varargs are ARGS.  An error prints a traceback
** and exits with status 1.  The state is closed at the end, so that the
** leak checker sees only memory that is really lost.
*/
#include <stdio.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

static int traceback (lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL)
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Runs with argc and argv as arguments, inside the protected call. */
static int run (lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int i;
  luaL_openlibs(L);
  lua_createtable(L, argc, 2);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1);
  }
  lua_setglobal(L, "arg");
  if (luaL_loadfile(L, argv[1]) != LUA_OK) return lua_error(L);
  luaL_checkstack(L, argc, "too many arguments");
  for (i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
  lua_call(L, argc - 2, 0);
  return 0;
}

int main (int argc, char **argv) {
  lua_State *L;
  int status;
  if (argc < 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: %s SCRIPT [ARGS...]\n", argv[0]);
    return 1;
  }
  if ((L = luaL_newstate()) == NULL) {
    fprintf(stderr, "%s: cannot create a Lua state\n", argv[0]);
    return 1;
  }
  lua_pushcfunction(L, traceback);
  lua_pushcfunction(L, run);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 0, 1);
  if (status != LUA_OK) {
    fprintf(stderr, "%s: %s\n", argv[0], lua_tostring(L, -1));
    fflush(stderr);
  }
  lua_close(L);
  return status == LUA_OK ? 0 : 1;
}
