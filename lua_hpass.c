/*
** lua_hpass.c - hpass.core, the Lua binding: its entry point.
**
** Pipes and sockets as handle objects, children that inherit exactly the
** handles they are given, a binary integer protocol over them, handles
** passed to running processes.  This file only makes the module: each
** concern (lua_handle.c, lua_ints.c, lua_bytes.c, lua_spawn.c,
** lua_capture.c, lua_select.c, lua_passing.c, lua_signal.c,
** lua_listen.c) registers its own functions, on the base they all share
** (lua_base.h, lua_base_*.c), which reaches the OS through hpass_sys.h.
**
** Conventions (those of Lua's io library):
**   - misuse (wrong types, bad options, closed handles) raises an error;
**   - an OS failure returns fail, a message and the error code.
*/

#include "lua_base.h"

#define HPASS_VERSION   "hpass 0.2.0"

#if defined(_WIN32)
#define HPASS_API __declspec(dllexport)
#elif defined(__GNUC__)
#define HPASS_API __attribute__((visibility("default")))
#else
#define HPASS_API
#endif


/*
** The concerns, each adding its functions to the module table on top of
** the stack, with the handle metatable below it as their upvalue 1.
*/
static const luaL_Reg concerns[] = {
  {"handle", hpb_open_handle},
  {"ints", hpb_open_ints},
  {"bytes", hpb_open_bytes},
  {"passing", hpb_open_passing},
  {"select", hpb_open_select},
  {"spawn", hpb_open_spawn},
  {"capture", hpb_open_capture},
  {"signal", hpb_open_signal},
  {"listen", hpb_open_listen},
  {NULL, NULL}
};

/*
** The methods of handles: these functions of the module -- the same
** closures, so hpass.read_int(h) and h:read_int() are one function --
** and no others.
*/
static const char *const handle_methods[] = {
  "read_int", "write_int", "read_ints", "write_ints", "send_handle",
  "recv_handle", "close", "fileno", "setvbuf", "flush", "tofile", "detach",
  "settimeout", "pollfd", "events", "timeout", "read", "write", "lines",
  NULL
};


HPASS_API int luaopen_hpass_core (lua_State *L);

HPASS_API int luaopen_hpass_core (lua_State *L) {
  int err = hp_init(), i;
  if (err != 0) {
    char buf[256];
    return luaL_error(L, "hpass: %s", hp_strerror(err, buf, sizeof(buf)));
  }
#if LUA_VERSION_NUM >= 502
  luaL_checkversion(L);
#endif
  hp_pinself();  /* hpass_sys.h says what runs after a close */
  hpb_open_scratch(L);
  luaL_newmetatable(L, HANDLE_T);
  lua_pushliteral(L, HANDLE_T);
  lua_setfield(L, -2, "__name");
  lua_newtable(L);
  for (i = 0; concerns[i].name != NULL; i++) concerns[i].func(L);
  lua_createtable(L, 0, (int)(sizeof(handle_methods) / sizeof(char *)));
  for (i = 0; handle_methods[i] != NULL; i++) {
    lua_getfield(L, -2, handle_methods[i]);
    lua_setfield(L, -2, handle_methods[i]);
  }
  lua_setfield(L, -3, "__index");
  lua_remove(L, -2);
  lua_pushliteral(L, HPASS_VERSION);
  lua_setfield(L, -2, "_VERSION");
  hpb_setnames(L, -1);  /* argument errors name them so */
  return 1;
}
