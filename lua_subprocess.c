/*
** lua_subprocess.c - what scripts that stand in for shell scripts ask of
** a spawn beyond its handles, as Python's subprocess has it: the spawn
** options executable, umask, uid, gid, groups and a group to join (read
** here for spawn_with_handle, lua_spawn.c), and two helpers of the pipes,
** communicate and pipeline of the Lua layer (lua/hpass.lua): the bytes a
** handle holds in its buffers, taken out, and a monotonic clock.
**
** The options are read in two steps, as the others are: while the options
** table is traversed, hpb_extra_option only notes where each value is on
** the stack; hpb_extra_read then checks them and looks up the names of
** users and groups, before any handle is resolved, so that the lookups
** (which allocate) run no finalizer in the middle of the spawn.
*/

#include <errno.h>
#include <math.h>
#include <string.h>

#include "lua_hpass.h"

/* The largest id a uid_t or gid_t holds: (uid_t)-1 means "no change". */
#define MAXID     4294967294.0
/* The largest process group id (a pid_t, an int). */
#define MAXPGID   2147483647.0
/* How much scratch a user or group entry may take (glibc's is small). */
#define MAXENTRY  ((size_t)1 << 20)


/*
** {======================================================
** The spawn options
** =======================================================
*/

/* The names hpb_extra_option takes, in the order of the X_ indices. */
static const char *const extranames[] = {
  "executable", "umask", "uid", "gid", "groups", NULL
};


int hpb_extra_option (SpawnExtra *x, const char *name, size_t len, int v) {
  int i;
  for (i = 0; extranames[i] != NULL; i++)
    if (strcmp(name, extranames[i]) == 0 && strlen(name) == len) {
      x->v[i] = v;
      return 1;
    }
  return 0;
}


/* Raises "bad argument #arg (option 'name': msg)". */
static int opterror (lua_State *L, int arg, const char *name,
                     const char *msg) {
  return luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': %s", name,
                                               msg));
}

/* Raises "bad argument #arg (option 'name' must be what)". */
static int optmust (lua_State *L, int arg, const char *name,
                    const char *what) {
  return luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be %s",
                                               name, what));
}

/* Raises "bad argument #arg (option 'name' must be what, got type)". */
static int opttypeerror (lua_State *L, int arg, int v, const char *name,
                         const char *what) {
  return luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be %s, "
                       "got %s", name, what, luaL_typename(L, v)));
}


/* Whether the number at v is whole and in [lo, hi]; *out gets it. */
static int wholein (lua_State *L, int v, double lo, double hi,
                    long long *out) {
  lua_Number d = lua_tonumber(L, v);
  if (!iswhole(d, lo) || d > hi) return 0;
  *out = (long long)d;
  return 1;
}


/*
** The id of the user (or group) called name, looked up with a buffer
** that grows while the C library asks for more: 0, or an error code.
** A name that names nobody raises.
*/
static int lookup (lua_State *L, int arg, const char *opt, int user,
                   const char *name, long long *id) {
#if HP_SPAWN_IDS
  size_t size = 1024;
  int err;
  for (;;) {
    char *buf = (char *)lua_newuserdatauv(L, size, 0);
    err = user ? hp_userid(name, buf, size, id)
               : hp_groupid(name, buf, size, id);
    lua_pop(L, 1);
    if (err != ERANGE || size >= MAXENTRY) break;
    size *= 2;
  }
  if (err == hp_err_noent())
    opterror(L, arg, opt, lua_pushfstring(L, "no %s named '%s'",
                                          user ? "user" : "group", name));
  return err;
#else
  (void)L; (void)arg; (void)opt; (void)user; (void)name; (void)id;
  return hp_err_inval();  /* never called: hpb_extra_read refuses first */
#endif
}


