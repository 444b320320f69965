/*
** lua_spawnargs.c - the arguments of spawn_with_handle, read for
** lua_spawn.c: argv, the options, the handles.  Each reader reads its
** part once and without metamethods, into C state whose Lua objects are
** anchored on the stack or in tables of the call's own.  The options are
** read here (readoptions; readextra for those that say who the child is
** and what it runs), carried to the OS layer in hp_spawn_req
** (hpass_sys.h) and done by hp_spawn (hpass_spawn_posix.c,
** hpass_spawn_win32.c; hpass_ids_posix.c).
*/

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "lua_spawnargs.h"

/* The longest name LISTEN_FDNAMES may hold (systemd's FDNAME_MAX). */
#define NAMEMAX     255

/* The largest id a uid_t or gid_t holds: (uid_t)-1 means "no change". */
#define MAXID       4294967294.0
/* The largest process group id (a pid_t, an int). */
#define MAXPGID     2147483647.0
/* The most supplementary groups the groups option takes. */
#define MAXGROUPS   65536
/* How much scratch a user or group entry may take (glibc's is small). */
#define MAXENTRY    ((size_t)1 << 20)

static const char *const stdionames[] = {"stdin", "stdout", "stderr"};

/* The options of readextra, in the order of the X_ indices. */
static const char *const extranames[] = {
  "executable", "umask", "uid", "gid", "groups", NULL
};


/*
** The listen_names option (at stack index v), for n listening handles:
** pushes LISTEN_FDNAMES's value.  Each name is as systemd allows it:
** printable ASCII but ':', 1 to 255 bytes.
*/
static void listennames (lua_State *L, int arg, int v, size_t n) {
  size_t k, len, i;
  if (!lua_istable(L, v))
    luaL_argerror(L, arg, lua_pushfstring(L, "option 'listen_names' must be "
                  "a table, got %s", luaL_typename(L, v)));
  if ((size_t)lua_rawlen(L, v) != n)
    luaL_argerror(L, arg, lua_pushfstring(L, "option 'listen_names' has %d "
                  "names for %d listening handles", (int)lua_rawlen(L, v),
                  (int)n));
  luaL_checkstack(L, (int)(2 * n + 2), "too many listen_names");
  /* each name read once, onto the stack, then joined with ':' */
  for (k = 1; k <= n; k++) {
    const char *s;
    if (k > 1) lua_pushliteral(L, ":");
    rawgeti(L, v, (lua_Integer)k);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "option 'listen_names': "
                    "element %d must be a string, got %s", (int)k,
                    luaL_typename(L, -1)));
    s = lua_tolstring(L, -1, &len);
    for (i = 0; i < len; i++)
      if (s[i] < ' ' || s[i] > '~' || s[i] == ':') break;
    if (len == 0 || len > NAMEMAX || i < len)
      luaL_argerror(L, arg, lua_pushfstring(L, "option 'listen_names': "
                    "element %d must be 1 to %d printable ASCII characters "
                    "but ':'", (int)k, NAMEMAX));
  }
  lua_concat(L, (int)(2 * n - 1));
}


/*
** {======================================================
** Reading spawn_with_handle's arguments
** =======================================================
*/

/* Keep the value on top alive until the call returns; pops it. */
static void anchor (lua_State *L, SpawnArgs *s) {
  lua_rawseti(L, S_ANCHOR, ++s->nanchor);
}


/* A block of n bytes that lives until the call returns. */
static void *anchored (lua_State *L, SpawnArgs *s, size_t n) {
  void *p = lua_newuserdatauv(L, n == 0 ? 1 : n, 0);
  anchor(L, s);
  return p;
}


/*
** The string (or number) at stack index i, without embedded zeros, for
** argument arg; what names it in errors.
*/
static const char *checkcstr (lua_State *L, int i, int arg, const char *what) {
  size_t len;
  const char *s;
  int t = lua_type(L, i);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    s = lua_tolstring(L, i, &len);
    if (strlen(s) == len) return s;
    luaL_argerror(L, arg, lua_pushfstring(L, "%s contains a zero byte", what));
  }
  luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a string, got %s", what,
                                        lua_typename(L, t)));
  return NULL;
}


