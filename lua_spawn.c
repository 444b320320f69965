/*
** lua_spawn.c - process objects and hpass.spawn_with_handle.
**
** spawn_with_handle reads its arguments with small readers (argv,
** options, env, handles), each reading its part once and without
** metamethods, into C state whose Lua objects are anchored on the stack
** or in tables of the call's own.  The only Lua code the call runs is the
** getfd() methods of socket-like handles, all of them before any handle
** is resolved; after that nothing allocates through the collector until
** the child has started, so no finalizer can close or drop a handle the
** call is passing.
*/

#include <limits.h>
#include <math.h>
#include <string.h>

#include "lua_hpass.h"

#define ORPHANS     "hpass.orphans"   /* registry: pid -> true */
#define RUNNING     "hpass.running"   /* registry: process -> true, weak keys */
#define REAPER      "hpass.reaper"    /* registry: a Reaper */
#define PIPES       "hpass.pipes"     /* registry: process -> {stdin = h,
                                         stdout = h, stderr = h}, weak
                                         keys (lua/hpass.lua fills it) */


/*
** {======================================================
** Process objects
** =======================================================
*/

/*
** P_LOST: the child can no longer be waited for, because its status was
** taken by someone else (SIGCHLD ignored, another library's
** waitpid(-1)).  Its pid may since belong to another process, so it is
** never signalled again.
*/
enum { P_NONE, P_RUNNING, P_DONE, P_LOST };

typedef struct Process {
  hp_proc p;
  int state;
  int how;           /* HP_EXITED or HP_SIGNALED, once P_DONE */
  long long code;    /* exit status or signal, once P_DONE */
  int err;           /* the wait error, once P_LOST */
  hp_os waitfd;      /* readable once the child has ended (hp_procfd) */
  int nowaitfd;      /* hp_procfd failed: wait by polling */
  int fdgiven;       /* pollfd() gave waitfd out: keep it while p lives */
  int group;         /* started with group or session: leads its group */
  int listed;        /* in the RUNNING table, counted in the Reaper */
} Process;


static Process *checkproc (lua_State *L, int i) {
  return (Process *)luaL_checkudata(L, i, PROCESS_T);
}


/* A new process object, pushed, not started yet. */
static Process *newprocess (lua_State *L) {
  Process *p = (Process *)lua_newuserdatauv(L, sizeof(Process), 0);
  p->state = P_NONE;
  p->p.pid = -1;
  p->p.sys = NULL;
  p->p.group = NULL;
  p->p.flags = 0;
  p->p.pgid = 0;
  p->group = 0;
  p->how = HP_EXITED;
  p->code = 0;
  p->err = 0;
  p->waitfd = HP_NOHANDLE;
  p->nowaitfd = 0;
  p->fdgiven = 0;
  p->listed = 0;
  luaL_getmetatable(L, PROCESS_T);
  lua_setmetatable(L, -2);
  return p;
}


/*
** The one place a child is collected: polls (block == 0) or waits, and
** moves the object to P_DONE or, when the child cannot be waited for,
** to P_LOST.  Returns the wait error, 0 if none.
*/
static void dropwaitfd (Process *p) {
  if (p->waitfd != HP_NOHANDLE) (void)hp_close(p->waitfd);
  p->waitfd = HP_NOHANDLE;
}

static int collect (Process *p, int block) {
  int done = 0, err;
  if (p->state != P_RUNNING) return 0;
  err = hp_wait(&p->p, block, &done, &p->how, &p->code);
  if (err != 0) {
    p->state = P_LOST;
    p->err = err;
    (void)hp_release(&p->p);  /* nothing left to collect */
  }
  else if (done)
    p->state = P_DONE;
  if (p->state != P_RUNNING && !p->fdgiven) dropwaitfd(p);
  return err;
}


/* The waitfd of a running child, opened on first need; 0 or an error. */
static int getwaitfd (Process *p) {
  int err;
  if (p->waitfd != HP_NOHANDLE) return 0;
  if (p->nowaitfd) return p->nowaitfd;
  err = hp_procfd(&p->p, &p->waitfd);
  if (err != 0) {
    p->waitfd = HP_NOHANDLE;
    p->nowaitfd = err;
  }
  return err;
}