/*
** A user or group id at v: a number, or a name looked up.  what is the
** option's name ("uid", or "groups" for an element), elem the element.
*/
static int readid (lua_State *L, int arg, int v, const char *what, int user,
                   long long *id) {
  int t = lua_type(L, v);
  if (t == LUA_TNUMBER) {
    if (!wholein(L, v, 0, MAXID, id))
      optmust(L, arg, what, user ? "a user name or an integer from 0 to "
                                   "4294967294"
                                 : "a group name or an integer from 0 to "
                                   "4294967294");
    return 0;
  }
  if (t == LUA_TSTRING) {
    size_t len;
    const char *name = lua_tolstring(L, v, &len);
    if (strlen(name) != len || len == 0)
      opterror(L, arg, what, lua_pushfstring(L, "%s name is empty or "
               "contains a zero byte", user ? "user" : "group"));
    return lookup(L, arg, what, user, name, id);
  }
  return opttypeerror(L, arg, v, what, user ? "a user id or name"
                                            : "a group id or name");
}


/*
** The groups option: an array of group ids or names, read into an
** array of its own that takes the table's place on the stack (which
** keeps it alive until the call returns).
*/
static int readgroups (lua_State *L, int arg, int v, hp_spawn_req *req) {
  lua_Integer n = 0, max = 0, i;
  long long *g;
  int err;
  if (!lua_istable(L, v))
    opttypeerror(L, arg, v, "groups", "an array of group ids or names");
  lua_pushnil(L);
  while (lua_next(L, v) != 0) {
    lua_Number k = lua_type(L, -2) == LUA_TNUMBER ? lua_tonumber(L, -2) : 0;
    lua_pop(L, 1);
    if (!iswhole(k, 1) || k > 65536)
      optmust(L, arg, "groups", "an array of at most 65536 groups, with "
              "keys 1 to n only");
    n++;
    if ((lua_Integer)k > max) max = (lua_Integer)k;
  }
  if (max != n) optmust(L, arg, "groups", "an array, with no holes");
  g = (long long *)lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) *
                                        sizeof(long long), 0);
  for (i = 1; i <= n; i++) {
    int e;
    rawgeti(L, v, i);
    e = lua_gettop(L);
    err = readid(L, arg, e, lua_pushfstring(L, "groups[%d]", (int)i), 0,
                 &g[i - 1]);
    lua_pop(L, 2);  /* the element and its name */
    if (err != 0) return err;
  }
  lua_replace(L, v);  /* the array stands for the table now */
  req->groups = g;
  req->ngroups = (size_t)n;
  req->flags |= HP_SPAWN_GROUPS;
  return 0;
}


/* executable: a string without zero bytes. */
static void readexecutable (lua_State *L, int arg, int v, hp_spawn_req *req) {
  size_t len;
  const char *s;
  if (lua_type(L, v) != LUA_TSTRING)
    opttypeerror(L, arg, v, "executable", "a string");
  s = lua_tolstring(L, v, &len);
  if (strlen(s) != len) opterror(L, arg, "executable", "contains a zero byte");
  req->executable = s;
}


/* umask: a mode from 0 to 0777. */
static void readumask (lua_State *L, int arg, int v, hp_spawn_req *req) {
  long long m = 0;
  if (lua_type(L, v) != LUA_TNUMBER) opttypeerror(L, arg, v, "umask", "a number");
  if (!wholein(L, v, 0, 511, &m))
    optmust(L, arg, "umask", "an integer from 0 to 511 (0777)");
  req->umask = (int)m;
  req->flags |= HP_SPAWN_UMASK;
}


/* group = n: an existing process group to join. */
static void readjoin (lua_State *L, int arg, int v, hp_spawn_req *req) {
  long long g = 0;
  if (!wholein(L, v, 1, MAXPGID, &g))
    optmust(L, arg, "group", "a boolean or a process group id (an integer "
            "from 1 to 2147483647)");
  if (req->flags & HP_SPAWN_SESSION)
    luaL_argerror(L, arg, "options 'group' (a process group to join) and "
                  "'session' together");
  req->pgroup = g;
  req->flags |= HP_SPAWN_JOIN;
}


/*
** Raises for an option this system has no such thing for (Windows: no
** umask, no users and groups of POSIX's kind, no process groups to join).
*/
static void unsupported (lua_State *L, int arg, const SpawnExtra *x) {
  int i;
  for (i = X_UMASK; i < X_JOIN; i++)
    if (x->v[i] != 0)
      luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' is not "
                    "supported on this system", extranames[i]));
  if (x->v[X_JOIN] != 0)
    luaL_argerror(L, arg, "option 'group' must be a boolean on this system "
                  "(joining a process group is POSIX only)");
}


