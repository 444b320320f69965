/*
** lua_spawn.c - process objects and hpass.spawn_with_handle.
**
** spawn_with_handle reads its arguments with the readers of
** lua_spawnargs.c, each reading its part once and without metamethods,
** into C state whose Lua objects are anchored on the stack or in tables
** of the call's own.  The only Lua code the call runs is the getfd()
** methods of socket-like handles, all of them before any handle is
** resolved; after that nothing allocates through the collector until the
** child has started, so no finalizer can close or drop a handle the call
** is passing.
*/

#include <limits.h>
#include <math.h>
#include <string.h>

#include "lua_spawnargs.h"

#define ORPHANS     "hpass.orphans"   /* registry: pid -> true */
#define RUNNING     "hpass.running"   /* registry: process -> true, weak keys */
#define REAPER      "hpass.reaper"    /* registry: a Reaper */
#define PIPES       "hpass.pipes"     /* registry: process -> its pipes */

/* What the calls on a process object say of its state. */
#define MSG_ENDED   "process has already ended"
#define MSG_LOST    "process status was collected elsewhere"
#define MSG_NEVER   "process was never started"


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
  hp_proc proc;
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
  p->proc.pid = -1;
  p->proc.sys = NULL;
  p->proc.group = NULL;
  p->proc.flags = 0;
  p->proc.pgid = 0;
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
  err = hp_wait(&p->proc, block, &done, &p->how, &p->code);
  if (err != 0) {
    p->state = P_LOST;
    p->err = err;
    (void)hp_release(&p->proc);  /* nothing left to collect */
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
  err = hp_procfd(&p->proc, &p->waitfd);
  if (err != 0) {
    p->waitfd = HP_NOHANDLE;
    p->nowaitfd = err;
  }
  return err;
}


/*
** Wait until the child has ended or the deadline passes (then it is still
** P_RUNNING).  With a waitfd this sleeps in poll; without one it polls
** with exponential back-off, 1 ms doubling up to WAITPAUSE, as Python's
** wait(timeout) did before pidfds: no busy waiting either way.
*/
#define WAITPAUSE   64   /* ms: the longest pause between two polls */

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
    hp_time now = hp_now(), wake = now + hp_backoff(&pause, WAITPAUSE);
    if (now >= deadline) return;
    if (wake > deadline) wake = deadline;
    (void)hp_poll(NULL, 0, wake, &n, NULL, NULL);
    (void)collect(p, 0);
    if (p->state != P_RUNNING) return;
  }
}


/* The Kind's ready, for select: see lua_base.h. */
static void procready (lua_State *L, int i, int *ended, hp_os *fd) {
  Process *p = checkproc(L, i);
  if (p->state == P_NONE) luaL_error(L, MSG_NEVER);
  (void)collect(p, 0);
  *ended = p->state != P_RUNNING;
  *fd = (!*ended && getwaitfd(p) == 0) ? p->waitfd : HP_NOHANDLE;
}

static Kind process_kind = {"process", NULL, procready};