/*
** Wait until the child has ended or the deadline passes (then it is still
** P_RUNNING).  With a waitfd this sleeps in poll; without one it polls
** with exponential back-off, 1 ms doubling up to 50 ms, as Python's
** wait(timeout) did before pidfds: no busy waiting either way.
*/
static void waitfor (Process *p, hp_time deadline) {
  hp_time pause = 1;
  int n;
  if (deadline == HP_NEVER) {
    (void)collect(p, 1);
    return;
  }
  (void)collect(p, 0);
  if (p->state != P_RUNNING) return;
  if (getwaitfd(p) == 0) {
    (void)hp_ready(p->waitfd, HP_READABLE, deadline);
    (void)collect(p, 0);
    return;
  }
  for (;;) {
    hp_time now = hp_now(), wake = now + pause;
    if (now >= deadline) return;
    if (wake > deadline) wake = deadline;
    (void)hp_poll(NULL, 0, wake, &n, NULL, NULL);
    (void)collect(p, 0);
    if (p->state != P_RUNNING) return;
    if (pause < 50) pause *= 2;
  }
}


int hpb_procready (lua_State *L, int i, int *ended, hp_os *fd) {
  Process *p = (Process *)luaL_testudata(L, i, PROCESS_T);
  if (p == NULL) return 0;
  if (p->state == P_NONE) luaL_error(L, "process was never started");
  (void)collect(p, 0);
  *ended = p->state != P_RUNNING;
  *fd = (!*ended && getwaitfd(p) == 0) ? p->waitfd : HP_NOHANDLE;
  return 1;
}


/* The result of wait and poll once the child is no longer running. */
static int pushstatus (lua_State *L, Process *p) {
  switch (p->state) {
    case P_DONE:  /* the triple of os.execute */
      if (p->how == HP_EXITED && p->code == 0) lua_pushboolean(L, 1);
      else luaL_pushfail(L);
      lua_pushstring(L, p->how == HP_EXITED ? "exit" : "signal");
      lua_pushinteger(L, (lua_Integer)p->code);
      return 3;
    case P_LOST:
      return hpb_oserror(L, p->err, "process status was collected elsewhere");
    default:
      return luaL_error(L, "process was never started");
  }
}


static void unlist (lua_State *L, Process *p, int i);

/* What wait and poll return: the triple once the child has ended, else false. */
static int waitresult (lua_State *L, Process *p) {
  unlist(L, p, 1);
  if (p->state == P_RUNNING) {
    lua_pushboolean(L, 0);
    return 1;
  }
  return pushstatus(L, p);
}

/*
** p:wait([seconds]): the wait triple once the child has ended; with a
** timeout, false when it ran out first (as poll), the child still running.
*/
static int p_wait (lua_State *L) {
  Process *p = checkproc(L, 1);
  hp_time ms = hpb_opttimeout(L, 2);
  hpb_noextra(L, 2);
  waitfor(p, ms == HP_NEVER ? HP_NEVER : hp_now() + ms);
  return waitresult(L, p);
}


/*
** cqueues' polling protocol: p:pollfd() is a descriptor that becomes
** readable when the child ends (a pidfd on Linux), kept open as long as
** the object lives; p:events() is "r"; p:timeout() is nil.
*/
static int p_pollfd (lua_State *L) {
  Process *p = checkproc(L, 1);
  int err;
  hpb_noextra(L, 1);
  (void)collect(p, 0);
  if (p->state != P_RUNNING && p->waitfd == HP_NOHANDLE) {
    luaL_pushfail(L);
    lua_pushliteral(L, "process has already ended");
    lua_pushinteger(L, hp_err_srch());
    return 3;
  }
  if (p->state == P_RUNNING && (err = getwaitfd(p)) != 0)
    return hpb_oserror(L, err, NULL);
  p->fdgiven = 1;
  lua_pushinteger(L, (lua_Integer)p->waitfd);
  return 1;
}

static int p_events (lua_State *L) {
  (void)checkproc(L, 1);
  hpb_noextra(L, 1);
  lua_pushliteral(L, "r");
  return 1;
}

static int p_timeout (lua_State *L) {
  (void)checkproc(L, 1);
  hpb_noextra(L, 1);
  lua_pushnil(L);
  return 1;
}


/* p:poll(): the wait triple if the child has ended, else false. */
static int p_poll (lua_State *L) {
  Process *p = checkproc(L, 1);
  hpb_noextra(L, 1);
  (void)collect(p, 0);
  return waitresult(L, p);
}


