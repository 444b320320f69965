/*
** lua_base_compat.c - the base of the binding: compatibility with Lua 5.1
** to 5.4 and LuaJIT, and the replacements of lauxlib's argument checks
** (hpc_*) that name every function by its public name (lua_base.h).
*/

#include <limits.h>
#include <math.h>
#include <string.h>

#include "lua_base.h"


/*
** {======================================================
** Compatibility with Lua 5.1, 5.2, 5.3 and LuaJIT
** =======================================================
*/

#if LUA_VERSION_NUM < 502

void hpc_setfuncs (lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

void *hpc_testudata (lua_State *L, int i, const char *tname) {
  void *p = lua_touserdata(L, i);
  if (p == NULL || !lua_getmetatable(L, i)) return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}

#endif

#if LUA_VERSION_NUM < 503

/* t[k] for any k: lua_rawgeti takes an int there. */
void hpc_rawgeti (lua_State *L, int t, lua_Integer k) {
  if (k >= INT_MIN && k <= INT_MAX) {
    lua_rawgeti(L, t, (int)k);
    return;
  }
  if (t < 0 && t > LUA_REGISTRYINDEX) t--;  /* the key is pushed first */
  lua_pushnumber(L, (lua_Number)k);
  lua_rawget(L, t);
}

void hpc_rawseti (lua_State *L, int t, lua_Integer k) {
  if (k >= INT_MIN && k <= INT_MAX) {
    lua_rawseti(L, t, (int)k);
    return;
  }
  if (t < 0 && t > LUA_REGISTRYINDEX) t--;
  lua_pushnumber(L, (lua_Number)k);
  lua_insert(L, -2);
  lua_rawset(L, t);
}

#endif

/* }====================================================== */


/*
** {======================================================
** Argument errors (see lua_base.h)
** =======================================================
*/

#define NAMES       "hpass.names"   /* registry: function -> public name */

void hpb_regtable (lua_State *L, const char *name) {
  lua_getfield(L, LUA_REGISTRYINDEX, name);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, name);
  }
}


void hpb_setnames (lua_State *L, int t) {
  if (t < 0 && t > LUA_REGISTRYINDEX) t = lua_gettop(L) + t + 1;
  hpb_regtable(L, NAMES);
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    if (lua_iscfunction(L, -1) && lua_type(L, -2) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      lua_pushvalue(L, -3);
      lua_rawset(L, -5);  /* names[function] = name */
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/*
** As lauxlib's: a method call counts its arguments without self, and a
** bad self says so.  The name is the function's public one; a function
** of no such name (none of the binding's) is named as lauxlib would.
*/
int hpc_argerror (lua_State *L, int arg, const char *extramsg) {
  lua_Debug ar;
  const char *name = NULL;
  if (!lua_getstack(L, 0, &ar))  /* no stack frame */
    return luaL_error(L, "bad argument #%d (%s)", arg, extramsg);
  lua_getinfo(L, "nf", &ar);
  lua_getfield(L, LUA_REGISTRYINDEX, NAMES);
  if (lua_istable(L, -1)) {
    lua_pushvalue(L, -2);
    lua_rawget(L, -2);
    name = lua_tostring(L, -1);
  }
  if (name == NULL) name = ar.name != NULL ? ar.name : "?";
  if (ar.namewhat != NULL && strcmp(ar.namewhat, "method") == 0 && --arg == 0)
    return luaL_error(L, "calling '%s' on bad self (%s)", name, extramsg);
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, name, extramsg);
}

int hpc_typeerror (lua_State *L, int arg, const char *tname) {
  const char *typearg;
  if (luaL_getmetafield(L, arg, "__name") != 0 && lua_type(L, -1) == LUA_TSTRING)
    typearg = lua_tostring(L, -1);
  else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA)
    typearg = "light userdata";
  else
    typearg = luaL_typename(L, arg);
  return hpc_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", tname,
                                              typearg));
}

