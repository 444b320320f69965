/*
** sigpeer - a Lua module for the reliability tests: what the tests need
** to do to their own process that Lua cannot do by itself.
**
**   catch(sig)          count sig in a handler installed WITHOUT SA_RESTART,
**                       so that blocking system calls fail with EINTR
**   count(sig)          how many times that handler ran
**   ignore(sig), default(sig), disposition(sig) -> "default"|"ignore"|"handler"
**   block(sig), unblock(sig), blocked(sig), pending(sig)
**   timer(us)           SIGALRM every us microseconds; timer(0) stops it
**   rawwrite(fd, s)     one plain write(2): bytes written, or nil, msg, errno
**   nfds()              how many descriptors are open in this process
**   fds()               their numbers, as a set (number -> true)
**   cloexec(fd)         whether fd is close-on-exec (nil if not open)
**   dup2(fd, to)        an inheritable copy of fd at number 'to'
**   rawclose(fd)
**   churn(on)           start (true) or stop (false) a thread that keeps
**                       opening and closing inheritable descriptors; stop
**                       returns the number of descriptors it opened
**   children()          child processes of this process, and how many of
**                       them are zombies
**   nofile([n])         the soft limit on descriptors (then set to n)
**   catchx(sig, restart, masksig)
**                       catch(sig) with SA_RESTART when restart is true and
**                       masksig blocked while the handler runs
**   action(sig)         the whole disposition as a string: handler, flags,
**                       mask (to compare before and after)
**   raise(sig, n)       raise(sig) n times: n deliveries to this thread
**   kill(pid, sig)      kill(2) on any pid
**   subreaper(on)       PR_SET_CHILD_SUBREAPER (Linux): orphaned
**                       descendants become this process's children
**   reaped()            reapall, telling how each ended: pid -> "exit N"
**                       or "signal N"
**   const               this system's numbers: const.EPIPE, const.SIGUSR1,
**                       const.SOL_SOCKET, ... (errno and signal numbers
**                       differ between CPUs: MIPS's are not x86's)
**   setenv(name, v)     setenv, or unsetenv when v is nil
**   rawenv(entry)       add entry to environ as it is, '=' or not;
**                       rawenv() puts the environ of before back
**   inthread(code)      run code in a new Lua state on a thread of its
**                       own, and wait for that thread to end; the string
**                       the code returns, or nil, message
**   reap(pid)           waitpid(pid): true once collected, nil if not ours
**
** Signals are given as numbers or names ("PIPE", "ALRM", "USR1", ...).
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#define NSIG_MAX 65

int luaopen_sigpeer (lua_State *L);

static volatile sig_atomic_t counts[NSIG_MAX];

static void counter (int sig) {
  if (sig > 0 && sig < NSIG_MAX) counts[sig]++;
}

static int checksig (lua_State *L, int i) {
  static const struct { const char *name; int sig; } names[] = {
    {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"USR1", SIGUSR1}, {"HUP", SIGHUP},
    {"USR2", SIGUSR2}, {"CHLD", SIGCHLD}, {"TERM", SIGTERM},
    {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"WINCH", SIGWINCH}, {NULL, 0}
  };
  int k;
  if (lua_type(L, i) == LUA_TSTRING) {
    const char *s = lua_tostring(L, i);
    for (k = 0; names[k].name != NULL; k++)
      if (strcmp(s, names[k].name) == 0) return names[k].sig;
    return luaL_argerror(L, i, "unknown signal name");
  }
  k = (int)luaL_checkinteger(L, i);
  luaL_argcheck(L, k > 0 && k < NSIG_MAX, i, "bad signal number");
  return k;
}

static int fail (lua_State *L) {
  int e = errno;
  lua_pushnil(L);
  lua_pushstring(L, strerror(e));
  lua_pushinteger(L, e);
  return 3;
}

static int setaction (lua_State *L, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  /* no SA_RESTART: interrupted calls fail with EINTR */
  if (sigaction(checksig(L, 1), &sa, NULL) != 0) return fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int s_catch (lua_State *L) { return setaction(L, counter); }
static int s_ignore (lua_State *L) { return setaction(L, SIG_IGN); }
static int s_default (lua_State *L) { return setaction(L, SIG_DFL); }

static int s_count (lua_State *L) {
  lua_pushinteger(L, counts[checksig(L, 1)]);
  return 1;
}

static int s_disposition (lua_State *L) {
  struct sigaction sa;
  if (sigaction(checksig(L, 1), NULL, &sa) != 0) return fail(L);
  lua_pushstring(L, sa.sa_handler == SIG_DFL ? "default" :
                    sa.sa_handler == SIG_IGN ? "ignore" : "handler");
  return 1;
}