/* MSG_ENDED, with ESRCH: what is left to say of a collected child */
static int pushended (lua_State *L) {
  luaL_pushfail(L);
  lua_pushliteral(L, MSG_ENDED);
  lua_pushinteger(L, hp_err_srch());
  return 3;
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
      return hpb_oserror(L, p->err, MSG_LOST);
    default:
      return luaL_error(L, MSG_NEVER);
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
  waitfor(p, hp_after(ms));
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
  if (p->state != P_RUNNING && p->waitfd == HP_NOHANDLE)
    return pushended(L);
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


/*
** The group is signalled first, then the leader collected if it has
** ended: a leader that has ended but is not collected still holds its
** pid, so the group's id is still the group's (POSIX), and its members,
** which may hold the pipes, are reached.  A leader collected before
** (wait, poll, an earlier kill) ends that on POSIX: the id may be reused.
*/
static int killgroup (lua_State *L, Process *p, int sig) {
  int collected = p->state != P_RUNNING;
  int err = hp_killgroup(&p->proc, sig, collected);
  (void)collect(p, 0);
  unlist(L, p, 1);
  if (err == 0) return hpb_okresult(L, 0);
  if (p->state == P_LOST)
    return hpb_oserror(L, p->err, MSG_LOST);
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
  if (p->state == P_NONE) return luaL_error(L, MSG_NEVER);
  if (group) return killgroup(L, p, sig);
  /*
  ** A child that has ended is collected first: once collected, its pid
  ** may belong to someone else, so it is never signalled.
  */
  (void)collect(p, 0);
  unlist(L, p, 1);
  switch (p->state) {
    case P_RUNNING:
      return hpb_okresult(L, hp_kill(&p->proc, sig));
    case P_LOST:
      return hpb_oserror(L, p->err, MSG_LOST);
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
static lua_Integer pollentries (lua_State *L, const char *name,
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
  (void)pollentries(L, ORPHANS, orphan_ended);
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
    left = pollentries(L, RUNNING, running_ended);
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
    if (hp_release(&p->proc)) {
      lua_getfield(L, LUA_REGISTRYINDEX, ORPHANS);
      if (lua_istable(L, -1)) {
        lua_pushnumber(L, (lua_Number)p->proc.pid);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
      }
      lua_pop(L, 1);
    }
    p->state = P_NONE;
  }
  hp_endgroup(&p->proc);
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
      lua_pushfstring(L, PROCESS_T " (%d, %s %d)", (int)p->proc.pid,
                      p->how == HP_EXITED ? "exit" : "signal", (int)p->code);
      break;
    case P_RUNNING:
      lua_pushfstring(L, PROCESS_T " (%d)", (int)p->proc.pid);
      break;
    case P_LOST:
      lua_pushfstring(L, PROCESS_T " (%d, lost)", (int)p->proc.pid);
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
    else lua_pushinteger(L, (lua_Integer)p->proc.pid);
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
** spawn_with_handle
** =======================================================
*/

/*
** Before the child starts: input read ahead would never reach it, so it
** is refused before any flush; then what waits in buffers must reach
** the pipe.  0, or the number of results pushed for a failed flush.
*/
static int handover (lua_State *L, SpawnArgs *s, HandleArg *ha, size_t nh) {
  size_t i;
  int err;
  for (i = 0; i < nh + 3; i++)
    if (ha[i].h != NULL) hpb_checkahead(L, &ha[i]);
  for (i = 0; i < nh + 3; i++) {
    if ((err = hpb_flushout(L, &ha[i], hpb_deadline(ha[i].h))) != 0) {
      s->req.failed = i < nh ? HP_FAIL_HANDLE : HP_FAIL_STDIO;
      s->req.failed_index = i < nh ? i : i - nh;
      if (err == hp_err_timeout())  /* as settimeout promises */
        return hpb_ioerror(L, err, NULL);
      return hpb_oserror(L, err, hps_culprit(L, s, nh));
    }
  }
  for (i = 0; i < nh + 3; i++) hpb_checkahead(L, &ha[i]);
  return 0;
}


/*
** The OS handles of the request, from the resolved arguments; stderr
** "stdout" (2>&1) goes where stdout goes, redirected or inherited.  0 or
** an error code.
*/
static int fillreq (SpawnArgs *s, const HandleArg *ha, size_t nh) {
  size_t i;
  int err;
  for (i = 0; i < nh; i++) s->handles[i] = ha[i].os;
  for (i = 0; i < 3; i++) s->req.stdio[i] = ha[nh + i].os;
  s->req.handles = s->handles;
  s->req.nhandles = nh;
  if (s->merge) {
    s->req.stdio[2] = s->req.stdio[1];
    if (s->req.stdio[2] == HP_NOHANDLE &&
        (err = hp_stdio(1, &s->req.stdio[2])) != 0) {
      s->req.failed = HP_FAIL_STDIO;
      s->req.failed_index = 2;
      return err;
    }
  }
  return 0;
}


/* The child has started: its object runs, and is listed for the reapers. */
static void started (lua_State *L, Process *p, const SpawnArgs *s) {
  Reaper *r = getreaper(L);
  p->state = P_RUNNING;
  p->group = (s->req.flags & (HP_SPAWN_GROUP | HP_SPAWN_SESSION |
                               HP_SPAWN_JOIN)) != 0;
  if (r != NULL) r->live++;
  p->listed = 1;
  lua_getfield(L, LUA_REGISTRYINDEX, RUNNING);
  lua_pushvalue(L, S_PROC);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}


/*
** hpass.spawn_with_handle(argv, handle [, options])
** The child inherits exactly the given handles, and finds their numbers
** (as it sees them) appended to its command line.
*/
static int spawn_with_handle (lua_State *L) {
  SpawnArgs s;
  Process *proc;
  Scratch *scratch;
  HandleArg *ha;
  size_t nh = 0, i;
  int err, n;
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
  if ((err = hps_read(L, &s, &ha, &nh)) != 0)
    return hpb_oserror(L, err, hps_culprit(L, &s, 0));
  if ((n = handover(L, &s, ha, nh)) != 0) return n;
  if ((err = fillreq(&s, ha, nh)) != 0)
    return hpb_oserror(L, err, hps_culprit(L, &s, nh));
  err = hp_spawn(&s.req, &proc->proc, hpb_scratchalloc, scratch);
  hpb_freescratch(scratch);
  hps_closenames(&s);
  if (err != 0) return hpb_oserror(L, err, hps_culprit(L, &s, nh));
  started(L, proc, &s);
  lua_pushvalue(L, S_PROC);
  return 1;
}

/* }====================================================== */


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


/* The registry's table name, with weak keys, pushed (made when missing). */
static void weaktable (lua_State *L, const char *name) {
  lua_getfield(L, LUA_REGISTRYINDEX, name);
  if (lua_istable(L, -1)) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_newtable(L);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, name);
}


static const luaL_Reg funcs[] = {
  {"spawn_with_handle", spawn_with_handle},
  {NULL, NULL}
};

/*
** spawn_with_handle and environ; the process metatable and the registry
** tables reaping uses.
*/
int hpb_open_spawn (lua_State *L) {
  hpb_addfuncs(L, funcs);
  luaL_newmetatable(L, PROCESS_T);
  luaL_setfuncs(L, process_meta, 0);
  hpb_setkind(L, &process_kind);
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
  weaktable(L, RUNNING);
  lua_pop(L, 1);
  /*
  ** pipes: a process's stdin, stdout and stderr (a table of handles),
  ** weak keys, filled by the Lua layer (spawn_with_handle's "pipe")
  */
  weaktable(L, PIPES);
  lua_setfield(L, -2, "_pipes");
  return 0;
}