/* The number of a signal named "TERM" or "SIGTERM"; -1 if unknown. */
static int signum (const char *name) {
  int i;
  if (strncmp(name, "SIG", 3) == 0) name += 3;
  for (i = 0; hp_signames[i].name != NULL; i++)
    if (strcmp(name, hp_signames[i].name) == 0) return hp_signames[i].sig;
  return -1;
}

/* "process has already ended", ESRCH */
static int pushended (lua_State *L) {
  luaL_pushfail(L);
  lua_pushliteral(L, "process has already ended");
  lua_pushinteger(L, hp_err_srch());
  return 3;
}

/*
** The group is signalled first, then the leader collected if it has
** ended: a leader that has ended but is not collected still holds its
** pid, so the group's id is still the group's (POSIX), and its members,
** which may hold the pipes, are reached.  A leader collected before
** (wait, poll, an earlier kill) ends that on POSIX: the id may be reused.
*/
static int killgroup (lua_State *L, Process *p, int sig) {
  int collected = p->state != P_RUNNING;
  int err = hp_killgroup(&p->p, sig, collected);
  (void)collect(p, 0);
  unlist(L, p, 1);
  if (err == 0) return hpb_okresult(L, 0);
  if (p->state == P_LOST)
    return hpb_oserror(L, p->err, "process status was collected elsewhere");
  if (collected && err == hp_err_srch()) return pushended(L);
  return hpb_okresult(L, err);
}

/*
** p:kill([sig [, "group"]]).  With "group" the signal goes to the
** child's whole group (the job on Windows), which only a child started
** with group or session has (see killgroup).
*/
static int p_kill (lua_State *L) {
  Process *p = checkproc(L, 1);
  int sig, group = 0;
  hpb_noextra(L, 3);
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *name = lua_tostring(L, 2);
    sig = signum(name);
    if (sig <= 0 || strlen(name) != (size_t)lua_rawlen(L, 2))
      luaL_argerror(L, 2, lua_pushfstring(L, "unknown signal name '%s'", name));
  }
  else {
    lua_Integer s = luaL_optinteger(L, 2, 15);
    luaL_argcheck(L, s >= 0 && s <= INT_MAX, 2, "invalid signal number");
    sig = (int)s;
  }
  if (!lua_isnoneornil(L, 3)) {
    size_t len;
    const char *what = luaL_checklstring(L, 3, &len);
    luaL_argcheck(L, strcmp(what, "group") == 0 && len == 5, 3,
                  lua_pushfstring(L, "'group' expected, got '%s'", what));
    if (!p->group)
      luaL_argerror(L, 3, "process has no group of its own (spawn it with "
                          "group or session)");
    group = 1;
  }
  if (p->state == P_NONE) return luaL_error(L, "process was never started");
  if (group) return killgroup(L, p, sig);
  /*
  ** A child that has ended is collected first: once collected, its pid
  ** may belong to someone else, so it is never signalled.
  */
  (void)collect(p, 0);
  unlist(L, p, 1);
  switch (p->state) {
    case P_RUNNING:
      return hpb_okresult(L, hp_kill(&p->p, sig));
    case P_LOST:
      return hpb_oserror(L, p->err, "process status was collected elsewhere");
    default:  /* P_DONE */
      return pushended(L);
  }
}


/*
** The reapers.  Children nobody waited for are polled in two registry
** tables: ORPHANS holds the pids of process objects collected while their
** child ran, RUNNING the process objects whose child has not been
** collected (weak keys).  Without them a parent that keeps spawning and
** never waits would hold a zombie per child until the collector happens
** to free the objects, which in a large heap can be thousands.  A status
** found for an object waits in it for wait or poll.
*/

/*
** Poll each entry of the registry table name once: ended(L) looks at the
** key on top of the stack and says whether it is done with; those leave
** the table.  Returns how many are left.
*/
static lua_Integer reap (lua_State *L, const char *name,
                         int (*ended) (lua_State *L)) {
  lua_Integer left = 0;
  lua_getfield(L, LUA_REGISTRYINDEX, name);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    lua_pop(L, 1);
    if (ended(L)) {
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, -4);  /* clearing a field during lua_next is allowed */
    }
    else left++;
  }
  lua_pop(L, 1);
  return left;
}