/*
** Push every key and value of the table at t, raw, and return how many
** pairs.  The traversal itself allocates nothing, so nothing can change
** the table under it; a table that grew while room was being made (a
** finalizer ran) is refused rather than half read.
*/
static int snapshot (lua_State *L, int t, int arg, const char *what) {
  int n = 0, k = 0;
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    lua_pop(L, 1);
    if (++n > (INT_MAX - 8) / 2) break;
  }
  if (!lua_checkstack(L, 2 * n + 3))
    luaL_argerror(L, arg, lua_pushfstring(L, "too many entries in %s", what));
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    if (++k > n) luaL_error(L, "%s changed while being read", what);
    lua_pushvalue(L, -2);  /* the key again, for lua_next */
  }
  return n;
}


/* argv: its program and arguments, as C strings kept alive. */
static void readargv (lua_State *L, SpawnArgs *s) {
  size_t argc = (size_t)lua_rawlen(L, A_ARGV), i;
  const char **argv;
  luaL_argcheck(L, argc > 0, A_ARGV, "argv is empty");
  argv = (const char **)anchored(L, s, (argc + 1) * sizeof(char *));
  for (i = 0; i < argc; i++) {
    char what[40];
    rawgeti(L, A_ARGV, (lua_Integer)i + 1);
    (void)snprintf(what, sizeof(what), "argv[%lu]", (unsigned long)i + 1);
    argv[i] = checkcstr(L, -1, A_ARGV, what);
    anchor(L, s);
  }
  argv[argc] = NULL;  /* hp_spawn appends the handles' numbers */
  s->req.argv = argv;
}


/* The env option: "NAME=value" strings for every pair of the table. */
static void readenv (lua_State *L, SpawnArgs *s, int e) {
  int base = lua_gettop(L), n = snapshot(L, e, A_OPTIONS, "option 'env'");
  int i;
  const char **envp = (const char **)anchored(L, s,
                                              ((size_t)n + 1) * sizeof(char *));
  for (i = 0; i < n; i++) {
    int k = base + 2 * i + 1;
    const char *name, *value;
    if (lua_type(L, k) != LUA_TSTRING)
      luaL_argerror(L, A_OPTIONS, lua_pushfstring(L,
          "option 'env': names must be strings, got %s", luaL_typename(L, k)));
    name = checkcstr(L, k, A_OPTIONS, "option 'env': name");
    if (*name == '\0' || strchr(name, '=') != NULL)
      luaL_argerror(L, A_OPTIONS, lua_pushfstring(L,
          "option 'env': name '%s' is empty or contains '='", name));
    value = checkcstr(L, k + 1, A_OPTIONS,
                      lua_pushfstring(L, "option 'env': value of '%s'", name));
    lua_pushfstring(L, "%s=%s", name, value);
    envp[i] = lua_tostring(L, -1);
    anchor(L, s);
    lua_pop(L, 1);  /* the name for the message */
  }
  envp[n] = NULL;
  lua_settop(L, base);
  s->req.envp = envp;
}


/*
** If name (len bytes) is one of extranames, note that its value is at v
** (readextra reads it later): 1 if so.
*/
static int extraoption (SpawnArgs *s, const char *name, size_t len, int v) {
  int i;
  for (i = 0; extranames[i] != NULL; i++)
    if (strcmp(name, extranames[i]) == 0 && strlen(name) == len) {
      s->extra[i] = v;
      return 1;
    }
  return 0;
}