static int mask (lua_State *L, int how) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, checksig(L, 1));
  errno = pthread_sigmask(how, &s, NULL);
  if (errno != 0) return fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int s_block (lua_State *L) { return mask(L, SIG_BLOCK); }
static int s_unblock (lua_State *L) { return mask(L, SIG_UNBLOCK); }

static int s_blocked (lua_State *L) {
  sigset_t s;
  int sig = checksig(L, 1);
  pthread_sigmask(SIG_BLOCK, NULL, &s);
  lua_pushboolean(L, sigismember(&s, sig));
  return 1;
}

static int s_pending (lua_State *L) {
  sigset_t s;
  int sig = checksig(L, 1);
  sigpending(&s);
  lua_pushboolean(L, sigismember(&s, sig));
  return 1;
}

static int s_timer (lua_State *L) {
  struct itimerval it;
  lua_Integer us = luaL_checkinteger(L, 1);
  luaL_argcheck(L, us >= 0, 1, "negative interval");
  it.it_interval.tv_sec = it.it_value.tv_sec = (time_t)(us / 1000000);
  it.it_interval.tv_usec = it.it_value.tv_usec = (suseconds_t)(us % 1000000);
  if (setitimer(ITIMER_REAL, &it, NULL) != 0) return fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int s_rawwrite (lua_State *L) {
  size_t n;
  int fd = (int)luaL_checkinteger(L, 1);
  const char *s = luaL_checklstring(L, 2, &n);
  ssize_t r = write(fd, s, n);
  if (r < 0) return fail(L);
  lua_pushinteger(L, (lua_Integer)r);
  return 1;
}

static int s_nfds (lua_State *L) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;
  if (d == NULL) return fail(L);
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d)) n++;
  closedir(d);
  lua_pushinteger(L, n);
  return 1;
}

static int s_fds (lua_State *L) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  if (d == NULL) return fail(L);
  lua_newtable(L);
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d)) {
      lua_pushinteger(L, atoi(e->d_name));
      lua_pushboolean(L, 1);
      lua_rawset(L, -3);
    }
  closedir(d);
  return 1;
}

static int s_cloexec (lua_State *L) {
  int flags = fcntl((int)luaL_checkinteger(L, 1), F_GETFD);
  if (flags < 0) return fail(L);
  lua_pushboolean(L, (flags & FD_CLOEXEC) != 0);
  return 1;
}

static int s_dup2 (lua_State *L) {
  int r = dup2((int)luaL_checkinteger(L, 1), (int)luaL_checkinteger(L, 2));
  if (r < 0) return fail(L);
  lua_pushinteger(L, r);
  return 1;
}

static int s_rawclose (lua_State *L) {
  if (close((int)luaL_checkinteger(L, 1)) != 0) return fail(L);
  lua_pushboolean(L, 1);
  return 1;
}


/* The churn thread: inheritable descriptors appear and vanish. */
static pthread_t churner;
static volatile int churning;
static long churned;

static void *churn_main (void *arg) {
  (void)arg;
  while (__atomic_load_n(&churning, __ATOMIC_RELAXED)) {
    int fd = open("/dev/null", O_RDONLY);  /* deliberately not O_CLOEXEC */
    if (fd >= 0) {
      churned++;
      close(fd);
    }
  }
  return NULL;
}

static int s_churn (lua_State *L) {
  int on = lua_toboolean(L, 1);
  if (on && !churning) {
    churned = 0;
    churning = 1;
    errno = pthread_create(&churner, NULL, churn_main, NULL);
    if (errno != 0) {
      churning = 0;
      return fail(L);
    }
    lua_pushboolean(L, 1);
    return 1;
  }
  if (!on && churning) {
    __atomic_store_n(&churning, 0, __ATOMIC_RELAXED);
    pthread_join(churner, NULL);
  }
  lua_pushinteger(L, churned);
  return 1;
}


static int s_children (lua_State *L) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  int total = 0, zombies = 0;
  pid_t me = getpid();
  if (d == NULL) return fail(L);
  while ((e = readdir(d)) != NULL) {
    char path[300], buf[512], state;
    const char *p;
    FILE *f;
    int ppid;
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    if ((f = fopen(path, "r")) == NULL) continue;  /* gone meanwhile */
    p = fgets(buf, sizeof buf, f);
    fclose(f);
    /* pid (comm) state ppid ...; comm may hold spaces and parentheses */
    if (p == NULL || (p = strrchr(buf, ')')) == NULL) continue;
    if (sscanf(p + 1, " %c %d", &state, &ppid) != 2 || ppid != me) continue;
    total++;
    if (state == 'Z') zombies++;
  }
  closedir(d);
  lua_pushinteger(L, total);
  lua_pushinteger(L, zombies);
  return 2;
}


