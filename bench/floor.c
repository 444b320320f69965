/*
** floor.c - Lua's own floors, for the benchmarks: what the Lua API and
** the system calls cost for the work hpass does, with nothing of hpass
** around them.  bench/run.sh builds it beside the benchmarks; it is
** never installed.
**
**   buffer(n)          a C buffer of n ints holding 1, 2, ..., n
**   fill(buf [, t [, m]])  t[1..m] = buf[0..m-1], m = #buf by default:
**                      a new table sized as read_ints sizes its own, or
**                      the table t (a reused one)
**   walk(t, buf [, m]) buf[0..m-1] = t[1..m], m = #buf by default, each
**                      element checked to be an integer of 32 bits
**   wrap(fd)           a handle of a minimal binding: fd in a userdata
**   write_int(u, v)    luaL_checkudata, one conversion, and the call hpass
**                      writes an int with (pwritev2 with RWF_NOSIGNAL)
**   read_int(u)        luaL_checkudata and read(2) of 4 bytes: the int, or
**                      nil when the read gave fewer
**   send(u, buf [, m]) the first m ints of buf written to u's descriptor
**                      (write(2) until all went), m = #buf by default
**   recv(u, buf [, m]) up to m ints read into buf (read(2) until m came or
**                      the stream ended): how many came
**   pollset(fds)       a pollfd array for the descriptors in the array fds
**   poll(set)          poll(2) over the set, waiting for the first ready
**                      one: how many are readable
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lua.h"
#include "lauxlib.h"

#if !defined(RWF_NOSIGNAL)
#define RWF_NOSIGNAL 0x00000100
#endif

#define FD_T      "benchfloor.fd"
/* read_ints sizes a table it makes for up to this many integers */
#define PRESIZE   (1 << 20)

int luaopen_benchfloor (lua_State *L);

typedef struct Buffer {
  lua_Integer n;
  int v[1];
} Buffer;

typedef struct Set {
  nfds_t n;
  struct pollfd p[1];
} Set;

static int nosig_ok;  /* the kernel takes RWF_NOSIGNAL (probed at load) */


static int fl_buffer (lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1), i;
  Buffer *b;
  luaL_argcheck(L, n >= 1 && n <= INT_MAX / (int)sizeof(int), 1, "bad size");
  b = (Buffer *)lua_newuserdatauv(L, sizeof(Buffer) + (size_t)n * sizeof(int), 0);
  b->n = n;
  for (i = 0; i < n; i++) b->v[i] = (int)(i + 1);
  return 1;
}


/* The count argument at i: at most the buffer's size. */
static lua_Integer count (lua_State *L, int i, const Buffer *b) {
  lua_Integer m = luaL_optinteger(L, i, b->n);
  luaL_argcheck(L, m >= 0 && m <= b->n, i, "count out of range");
  return m;
}


/* One push and one raw store per integer: the cost of a table fill. */
static int fl_fill (lua_State *L) {
  Buffer *b = (Buffer *)lua_touserdata(L, 1);
  lua_Integer m, k;
  luaL_argcheck(L, b != NULL, 1, "buffer expected");
  m = count(L, 3, b);
  if (lua_isnoneornil(L, 2))
    lua_createtable(L, m < PRESIZE ? (int)m : PRESIZE, 0);
  else {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushvalue(L, 2);
  }
  for (k = 0; k < m; k++) {
    lua_pushinteger(L, b->v[k]);
    lua_rawseti(L, -2, k + 1);
  }
  return 1;
}


/* One raw fetch, one conversion and a range check per integer. */
static int fl_walk (lua_State *L) {
  Buffer *b = (Buffer *)lua_touserdata(L, 2);
  lua_Integer m, k;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argcheck(L, b != NULL, 2, "buffer expected");
  m = count(L, 3, b);
  for (k = 0; k < m; k++) {
    int ok;
    lua_Integer x;
    lua_rawgeti(L, 1, k + 1);
    x = lua_tointegerx(L, -1, &ok);
    if (!ok || x < INT_MIN || x > INT_MAX)
      return luaL_error(L, "element %d: not a 32-bit integer", (int)(k + 1));
    b->v[k] = (int)x;
    lua_pop(L, 1);
  }
  return 0;
}


static int fl_wrap (lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  int *u = (int *)lua_newuserdatauv(L, sizeof(int), 0);
  *u = fd;
  luaL_setmetatable(L, FD_T);
  return 1;
}