/* An orphan (its pid) that has ended is collected now. */
static int orphan_ended (lua_State *L) {
  hp_proc pr;
  int done = 0, how;
  long long code;
  pr.pid = (long long)lua_tonumber(L, -1);
  pr.sys = NULL;
  pr.group = NULL;
  return hp_wait(&pr, 0, &done, &how, &code) != 0 || done;
}

/* A listed process object whose child has ended leaves the list. */
static int running_ended (lua_State *L) {
  Process *p = (Process *)luaL_testudata(L, -1, PROCESS_T);
  if (p == NULL) return 1;
  (void)collect(p, 0);
  if (p->state == P_RUNNING) return 0;
  p->listed = 0;
  return 1;
}

static void reap_orphans (lua_State *L) {
  (void)reap(L, ORPHANS, orphan_ended);
}


/*
** When spawn looks for ended children.  Asking the kernel whether any
** child has ended (hp_anyended) is one system call, but the kernel walks
** every child for it: with thousands alive that alone would make each
** spawn slower.  So spawn asks at every call while fewer than 256
** children live, and then once every live/256 calls: zombies stay under
** 1% of the live children, and spawn stays as fast as with none.
*/
typedef struct Reaper {
  lua_Integer live;      /* process objects not yet seen ended, about */
  lua_Integer skipped;   /* spawns since the kernel was last asked */
  lua_Integer gcskipped; /* collections of running ones, the same */
} Reaper;