int hpb_extra_read (lua_State *L, int arg, const SpawnExtra *x,
                    hp_spawn_req *req) {
  int err = 0;
  if (x->v[X_EXECUTABLE] != 0)
    readexecutable(L, arg, x->v[X_EXECUTABLE], req);
  if (!HP_SPAWN_IDS) {
    unsupported(L, arg, x);
    return 0;
  }
  if (x->v[X_UMASK] != 0) readumask(L, arg, x->v[X_UMASK], req);
  if (x->v[X_JOIN] != 0) readjoin(L, arg, x->v[X_JOIN], req);
  if (x->v[X_UID] != 0) {
    if ((err = readid(L, arg, x->v[X_UID], "uid", 1, &req->uid)) != 0) {
      req->failed = HP_FAIL_UID;
      return err;
    }
    req->flags |= HP_SPAWN_UID;
  }
  if (x->v[X_GID] != 0) {
    if ((err = readid(L, arg, x->v[X_GID], "gid", 0, &req->gid)) != 0) {
      req->failed = HP_FAIL_GID;
      return err;
    }
    req->flags |= HP_SPAWN_GID;
  }
  if (x->v[X_GROUPS] != 0 &&
      (err = readgroups(L, arg, x->v[X_GROUPS], req)) != 0)
    req->failed = HP_FAIL_GROUPS;
  return err;
}


const char *hpb_extra_culprit (const hp_spawn_req *req) {
  switch (req->failed) {
    case HP_FAIL_UID: return "option 'uid'";
    case HP_FAIL_GID: return "option 'gid'";
    case HP_FAIL_GROUPS: return "option 'groups'";
    case HP_FAIL_JOIN: return "option 'group'";
    default: return NULL;
  }
}

/* }====================================================== */


/*
** {======================================================
** Helpers of the Lua layer
** =======================================================
*/

/*
** hpass.core._takebuffered(h): what hpass handle h holds in its
** buffers, taken out of them: the input read ahead and not yet read, and
** the output not yet written.  communicate moves bytes past the buffers,
** straight to and from the OS, so it takes them first: nothing the
** script read ahead, or wrote into a buffer, is lost or reordered.
*/
static int takebuffered (lua_State *L) {
  Handle *h = (Handle *)luaL_checkudata(L, 1, HANDLE_T);
  size_t nin, nout;
  unsigned char *b;
  hpb_noextra(L, 1);
  if (isclosed(h)) luaL_argerror(L, 1, "attempt to use a closed handle");
  nin = unread(h);
  nout = h->wlen;
  /* room first: the allocation may run a finalizer that closes h */
  b = (unsigned char *)lua_newuserdatauv(L, nin + nout + 1, 0);
  if (isclosed(h)) return luaL_error(L, "handle was closed during the call");
  /* a finalizer may also have read from it, or flushed it */
  if (nin > unread(h)) nin = unread(h);
  /* cppcheck-suppress knownConditionTrueFalse ; see above */
  if (nout > h->wlen) nout = h->wlen;
  if (nin > 0) memcpy(b, h->rbuf + h->rpos, nin);
  if (nout > 0) memcpy(b + nin, h->wbuf, nout);
  h->rpos += nin;
  h->wlen = 0;
  h->nruns = 0;
  hpb_trim(L, h);
  lua_pushlstring(L, (const char *)b, nin);
  lua_pushlstring(L, (const char *)b + nin, nout);
  return 2;
}


/* hpass.core._now(): seconds on the monotonic clock of the deadlines. */
static int now (lua_State *L) {
  hpb_noextra(L, 0);
  lua_pushnumber(L, (lua_Number)hp_now() / 1000);
  return 1;
}


void hpb_open_subprocess (lua_State *L) {
  lua_pushcfunction(L, takebuffered);
  lua_setfield(L, -2, "_takebuffered");
  lua_pushcfunction(L, now);
  lua_setfield(L, -2, "_now");
}

/* }====================================================== */