/* Where the kernel lacks the flag, hpass blocks SIGPIPE around write. */
static ssize_t write_nosig (int fd, int *v) {
  struct iovec iov;
  sigset_t pipeset, old;
  ssize_t r;
  iov.iov_base = v;
  iov.iov_len = sizeof *v;
  if (nosig_ok) return pwritev2(fd, &iov, 1, -1, RWF_NOSIGNAL);
  sigemptyset(&pipeset);
  sigaddset(&pipeset, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipeset, &old);
  r = write(fd, v, sizeof *v);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return r;
}


static int fl_write_int (lua_State *L) {
  int fd = *(int *)luaL_checkudata(L, 1, FD_T);
  int v = (int)luaL_checkinteger(L, 2);
  ssize_t r = write_nosig(fd, &v);
  if (r != (ssize_t)sizeof v) return luaL_error(L, "write: %s", strerror(errno));
  lua_pushboolean(L, 1);
  return 1;
}


static int fl_read_int (lua_State *L) {
  int fd = *(int *)luaL_checkudata(L, 1, FD_T);
  int v;
  if (read(fd, &v, sizeof v) != (ssize_t)sizeof v) lua_pushnil(L);
  else lua_pushinteger(L, v);
  return 1;
}


/* The minimal binding's bulk transfer: a buffer out, a buffer in. */
static int fl_send (lua_State *L) {
  int fd = *(int *)luaL_checkudata(L, 1, FD_T);
  Buffer *b = (Buffer *)lua_touserdata(L, 2);
  size_t off = 0, len;
  luaL_argcheck(L, b != NULL, 2, "buffer expected");
  len = (size_t)count(L, 3, b) * sizeof(int);
  while (off < len) {
    ssize_t w = write(fd, (char *)b->v + off, len - off);
    if (w < 0 && errno != EINTR) return luaL_error(L, "write: %s", strerror(errno));
    if (w > 0) off += (size_t)w;
  }
  return 0;
}


static int fl_recv (lua_State *L) {
  int fd = *(int *)luaL_checkudata(L, 1, FD_T);
  Buffer *b = (Buffer *)lua_touserdata(L, 2);
  size_t got = 0, len;
  luaL_argcheck(L, b != NULL, 2, "buffer expected");
  len = (size_t)count(L, 3, b) * sizeof(int);
  while (got < len) {
    ssize_t r = read(fd, (char *)b->v + got, len - got);
    if (r < 0 && errno != EINTR) return luaL_error(L, "read: %s", strerror(errno));
    if (r == 0) break;
    if (r > 0) got += (size_t)r;
  }
  lua_pushinteger(L, (lua_Integer)(got / sizeof(int)));
  return 1;
}


static int fl_pollset (lua_State *L) {
  lua_Integer n, i;
  Set *s;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 65536, 1, "1 to 65536 descriptors expected");
  s = (Set *)lua_newuserdatauv(L, sizeof(Set) + (size_t)n * sizeof(struct pollfd), 0);
  s->n = (nfds_t)n;
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    s->p[i].fd = (int)luaL_checkinteger(L, -1);
    s->p[i].events = POLLIN;
    lua_pop(L, 1);
  }
  return 1;
}


/* What a C event loop does per wait: poll, then look at every entry. */
static int fl_poll (lua_State *L) {
  Set *s = (Set *)lua_touserdata(L, 1);
  nfds_t i;
  int r, ready = 0;
  luaL_argcheck(L, s != NULL, 1, "set expected");
  do r = poll(s->p, s->n, -1); while (r < 0 && errno == EINTR);
  if (r < 0) return luaL_error(L, "poll: %s", strerror(errno));
  for (i = 0; i < s->n; i++)
    if (s->p[i].revents & (POLLIN | POLLHUP | POLLERR)) ready++;
  lua_pushinteger(L, ready);
  return 1;
}


/* As hpass_io_posix.c probes: an empty write with the flag. */
static void probe (void) {
  int p[2];
  char c = 0;
  struct iovec iov;
  if (pipe2(p, O_CLOEXEC) != 0) return;
  iov.iov_base = &c;
  iov.iov_len = 0;
  nosig_ok = pwritev2(p[1], &iov, 1, -1, RWF_NOSIGNAL) == 0;
  close(p[0]);
  close(p[1]);
}


static const luaL_Reg funcs[] = {
  {"buffer", fl_buffer},
  {"fill", fl_fill},
  {"walk", fl_walk},
  {"wrap", fl_wrap},
  {"write_int", fl_write_int},
  {"read_int", fl_read_int},
  {"send", fl_send},
  {"recv", fl_recv},
  {"pollset", fl_pollset},
  {"poll", fl_poll},
  {NULL, NULL}
};

int luaopen_benchfloor (lua_State *L) {
  probe();
  luaL_newmetatable(L, FD_T);
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  lua_pushboolean(L, nosig_ok);
  lua_setfield(L, -2, "nosignal");
  return 1;
}