static int s_nofile (lua_State *L) {
  struct rlimit rl;
  lua_Integer old;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return fail(L);
  old = (lua_Integer)rl.rlim_cur;
  if (!lua_isnoneornil(L, 1)) {
    rl.rlim_cur = (rlim_t)luaL_checkinteger(L, 1);
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return fail(L);
  }
  lua_pushinteger(L, old);
  return 1;
}


/* What another library reaping every child would do: waitpid(-1). */
static int s_reapall (lua_State *L) {
  int n = 0, status;
  while (waitpid(-1, &status, WNOHANG) > 0) n++;
  lua_pushinteger(L, n);
  return 1;
}


/* setsockopt(fd, level, name, int value) */
static int s_setsockopt (lua_State *L) {
  int v = (int)luaL_checkinteger(L, 4);
  if (setsockopt((int)luaL_checkinteger(L, 1), (int)luaL_checkinteger(L, 2),
                 (int)luaL_checkinteger(L, 3), &v, sizeof v) != 0)
    return fail(L);
  lua_pushboolean(L, 1);
  return 1;
}


/* Make fd non-blocking, as LuaSocket keeps its sockets. */
static int s_nonblock (lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  int fl = fcntl(fd, F_GETFL);
  if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return fail(L);
  lua_pushboolean(L, 1);
  return 1;
}


static int s_catchx (lua_State *L) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = counter;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, checksig(L, 3));
  sa.sa_flags = lua_toboolean(L, 2) ? SA_RESTART : 0;
  if (sigaction(checksig(L, 1), &sa, NULL) != 0) return fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int s_action (lua_State *L) {
  struct sigaction sa;
  char buf[256];
  unsigned long long bits = 0;
  int i;
  if (sigaction(checksig(L, 1), NULL, &sa) != 0) return fail(L);
  for (i = 1; i < NSIG_MAX; i++)
    if (sigismember(&sa.sa_mask, i) == 1) bits |= 1ULL << (i - 1);
  /* SA_RESTORER (0x04000000) is the C library's own, set on every handler */
  snprintf(buf, sizeof buf, "handler=%s flags=%#x mask=%#llx",
           sa.sa_handler == SIG_DFL ? "default" :
           sa.sa_handler == SIG_IGN ? "ignore" :
           sa.sa_handler == counter ? "sigpeer" : "other",
           (unsigned)sa.sa_flags & ~0x04000000u, bits);
  lua_pushstring(L, buf);
  return 1;
}

static int s_raise (lua_State *L) {
  int sig = checksig(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2), i;
  for (i = 0; i < n; i++)
    if (raise(sig) != 0) return fail(L);
  lua_pushinteger(L, n);
  return 1;
}

static int s_kill (lua_State *L) {
  if (kill((pid_t)luaL_checkinteger(L, 1), checksig(L, 2)) != 0) return fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int s_reaped (lua_State *L) {
  int status;
  pid_t pid;
  lua_newtable(L);
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (WIFSIGNALED(status))
      lua_pushfstring(L, "signal %d", WTERMSIG(status));
    else
      lua_pushfstring(L, "exit %d", WEXITSTATUS(status));
    lua_rawseti(L, -2, (lua_Integer)pid);
  }
  return 1;
}

static int s_subreaper (lua_State *L) {
#if defined(PR_SET_CHILD_SUBREAPER)
  if (prctl(PR_SET_CHILD_SUBREAPER, lua_toboolean(L, 1) ? 1UL : 0UL,
            0UL, 0UL, 0UL) != 0)
    return fail(L);
  lua_pushboolean(L, 1);
  return 1;
#else
  errno = ENOSYS;
  return fail(L);
#endif
}


#if defined(__linux__) && !defined(SO_PASSPIDFD)
#define SO_PASSPIDFD  76   /* Linux 6.5; the same on every Linux ABI */
#endif

/* The numbers the specs compare with, as this system's headers say. */
static void pushconsts (lua_State *L) {
#define C(name)  { #name, name }
  static const struct { const char *name; int value; } consts[] = {
    C(EPERM), C(ENOENT), C(ESRCH), C(EINTR), C(E2BIG), C(EBADF),
    C(ECHILD), C(EAGAIN), C(EACCES), C(ENOTDIR), C(EINVAL), C(EMFILE),
    C(EPIPE), C(ENOTSUP), C(EBADMSG), C(ENOTSOCK), C(ENOSYS), C(ETIMEDOUT),
    C(ECONNRESET),
    C(SIGHUP), C(SIGINT), C(SIGKILL), C(SIGUSR1), C(SIGUSR2), C(SIGPIPE),
    C(SIGALRM), C(SIGTERM), C(SIGCHLD),
    C(SOL_SOCKET),
#if defined(SO_PASSPIDFD)
    C(SO_PASSPIDFD),
#endif
    { NULL, 0 }
  };
#undef C
  int k;
  lua_newtable(L);
  for (k = 0; consts[k].name != NULL; k++) {
    lua_pushinteger(L, consts[k].value);
    lua_setfield(L, -2, consts[k].name);
  }
}