static Reaper *getreaper (lua_State *L) {
  Reaper *r;
  lua_getfield(L, LUA_REGISTRYINDEX, REAPER);
  r = (Reaper *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return r;  /* made at load time, kept in the registry */
}

/*
** A process object whose child was collected by wait, poll or kill (at
** stack index i) leaves the RUNNING table at once, so that a loop that
** spawns and waits keeps that table (and the live count) small.
*/
static void unlist (lua_State *L, Process *p, int i) {
  Reaper *r;
  if (!p->listed || p->state == P_RUNNING) return;
  p->listed = 0;
  lua_getfield(L, LUA_REGISTRYINDEX, RUNNING);
  lua_pushvalue(L, i);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  if ((r = getreaper(L)) != NULL && r->live > 0) r->live--;
}


/*
** Whether it is time to ask the kernel again: once every live/256 calls,
** counted in *skipped (no Reaper: every time).
*/
static int due (Reaper *r, lua_Integer *skipped) {
  if (r == NULL) return 1;
  if (*skipped < r->live / 256) {
    (*skipped)++;
    return 0;
  }
  *skipped = 0;
  return 1;
}


static void reap_some (lua_State *L) {
  Reaper *r = getreaper(L);
  if (!due(r, r != NULL ? &r->skipped : NULL)) return;
  if (hp_anyended()) {
    lua_Integer left;
    reap_orphans(L);
    left = reap(L, RUNNING, running_ended);
    if (r != NULL) r->live = left;
  }
}


/*
** A process object collected before its child was waited for: if the
** child has ended it is collected now; if not, its pid joins the orphans,
** which are polled when a spawn or such a collection finds that some
** child has ended (hp_anyended), so that a long-running parent that never
** waits does not pile up zombies.
*/
static int p_gc (lua_State *L) {
  Process *p = checkproc(L, 1);
  (void)collect(p, 0);
  p->fdgiven = 0;
  dropwaitfd(p);
  if (p->state == P_RUNNING) {
    if (hp_release(&p->p)) {
      lua_getfield(L, LUA_REGISTRYINDEX, ORPHANS);
      if (lua_istable(L, -1)) {
        lua_pushnumber(L, (lua_Number)p->p.pid);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
      }
      lua_pop(L, 1);
    }
    p->state = P_NONE;
  }
  hp_endgroup(&p->p);
  /*
  ** When many objects go at once (a full collection, lua_close) while
  ** their children run, a scan of the orphans per object would be one
  ** wait per orphan per object, quadratic: so only when some child has
  ** ended, asked as often as spawn asks (see Reaper).
  */
  {
    Reaper *r = getreaper(L);
    if (due(r, r != NULL ? &r->gcskipped : NULL) && hp_anyended())
      reap_orphans(L);
  }
  return 0;
}


#if LUA_VERSION_NUM >= 504
/*
** A to-be-closed process is waited for when it goes out of scope, its
** pipes closed first (as Python's Popen does on leaving a with block): a
** child blocked writing to a pipe nobody reads then ends, with EPIPE or
** SIGPIPE, rather than keep the wait from returning.
*/
static int p_close (lua_State *L) {
  Process *p = checkproc(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, PIPES);
  if (lua_istable(L, -1)) {
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    if (lua_istable(L, -1)) {
      lua_pushnil(L);
      while (lua_next(L, -2) != 0) {
        Handle *h = (Handle *)luaL_testudata(L, -1, HANDLE_T);
        if (h != NULL) (void)hpb_close(L, h);
        lua_pop(L, 1);
      }
    }
  }
  (void)collect(p, 1);
  return 0;
}
#endif


static int p_tostring (lua_State *L) {
  Process *p = checkproc(L, 1);
  switch (p->state) {
    case P_DONE:
      lua_pushfstring(L, PROCESS_T " (%d, %s %d)", (int)p->p.pid,
                      p->how == HP_EXITED ? "exit" : "signal", (int)p->code);
      break;
    case P_RUNNING:
      lua_pushfstring(L, PROCESS_T " (%d)", (int)p->p.pid);
      break;
    case P_LOST:
      lua_pushfstring(L, PROCESS_T " (%d, lost)", (int)p->p.pid);
      break;
    default:
      lua_pushliteral(L, PROCESS_T " (none)");
  }
  return 1;
}


/* proc.pid, proc.stdin, proc.stdout, proc.stderr and the methods */
static int p_index (lua_State *L) {
  Process *p = checkproc(L, 1);
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
  if (k != NULL && strcmp(k, "pid") == 0) {
    if (p->state == P_NONE) lua_pushnil(L);
    else lua_pushinteger(L, (lua_Integer)p->p.pid);
    return 1;
  }
  if (k != NULL && (strcmp(k, "stdin") == 0 || strcmp(k, "stdout") == 0 ||
                    strcmp(k, "stderr") == 0)) {
    lua_getfield(L, LUA_REGISTRYINDEX, PIPES);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    if (!lua_istable(L, -1)) return 0;  /* no pipes: nil */
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** Reading spawn_with_handle's arguments
** =======================================================
*/

/* Stack slots of the call: its three arguments, then its own objects. */
enum { A_ARGV = 1, A_HANDLES, A_OPTIONS, S_PROC, S_SCRATCH, S_ANCHOR, S_OBJS };

/* What the readers gather. */
typedef struct SpawnArgs {
  hp_spawn_req req;
  int nanchor;          /* entries in the anchor table */
  int stdio[3];         /* stack index of each stdio option, 0 if absent */
  int merge;            /* stderr = "stdout": 2>&1 */
  Handle *null[3];      /* the null device opened for a stdio option */
  int listen, names;    /* stack index of listen, listen_names, or 0 */
  SpawnExtra extra;     /* the options of lua_subprocess.c */
} SpawnArgs;


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
          s->extra.v[X_JOIN] = v;  /* a group to join */
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
        if (hpb_extra_option(&s->extra, name, len, v)) break;
        luaL_argerror(L, A_OPTIONS, lua_pushfstring(L,
            strlen(name) == len ? "unknown option '%s'"
                                : "unknown option '%s...' (with a zero byte)",
            name));
    }
  }
  /* the pairs stay on the stack: they anchor the values read */
}


/*
** Standard streams given by name: "null" opens the null device (a handle
** of the call's own, closed when the call returns), and stderr "stdout"
** goes where the child's standard output goes.  Returns 0 or an OS error,
** with *which the stream it concerns.
*/
static int readnames (lua_State *L, SpawnArgs *s, int *which) {
  static const char *const names[] = {"stdin", "stdout", "stderr"};
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
          "option '%s': '%s' names no stream (\"null\"%s)", names[i], name,
          i == 2 ? " or \"stdout\"" : ""));
  }
  return 0;
}