void hpc_checktype (lua_State *L, int arg, int t) {
  if (lua_type(L, arg) != t) hpc_typeerror(L, arg, lua_typename(L, t));
}

void hpc_checkany (lua_State *L, int arg) {
  if (lua_type(L, arg) == LUA_TNONE) hpc_argerror(L, arg, "value expected");
}

void *hpc_checkudata (lua_State *L, int arg, const char *tname) {
  void *p = luaL_testudata(L, arg, tname);
  if (p == NULL) hpc_typeerror(L, arg, tname);
  return p;
}

/* A number, never a string that looks like one (lauxlib converts). */
lua_Number hpc_checknumber (lua_State *L, int arg) {
  if (lua_type(L, arg) != LUA_TNUMBER) hpc_typeerror(L, arg, "number");
  return lua_tonumber(L, arg);
}

/*
** An integer: before 5.3 only a float with an exact integer value, as a
** cast of NaN, inf or a value out of range is undefined behaviour.
*/
lua_Integer hpc_checkinteger (lua_State *L, int arg) {
#if LUA_VERSION_NUM >= 503
  int ok;
  lua_Integer v = lua_tointegerx(L, arg, &ok);
  if (ok && lua_type(L, arg) == LUA_TNUMBER) return v;
  if (lua_type(L, arg) == LUA_TNUMBER)
    hpc_argerror(L, arg, "number has no integer representation");
  hpc_typeerror(L, arg, "number");
  return 0;
#else
  lua_Number d = hpc_checknumber(L, arg);
  if (!iswhole(d, -MAXEXACT))
    hpc_argerror(L, arg, "number has no integer representation");
  return (lua_Integer)d;
#endif
}

lua_Integer hpc_optinteger (lua_State *L, int arg, lua_Integer def) {
  return lua_isnoneornil(L, arg) ? def : hpc_checkinteger(L, arg);
}

/* A string, or a number made one, as lauxlib's. */
const char *hpc_checklstring (lua_State *L, int arg, size_t *l) {
  const char *s;
  int t = lua_type(L, arg);
  if (t != LUA_TSTRING && t != LUA_TNUMBER) hpc_typeerror(L, arg, "string");
  s = lua_tolstring(L, arg, l);
  return s;
}

const char *hpc_optlstring (lua_State *L, int arg, const char *def,
                            size_t *l) {
  if (!lua_isnoneornil(L, arg)) return hpc_checklstring(L, arg, l);
  if (l != NULL) *l = def != NULL ? strlen(def) : 0;
  return def;
}

int hpc_checkoption (lua_State *L, int arg, const char *def,
                     const char *const lst[]) {
  const char *name = def != NULL ? hpc_optlstring(L, arg, def, NULL)
                                 : hpc_checklstring(L, arg, NULL);
  int i;
  for (i = 0; lst[i] != NULL; i++)
    if (strcmp(lst[i], name) == 0) return i;
  return hpc_argerror(L, arg, lua_pushfstring(L, "invalid option '%s'", name));
}

/* }====================================================== */


/*
** Arguments a function does not take are refused rather than ignored: a
** user who writes p:wait(5) or read_int(h, 10) expects them to mean
** something.
*/
void hpb_noextra (lua_State *L, int n) {
  if (lua_gettop(L) > n) luaL_argerror(L, n + 1, "no value expected");
}


/*
** Memory outside the collector ran out (the raw allocator refused size
** bytes).  Asking Lua for as much makes Lua raise its own memory error
** (status LUA_ERRMEM) when memory really is short, after its emergency
** collection, which runs no finalizer; the caller touches nothing after
** this, so a finalizer of a normal step that runs here changes nothing.
** Should Lua find the memory after all, the same message is raised as a
** plain error.
*/
int hpb_nomem (lua_State *L, size_t size) {
  (void)lua_newuserdatauv(L, size, 0);
  lua_pushliteral(L, "not enough memory");
  return lua_error(L);
}