/* setenv(name, value), or unsetenv(name) when value is nil. */
static int s_setenv (lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  int r = lua_isnoneornil(L, 2) ? unsetenv(name)
                                : setenv(name, luaL_checkstring(L, 2), 1);
  if (r != 0) return fail(L);
  lua_pushboolean(L, 1);
  return 1;
}


/*
** rawenv(entry): entry added to environ as it is -- setenv and putenv
** cannot make one without '=', which a program started by execve may
** still find there.  rawenv() puts the environ of before back, and frees
** what rawenv(entry) made (the module may be unloaded before exit).
*/
extern char **environ;
static char **added, **saved;
static int s_rawenv (lua_State *L) {
  size_t n = 0;
  char **e, *copy;
  if (lua_isnoneornil(L, 1)) {
    /* if setenv has replaced environ since, its copy may hold our entry:
       then nothing is freed */
    if (added != NULL && environ == added) {
      environ = saved;
      for (e = added; *e != NULL; e++) n++;
      free(added[n - 1]);
      free(added);
    }
    added = saved = NULL;
    lua_pushboolean(L, 1);
    return 1;
  }
  if (added != NULL) return luaL_error(L, "rawenv: restore first");
  while (environ != NULL && environ[n] != NULL) n++;
  e = malloc((n + 2) * sizeof(char *));
  copy = strdup(luaL_checkstring(L, 1));
  if (e == NULL || copy == NULL) {
    free(e);
    free(copy);
    return luaL_error(L, "out of memory");
  }
  if (n > 0) memcpy(e, environ, n * sizeof(char *));
  e[n] = copy;
  e[n + 1] = NULL;
  saved = environ;
  environ = added = e;
  lua_pushboolean(L, 1);
  return 1;
}


/* What a thread of inthread runs, and what it gives back. */
typedef struct Job {
  const char *code;
  char out[256];
  int ok;
} Job;

static void *runjob (void *arg) {
  Job *j = arg;
  lua_State *L = luaL_newstate();
  const char *s;
  if (L == NULL) return NULL;
  luaL_openlibs(L);
  j->ok = luaL_loadstring(L, j->code) == 0 && lua_pcall(L, 0, 1, 0) == 0;
  s = lua_tostring(L, -1);
  snprintf(j->out, sizeof j->out, "%s", s != NULL ? s : "(no string)");
  lua_close(L);
  return NULL;
}

static int s_inthread (lua_State *L) {
  Job j;
  pthread_t t;
  j.code = luaL_checkstring(L, 1);
  j.ok = 0;
  snprintf(j.out, sizeof j.out, "thread did not run");
  if ((errno = pthread_create(&t, NULL, runjob, &j)) != 0) return fail(L);
  pthread_join(t, NULL);
  if (!j.ok) lua_pushnil(L);
  lua_pushstring(L, j.out);
  return j.ok ? 1 : 2;
}


static int s_reap (lua_State *L) {
  int status;
  pid_t r;
  do r = waitpid((pid_t)luaL_checkinteger(L, 1), &status, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return fail(L);
  lua_pushboolean(L, 1);
  return 1;
}


int luaopen_sigpeer (lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"catch", s_catch}, {"ignore", s_ignore}, {"default", s_default},
    {"count", s_count}, {"disposition", s_disposition},
    {"block", s_block}, {"unblock", s_unblock}, {"blocked", s_blocked},
    {"pending", s_pending}, {"timer", s_timer}, {"rawwrite", s_rawwrite},
    {"nfds", s_nfds}, {"fds", s_fds}, {"cloexec", s_cloexec}, {"dup2", s_dup2},
    {"rawclose", s_rawclose}, {"churn", s_churn}, {"children", s_children},
    {"nofile", s_nofile}, {"reapall", s_reapall}, {"setsockopt", s_setsockopt},
    {"nonblock", s_nonblock}, {"catchx", s_catchx}, {"action", s_action},
    {"raise", s_raise}, {"kill", s_kill}, {"subreaper", s_subreaper},
    {"reaped", s_reaped},
    {"setenv", s_setenv}, {"rawenv", s_rawenv},
    {"inthread", s_inthread}, {"reap", s_reap},
    {NULL, NULL}
  };
  const luaL_Reg *r;
  lua_newtable(L);
  for (r = funcs; r->name != NULL; r++) {
    lua_pushcfunction(L, r->func);
    lua_setfield(L, -2, r->name);
  }
  pushconsts(L);
  lua_setfield(L, -2, "const");
  return 1;
}