/*
** The options table: one raw traversal, each known option read by its
** reader; unknown names are refused.  The stdio values stay on the stack
** (kept alive there) for the handle readers.
*/
static void readoptions (lua_State *L, SpawnArgs *s) {
  static const char *const names[] = {"stdin", "stdout", "stderr", "cwd",
                                      "env", "group", "session",
                                      "die_with_parent", "listen",
                                      "listen_names", NULL};
  static const unsigned flags[] = {HP_SPAWN_GROUP, HP_SPAWN_SESSION,
                                   HP_SPAWN_DIEWITHPARENT};
  int base = lua_gettop(L), n, i;
  if (lua_isnil(L, A_OPTIONS)) return;
  n = snapshot(L, A_OPTIONS, A_OPTIONS, "options");
  for (i = 0; i < n; i++) {
    int k = base + 2 * i + 1, v = k + 1, which;
    size_t len;
    const char *name;
    if (lua_type(L, k) != LUA_TSTRING)
      luaL_argerror(L, A_OPTIONS, "option names must be strings");
    name = lua_tolstring(L, k, &len);
    for (which = 0; names[which] != NULL; which++)
      if (strcmp(name, names[which]) == 0 && strlen(name) == len) break;
    switch (which) {
      case 0: case 1: case 2:
        s->stdio[which] = v;
        break;
      case 3:
        if (lua_type(L, v) != LUA_TSTRING)
          luaL_argerror(L, A_OPTIONS, lua_pushfstring(L,
              "option 'cwd' must be a string, got %s", luaL_typename(L, v)));
        s->req.cwd = checkcstr(L, v, A_OPTIONS, "option 'cwd'");
        break;
      case 4:
        if (!lua_istable(L, v))
          luaL_argerror(L, A_OPTIONS, lua_pushfstring(L,
              "option 'env' must be a table, got %s", luaL_typename(L, v)));
        readenv(L, s, v);
        break;
      case 5: case 6: case 7:
        if (which == 5 && lua_type(L, v) == LUA_TNUMBER) {
          s->extra[X_JOIN] = v;  /* a group to join */
          break;
        }
        if (lua_type(L, v) != LUA_TBOOLEAN)
          luaL_argerror(L, A_OPTIONS, lua_pushfstring(L,
              "option '%s' must be a boolean%s, got %s", name,
              which == 5 && HP_SPAWN_IDS ? " or a process group id" : "",
              luaL_typename(L, v)));
        if (lua_toboolean(L, v)) s->req.flags |= flags[which - 5];
        break;
      case 8:
        s->listen = v;
        break;
      case 9:
        s->names = v;
        break;
      default:
        if (extraoption(s, name, len, v)) break;
        luaL_argerror(L, A_OPTIONS, lua_pushfstring(L,
            strlen(name) == len ? "unknown option '%s'"
                                : "unknown option '%s...' (with a zero byte)",
            name));
    }
  }
  /* the pairs stay on the stack: they anchor the values read */
}


/*
** {======================================================
** The options that say who the child is and what it runs
** =======================================================
**
** Read in two steps: while the options table is traversed, extraoption
** (above) only notes where each value is on the stack; readextra then
** checks them and looks up the names of users and groups, before any
** handle is resolved, so that the lookups (which allocate) run no
** finalizer in the middle of the spawn.
*/

/* Raises "bad argument #3 (option 'name': msg)". */
static int opterror (lua_State *L, const char *name, const char *msg) {
  return luaL_argerror(L, A_OPTIONS, lua_pushfstring(L, "option '%s': %s",
                                                     name, msg));
}

/* Raises "bad argument #3 (option 'name' must be what)". */
static int optmust (lua_State *L, const char *name, const char *what) {
  return luaL_argerror(L, A_OPTIONS, lua_pushfstring(L,
                       "option '%s' must be %s", name, what));
}