/* Close what readnames opened, now that the child has its own copies. */
static void closenames (SpawnArgs *s) {
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
    hpb_listennames(L, A_OPTIONS, s->names, n);
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
  static const char *const names[] = {"stdin", "stdout", "stderr"};
  size_t i, nl = s->req.nlisten;
  int pass;
  for (i = 0; i < nh + 3; i++) {
    t[i].arg = i >= nl && i < nh ? A_HANDLES : A_OPTIONS;
    t[i].inarray = i >= nl && i < nh && !single;
    t[i].elem = (lua_Integer)(i - nl) + 1;
    t[i].opt = i < nh ? NULL : names[i - nh];
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

/* }====================================================== */


/* What a failed start is blamed on, for the message. */
static const char *culprit (lua_State *L, const SpawnArgs *s, size_t nh) {
  static const char *const names[] = {"stdin", "stdout", "stderr"};
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
      return r->failed_index < 3 ? names[r->failed_index] : "stdio";
    case HP_FAIL_EXEC:
      return r->executable != NULL ? r->executable : r->argv[0];
    case HP_FAIL_FLAGS:
      return "option 'die_with_parent'";
    default:
      return hpb_extra_culprit(r) != NULL ? hpb_extra_culprit(r) : "spawn";
  }
}


/*
** hpass.spawn_with_handle(argv, handle [, options])
** The child inherits exactly the given handles, and finds their numbers
** (as it sees them) appended to its command line.
*/
int hpb_spawn (lua_State *L) {
  SpawnArgs s;
  Process *proc;
  Scratch *scratch;
  HandleArg *t;
  hp_os *handles;
  size_t nh, i;
  int err, single, which = 0;
  luaL_checktype(L, A_ARGV, LUA_TTABLE);
  luaL_argcheck(L, !lua_isnoneornil(L, A_HANDLES), A_HANDLES,
                "handle expected, got no value");
  if (!lua_isnoneornil(L, A_OPTIONS)) luaL_checktype(L, A_OPTIONS, LUA_TTABLE);
  hpb_noextra(L, A_OPTIONS);
  lua_settop(L, A_OPTIONS);
  memset(&s, 0, sizeof(s));
  for (i = 0; i < 3; i++) s.req.stdio[i] = HP_NOHANDLE;
  /* collect what has ended before adding to it (and before any handle
     is read: this may run no Lua code, but keeps that order plain) */
  reap_some(L);
  proc = newprocess(L);                 /* S_PROC */
  scratch = hpb_newscratch(L);          /* S_SCRATCH */
  lua_newtable(L);                      /* S_ANCHOR */
  lua_newtable(L);                      /* S_OBJS: listen, then handles */
  readargv(L, &s);
  readoptions(L, &s);
  if ((err = hpb_extra_read(L, A_OPTIONS, &s.extra, &s.req)) != 0)
    return hpb_oserror(L, err, culprit(L, &s, 0));
  if ((err = readnames(L, &s, &which)) != 0) {
    s.req.failed = HP_FAIL_STDIO;
    s.req.failed_index = (size_t)which;
    return hpb_oserror(L, err, culprit(L, &s, 0));
  }
  s.req.nlisten = readlisten(L, &s);
  single = hpb_issingle(L, A_HANDLES);
  nh = s.req.nlisten + readhandles(L, single, s.req.nlisten);
  t = (HandleArg *)anchored(L, &s, (nh + 3) * sizeof(HandleArg));
  handles = (hp_os *)anchored(L, &s, (nh + 1) * sizeof(hp_os));
  /* from here on the only Lua code is getfd(), in resolve_all's first pass */
  resolve_all(L, &s, t, nh, single);
  /* input read ahead would never reach the child: refused before any
     flush, then what waits in buffers must reach the pipe before the
     child starts */
  for (i = 0; i < nh + 3; i++)
    if (t[i].h != NULL) hpb_checkahead(L, &t[i]);
  for (i = 0; i < nh + 3; i++) {
    if ((err = hpb_flushout(L, &t[i], deadline(t[i].h))) != 0) {
      s.req.failed = i < nh ? HP_FAIL_HANDLE : HP_FAIL_STDIO;
      s.req.failed_index = i < nh ? i : i - nh;
      if (err == hp_err_timeout())  /* as settimeout promises */
        return hpb_ioerror(L, err, NULL);
      return hpb_oserror(L, err, culprit(L, &s, nh));
    }
  }
  for (i = 0; i < nh + 3; i++) hpb_checkahead(L, &t[i]);
  for (i = 0; i < nh; i++) handles[i] = t[i].os;
  for (i = 0; i < 3; i++) s.req.stdio[i] = t[nh + i].os;
  if (s.merge) {  /* 2>&1: where stdout goes, redirected or inherited */
    s.req.stdio[2] = s.req.stdio[1];
    if (s.req.stdio[2] == HP_NOHANDLE && (err = hp_stdio(1, &s.req.stdio[2])) != 0) {
      s.req.failed = HP_FAIL_STDIO;
      s.req.failed_index = 2;
      return hpb_oserror(L, err, culprit(L, &s, nh));
    }
  }
  s.req.handles = handles;
  s.req.nhandles = nh;
  err = hp_spawn(&s.req, &proc->p, hpb_scratchalloc, scratch);
  hpb_freescratch(scratch);
  closenames(&s);
  if (err != 0) return hpb_oserror(L, err, culprit(L, &s, nh));
  proc->state = P_RUNNING;
  proc->group = (s.req.flags & (HP_SPAWN_GROUP | HP_SPAWN_SESSION |
                                HP_SPAWN_JOIN)) != 0;
  {
    Reaper *r = getreaper(L);
    if (r != NULL) r->live++;
    proc->listed = 1;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, RUNNING);
  lua_pushvalue(L, S_PROC);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_pushvalue(L, S_PROC);
  return 1;
}


/*
** hpass.environ(): a new table, name -> value, of this process's
** environment as it is now (not as it was at load time).  An entry with
** no '=' (possible on POSIX) is left out; so are names the table would
** hold twice (the first one wins, as getenv finds it).
*/
static int hpass_environ (lua_State *L) {
  Scratch *scratch;
  char *const *e;
  int err;
  hpb_noextra(L, 0);
  scratch = hpb_newscratch(L);
  err = hp_envlist(&e, hpb_scratchalloc, scratch);
  if (err != 0) {
    hpb_freescratch(scratch);
    return hpb_oserror(L, err, NULL);
  }
  lua_newtable(L);
  for (; *e != NULL; e++) {
    const char *eq = strchr(*e, '=');
    if (eq == NULL || eq == *e) continue;
    lua_pushlstring(L, *e, (size_t)(eq - *e));
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (!lua_isnil(L, -1)) {
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    lua_pushstring(L, eq + 1);
    lua_rawset(L, -3);
  }
  hpb_freescratch(scratch);
  return 1;
}


static const luaL_Reg process_methods[] = {
  {"wait", p_wait},
  {"poll", p_poll},
  {"kill", p_kill},
  {"pollfd", p_pollfd},
  {"events", p_events},
  {"timeout", p_timeout},
  {NULL, NULL}
};

static const luaL_Reg process_meta[] = {
  {"__gc", p_gc},
#if LUA_VERSION_NUM >= 504
  {"__close", p_close},
#endif
  {"__tostring", p_tostring},
  {NULL, NULL}
};


/* The process metatable and the registry tables reaping uses. */
void hpb_open_spawn (lua_State *L) {
  luaL_newmetatable(L, PROCESS_T);
  luaL_setfuncs(L, process_meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, process_methods, 0);
  hpb_setnames(L, -1);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "_procmethods");  /* the Lua layer adds communicate */
  lua_pushcclosure(L, p_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, PROCESS_T);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  /* the module table is below: environ joins it here */
  lua_pushcfunction(L, hpass_environ);
  lua_setfield(L, -2, "environ");
  hpb_open_subprocess(L);
  /* pipes: a process's stdin, stdout and stderr, set by the Lua layer */
  lua_getfield(L, LUA_REGISTRYINDEX, PIPES);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, PIPES);
  }
  lua_setfield(L, -2, "_pipes");
  /* orphans: pids of collected processes not yet reaped */
  lua_getfield(L, LUA_REGISTRYINDEX, ORPHANS);
  if (!lua_istable(L, -1)) {
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, ORPHANS);
  }
  lua_pop(L, 1);
  /* when spawn last looked for ended children */
  lua_getfield(L, LUA_REGISTRYINDEX, REAPER);
  if (lua_touserdata(L, -1) == NULL) {
    Reaper *r = (Reaper *)lua_newuserdatauv(L, sizeof(Reaper), 0);
    r->live = r->skipped = r->gcskipped = 0;
    lua_setfield(L, LUA_REGISTRYINDEX, REAPER);
  }
  lua_pop(L, 1);
  /* running: process objects whose child is not collected yet */
  lua_getfield(L, LUA_REGISTRYINDEX, RUNNING);
  if (!lua_istable(L, -1)) {
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, RUNNING);
  }
  lua_pop(L, 1);
}