/* Raises "bad argument #3 (option 'name' must be what, got type)". */
static int opttypeerror (lua_State *L, int v, const char *name,
                         const char *what) {
  return luaL_argerror(L, A_OPTIONS, lua_pushfstring(L,
                       "option '%s' must be %s, got %s", name, what,
                       luaL_typename(L, v)));
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
static int lookup (lua_State *L, const char *opt, int user, const char *name,
                   long long *id) {
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
    opterror(L, opt, lua_pushfstring(L, "no %s named '%s'",
                                     user ? "user" : "group", name));
  return err;
#else
  (void)L; (void)opt; (void)user; (void)name; (void)id;
  return hp_err_inval();  /* never called: readextra refuses first */
#endif
}


/*
** A user or group id at v: a number, or a name looked up.  what is the
** option's name ("uid", or "groups[2]" for an element).
*/
static int readid (lua_State *L, int v, const char *what, int user,
                   long long *id) {
  int t = lua_type(L, v);
  if (t == LUA_TNUMBER) {
    if (!wholein(L, v, 0, MAXID, id))
      optmust(L, what, user ? "a user name or an integer from 0 to "
                              "4294967294"
                            : "a group name or an integer from 0 to "
                              "4294967294");
    return 0;
  }
  if (t == LUA_TSTRING) {
    size_t len;
    const char *name = lua_tolstring(L, v, &len);
    if (strlen(name) != len || len == 0)
      opterror(L, what, lua_pushfstring(L, "%s name is empty or contains "
               "a zero byte", user ? "user" : "group"));
    return lookup(L, what, user, name, id);
  }
  return opttypeerror(L, v, what, user ? "a user id or name"
                                       : "a group id or name");
}


/*
** The groups option: an array of group ids or names, read into an
** array of its own that takes the table's place on the stack (which
** keeps it alive until the call returns).
*/
static int readgroups (lua_State *L, int v, hp_spawn_req *req) {
  lua_Integer n = 0, max = 0, i;
  long long *g;
  int err;
  if (!lua_istable(L, v))
    opttypeerror(L, v, "groups", "an array of group ids or names");
  lua_pushnil(L);
  while (lua_next(L, v) != 0) {
    lua_Number k = lua_type(L, -2) == LUA_TNUMBER ? lua_tonumber(L, -2) : 0;
    lua_pop(L, 1);
    if (!iswhole(k, 1) || k > MAXGROUPS)
      optmust(L, "groups", "an array of at most 65536 groups, with keys 1 "
              "to n only");
    n++;
    if ((lua_Integer)k > max) max = (lua_Integer)k;
  }
  if (max != n) optmust(L, "groups", "an array, with no holes");
  g = (long long *)lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) *
                                        sizeof(long long), 0);
  for (i = 1; i <= n; i++) {
    int e;
    rawgeti(L, v, i);
    e = lua_gettop(L);  /* before the name is pushed */
    err = readid(L, e, lua_pushfstring(L, "groups[%d]", (int)i), 0, &g[i - 1]);
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
static void readexecutable (lua_State *L, int v, hp_spawn_req *req) {
  size_t len;
  const char *s;
  if (lua_type(L, v) != LUA_TSTRING)
    opttypeerror(L, v, "executable", "a string");
  s = lua_tolstring(L, v, &len);
  if (strlen(s) != len) opterror(L, "executable", "contains a zero byte");
  req->executable = s;
}


/* umask: a mode from 0 to 0777. */
static void readumask (lua_State *L, int v, hp_spawn_req *req) {
  long long m = 0;
  if (lua_type(L, v) != LUA_TNUMBER || !wholein(L, v, 0, 511, &m))
    optmust(L, "umask", "an integer from 0 to 511 (0777)");
  req->umask = (int)m;
  req->flags |= HP_SPAWN_UMASK;
}


/* group = n: an existing process group to join. */
static void readjoin (lua_State *L, int v, hp_spawn_req *req) {
  long long g = 0;
  if (!wholein(L, v, 1, MAXPGID, &g))
    optmust(L, "group", "a boolean or a process group id (an integer from 1 "
            "to 2147483647)");
  if (req->flags & HP_SPAWN_SESSION)
    luaL_argerror(L, A_OPTIONS, "options 'group' (a process group to join) "
                  "and 'session' together");
  req->pgroup = g;
  req->flags |= HP_SPAWN_JOIN;
}


/*
** Raises for an option this system has no such thing for (Windows: no
** umask, no users and groups of POSIX's kind, no process groups to join).
*/
static void unsupported (lua_State *L, const SpawnArgs *s) {
  int i;
  for (i = X_UMASK; i < X_JOIN; i++)
    if (s->extra[i] != 0)
      luaL_argerror(L, A_OPTIONS, lua_pushfstring(L, "option '%s' is not "
                    "supported on this system", extranames[i]));
  if (s->extra[X_JOIN] != 0)
    luaL_argerror(L, A_OPTIONS, "option 'group' must be a boolean on this "
                  "system (joining a process group is POSIX only)");
}


/* uid or gid (which, X_UID or X_GID) into *id, with its flag: 0 or error. */
static int readowner (lua_State *L, SpawnArgs *s, int which, long long *id) {
  int user = which == X_UID, err;
  if (s->extra[which] == 0) return 0;
  err = readid(L, s->extra[which], extranames[which], user, id);
  if (err != 0) {
    s->req.failed = user ? HP_FAIL_UID : HP_FAIL_GID;
    return err;
  }
  s->req.flags |= user ? HP_SPAWN_UID : HP_SPAWN_GID;
  return 0;
}


/*
** Every option extraoption noted, checked into the request, with the
** names of users and groups looked up: 0, or an OS error of a lookup
** with s->req.failed set (hps_culprit names the option).
*/
static int readextra (lua_State *L, SpawnArgs *s) {
  hp_spawn_req *req = &s->req;
  int err;
  if (s->extra[X_EXECUTABLE] != 0)
    readexecutable(L, s->extra[X_EXECUTABLE], req);
  if (!HP_SPAWN_IDS) {
    unsupported(L, s);
    return 0;
  }
  if (s->extra[X_UMASK] != 0) readumask(L, s->extra[X_UMASK], req);
  if (s->extra[X_JOIN] != 0) readjoin(L, s->extra[X_JOIN], req);
  if ((err = readowner(L, s, X_UID, &req->uid)) != 0 ||
      (err = readowner(L, s, X_GID, &req->gid)) != 0)
    return err;
  if (s->extra[X_GROUPS] != 0 &&
      (err = readgroups(L, s->extra[X_GROUPS], req)) != 0)
    req->failed = HP_FAIL_GROUPS;
  return err;
}

/* }====================================================== */


/*
** Standard streams given by name: "null" opens the null device (a handle
** of the call's own, closed when the call returns), and stderr "stdout"
** goes where the child's standard output goes.  Returns 0 or an OS error,
** with *which the stream it concerns.
*/
static int readnames (lua_State *L, SpawnArgs *s, int *which) {
  int i;
  for (i = 0; i < 3; i++) {
    int v = s->stdio[i], err;
    const char *name;
    size_t len;
    if (v == 0 || lua_type(L, v) != LUA_TSTRING) continue;
    name = lua_tolstring(L, v, &len);
    if (i == 2 && strcmp(name, "stdout") == 0 && len == 6) {
      s->merge = 1;
      s->stdio[2] = 0;
    }
    else if (strcmp(name, "null") == 0 && len == 4) {
      Handle *h = hpb_newhandle(L);
      lua_replace(L, v);  /* the handle stands for the name now */
      if ((err = hp_opennull(&h->os)) != 0) {
        h->os = HP_NOHANDLE;
        *which = i;
        return err;
      }
      s->null[i] = h;
    }
    else
      luaL_argerror(L, A_OPTIONS, lua_pushfstring(L,
          "option '%s': '%s' names no stream (\"null\"%s)", stdionames[i], name,
          i == 2 ? " or \"stdout\"" : ""));
  }
  return 0;
}


/* Close what readnames opened, now that the child has its own copies. */
void hps_closenames (SpawnArgs *s) {
  int i;
  for (i = 0; i < 3; i++)
    if (s->null[i] != NULL && !isclosed(s->null[i])) {
      (void)hp_close(s->null[i]->os);
      s->null[i]->os = HP_NOHANDLE;
    }
}


/*
** The handles argument: one handle, or an array of them, copied into the
** call's own table S_OBJS (base+1 .. base+n, after the listen option's)
** so that Lua code run later cannot drop one.  Returns n.
*/
static size_t readhandles (lua_State *L, int single, size_t base) {
  lua_Integer n = 0, max = 0, i;
  if (single) {
    lua_pushvalue(L, A_HANDLES);
    rawseti(L, S_OBJS, (lua_Integer)base + 1);
    return 1;
  }
  /* an array: its keys are 1 .. n, nothing else */
  lua_pushnil(L);
  while (lua_next(L, A_HANDLES) != 0) {
    lua_Number k = lua_type(L, -2) == LUA_TNUMBER ? lua_tonumber(L, -2) : 0;
    lua_pop(L, 1);
    if (!iswhole(k, 1)) {
      const char *msg = lua_type(L, -1) == LUA_TSTRING
          ? lua_pushfstring(L, "handles must be an array, found key '%s'",
                            lua_tostring(L, -1))
          : lua_pushfstring(L, "handles must be an array, found a %s key",
                            luaL_typename(L, -1));
      luaL_argerror(L, A_HANDLES, msg);
    }
    n++;
    if ((lua_Integer)k > max) max = (lua_Integer)k;
  }
  if (max != n)
    luaL_argerror(L, A_HANDLES,
                  "handles must be an array, with no holes");
  luaL_argcheck(L, n <= INT_MAX - 3 - (lua_Integer)base, A_HANDLES,
                "too many handles");
  for (i = 1; i <= n; i++) {
    rawgeti(L, A_HANDLES, i);
    rawseti(L, S_OBJS, (lua_Integer)base + i);
  }
  return (size_t)n;
}


/*
** The listen option: an array of handles passed as systemd passes
** sockets, copied into S_OBJS (1 .. n) ahead of the handles; with
** listen_names, LISTEN_FDNAMES's value is anchored.  Returns n.
*/
static size_t readlisten (lua_State *L, SpawnArgs *s) {
  size_t n, k;
  if (s->listen == 0) {
    if (s->names != 0)
      luaL_argerror(L, A_OPTIONS, "option 'listen_names' without 'listen'");
    return 0;
  }
  if (!HP_LISTEN_PROTOCOL)
    luaL_argerror(L, A_OPTIONS, "option 'listen' is not supported on this "
                  "system (pass listening sockets with handles)");
  if (!lua_istable(L, s->listen) || hpb_issingle(L, s->listen))
    luaL_argerror(L, A_OPTIONS, lua_pushfstring(L, "option 'listen' must be "
                  "an array of handles, got %s", luaL_typename(L, s->listen)));
  /* its keys are 1 .. n, nothing else, as for handles */
  n = k = 0;
  lua_pushnil(L);
  while (lua_next(L, s->listen) != 0) {
    lua_Number key = lua_type(L, -2) == LUA_TNUMBER ? lua_tonumber(L, -2) : 0;
    lua_pop(L, 1);
    if (!iswhole(key, 1) || key > INT_MAX - 3)
      luaL_argerror(L, A_OPTIONS, "option 'listen' must be an array of "
                    "handles, with no holes");
    n++;
    if ((size_t)key > k) k = (size_t)key;
  }
  luaL_argcheck(L, n > 0, A_OPTIONS,
                "option 'listen' must hold 1 or more handles");
  luaL_argcheck(L, k == n, A_OPTIONS, "option 'listen' must be an array of "
                "handles, with no holes");
  for (k = 1; k <= n; k++) {
    rawgeti(L, s->listen, (lua_Integer)k);
    rawseti(L, S_OBJS, (lua_Integer)k);
  }
  if (s->names != 0) {
    listennames(L, A_OPTIONS, s->names, n);
    s->req.listen_names = lua_tostring(L, -1);
    anchor(L, s);
  }
  return n;
}


/*
** Every handle of the call as a HandleArg: t[0 .. nl-1] the listen
** option's, t[nl .. nh-1] the handles, then the three standard streams
** (os HP_NOHANDLE when not redirected).  getfd() runs for all first;
** then they are resolved with no Lua code.
*/
static void resolve_all (lua_State *L, SpawnArgs *s, HandleArg *t, size_t nh,
                         int single) {
  size_t i, nl = s->req.nlisten;
  int pass;
  for (i = 0; i < nh + 3; i++) {
    t[i].arg = i >= nl && i < nh ? A_HANDLES : A_OPTIONS;
    t[i].inarray = i >= nl && i < nh && !single;
    t[i].elem = (lua_Integer)(i - nl) + 1;
    t[i].opt = i < nh ? NULL : stdionames[i - nh];
    if (i < nl) {  /* "option 'listen[2]': ..." */
      t[i].opt = lua_pushfstring(L, "listen[%d]", (int)i + 1);
      anchor(L, s);
    }
    t[i].os = HP_NOHANDLE;
    t[i].h = NULL;
    t[i].f = NULL;
    t[i].getfd = 0;
  }
  for (pass = 0; pass < 2; pass++) {
    for (i = 0; i < nh + 3; i++) {
      int idx;
      if (i < nh) {
        rawgeti(L, S_OBJS, (lua_Integer)i + 1);
        idx = lua_gettop(L);
      }
      else if ((idx = s->stdio[i - nh]) == 0)
        continue;
      if (pass == 0) hpb_handlearg_getfd(L, idx, &t[i]);
      else hpb_handlearg_resolve(L, idx, &t[i]);
      if (i < nh) lua_pop(L, 1);
    }
  }
}


int hps_read (lua_State *L, SpawnArgs *s, HandleArg **ha, size_t *nh) {
  int err, single, which = 0;
  readargv(L, s);
  readoptions(L, s);
  if ((err = readextra(L, s)) != 0) return err;
  if ((err = readnames(L, s, &which)) != 0) {
    s->req.failed = HP_FAIL_STDIO;
    s->req.failed_index = (size_t)which;
    return err;
  }
  s->req.nlisten = readlisten(L, s);
  single = hpb_issingle(L, A_HANDLES);
  *nh = s->req.nlisten + readhandles(L, single, s->req.nlisten);
  *ha = (HandleArg *)anchored(L, s, (*nh + 3) * sizeof(HandleArg));
  s->handles = (hp_os *)anchored(L, s, (*nh + 1) * sizeof(hp_os));
  /* from here on the only Lua code is getfd(), in resolve_all's first pass */
  resolve_all(L, s, *ha, *nh, single);
  return 0;
}


const char *hps_culprit (lua_State *L, const SpawnArgs *s, size_t nh) {
  const hp_spawn_req *r = &s->req;
  if (r->failed == HP_FAIL_HANDLE && r->failed_index < r->nlisten)
    return lua_pushfstring(L, "option 'listen[%d]'", (int)r->failed_index + 1);
  if (r->failed == HP_FAIL_HANDLE) {  /* handles come after listen's */
    nh -= r->nlisten;
    if (nh == 1) return "handle";
    return lua_pushfstring(L, "handle %d",
                           (int)(r->failed_index - r->nlisten) + 1);
  }
  switch (r->failed) {
    case HP_FAIL_CWD:
      return lua_pushfstring(L, "cwd '%s'", r->cwd);
    case HP_FAIL_STDIO:
      return r->failed_index < 3 ? stdionames[r->failed_index] : "stdio";
    case HP_FAIL_EXEC:
      return r->executable != NULL ? r->executable : r->argv[0];
    case HP_FAIL_FLAGS:
      return "option 'die_with_parent'";
    case HP_FAIL_UID: return "option 'uid'";
    case HP_FAIL_GID: return "option 'gid'";
    case HP_FAIL_GROUPS: return "option 'groups'";
    case HP_FAIL_JOIN: return "option 'group'";
    default:
      return "spawn";
  }
}

/* }====================================================== */
