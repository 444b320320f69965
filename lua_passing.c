/*
** lua_passing.c - hpass.send_handle and hpass.recv_handle: handles
** passed to a process that already runs, over a local stream socket.
**
** As in spawn_with_handle, all memory a call needs is taken before its
** handle arguments are read, and getfd() methods run before any handle is
** resolved, so no Lua code can close a handle while it is being sent.
*/

#include "lua_base.h"

#define FDBOX_T     "hpass.fdbox"


/*
** Descriptors received but not yet owned by handle objects.  Should
** making the handles run out of memory, the box becomes garbage and its
** __gc closes the descriptors no handle took, so none leaks.
*/
typedef struct FdBox {
  size_t n;
  hp_os fds[HP_MAXFDS];
} FdBox;

static int box_gc (lua_State *L) {
  FdBox *b = (FdBox *)lua_touserdata(L, 1);
  size_t i;
  for (i = 0; i < b->n; i++)
    if (b->fds[i] != HP_NOHANDLE) (void)hp_close(b->fds[i]);
  b->n = 0;
  return 0;
}

static FdBox *newbox (lua_State *L) {
  FdBox *b = (FdBox *)lua_newuserdatauv(L, sizeof(FdBox), 0);
  b->n = 0;
  if (luaL_newmetatable(L, FDBOX_T)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return b;
}


/* hpass.send_handle(channel, handle [, ...]): true or fail, msg, code */
static int send_handle (lua_State *L) {
  HandleArg *ha;    /* ha[0] the channel, ha[1 .. n] the handles */
  hp_os *fds;
  hp_time dl;
  int n = lua_gettop(L) - 1, i, err;
  luaL_checkany(L, 1);
  luaL_argcheck(L, n >= 1, 2, "handle expected, got no value");
  if (n > HP_MAXFDS)
    luaL_argerror(L, HP_MAXFDS + 2, lua_pushfstring(L,
        "too many handles, at most %d in one message", HP_MAXFDS));
  ha = (HandleArg *)lua_newuserdatauv(L, (size_t)(n + 1) * sizeof(HandleArg), 0);
  fds = (hp_os *)lua_newuserdatauv(L, (size_t)n * sizeof(hp_os), 0);
  for (i = 0; i <= n; i++) {
    ha[i].arg = i + 1;
    ha[i].inarray = 0;
    ha[i].elem = 0;
    ha[i].opt = NULL;
    hpb_handlearg_getfd(L, i + 1, &ha[i]);
  }
  for (i = 0; i <= n; i++) hpb_handlearg_resolve(L, i + 1, &ha[i]);
  /* input read ahead of a handle would never reach the receiver */
  for (i = 1; i <= n; i++)
    if (ha[i].h != NULL) hpb_checkahead(L, &ha[i]);
  /*
  ** Output waiting in the buffers goes first, each handle's within its
  ** own timeout, the channel's last, so that the peer sees bytes and
  ** handles in the order they were written.
  */
  for (i = 1; i <= n; i++)
    if ((err = hpb_flushout(L, &ha[i], hpb_deadline(ha[i].h))) != 0)
      return hpb_ioerror(L, err, NULL);
  dl = hpb_deadline(ha[0].h);
  if ((err = hpb_flushout(L, &ha[0], dl)) != 0) return hpb_ioerror(L, err, NULL);
  for (i = 1; i <= n; i++) hpb_checkahead(L, &ha[i]);
  for (i = 0; i < n; i++) fds[i] = ha[i + 1].os;
  /* a message is one small send: once there is room it does not block */
  if ((err = hpb_ready(ha[0].h, ha[0].os, HP_WRITABLE, dl)) != 0)
    return hpb_ioerror(L, err, NULL);
  return hpb_okresult(L, hp_sendfds(ha[0].os, fds, (size_t)n));
}


/*
** hpass.recv_handle(channel): the handles of one message, as new handle
** objects; fail at a clean end of stream; fail, msg, code on an error.
*/
static int recv_handle (lua_State *L) {
  HandleArg chan;
  FdBox *box;
  size_t n, i;
  hp_time dl;
  int err;
  luaL_checkany(L, 1);
  hpb_noextra(L, 1);
  luaL_checkstack(L, HP_MAXFDS + 4, "too many handles");
  box = newbox(L);
  hpb_tohandlearg(L, 1, 1, &chan);
  /* bytes we read ahead may have carried handles: they are gone */
  if (hpb_hasahead(L, &chan))
    luaL_argerror(L, 1, "channel has unread buffered input");
  /* the deadline covers the whole message (on Windows, several steps) */
  dl = hpb_deadline(chan.h);
  if ((err = hpb_flushout(L, &chan, dl)) != 0) return hpb_ioerror(L, err, NULL);
  err = hp_recvfds(chan.os, box->fds, HP_MAXFDS, &n, dl);
  if (err != 0) return hpb_ioerror(L, err, NULL);
  if (n == 0) {
    luaL_pushfail(L);  /* clean end of stream */
    return 1;
  }
  /*
  ** The objects are made first, while the box still owns the descriptors:
  ** making them may run a finalizer that closes the channel, and then the
  ** call raises as any call does, and the box's __gc closes what came.
  */
  box->n = n;
  for (i = 0; i < n; i++) hpb_newhandle(L);
  hpb_handlearg_check(L, &chan);
  for (i = 0; i < n; i++) {
    Handle *h = (Handle *)lua_touserdata(L, -(int)n + (int)i);
    h->os = box->fds[i];
    box->fds[i] = HP_NOHANDLE;
  }
  box->n = 0;
  return (int)n;
}


static const luaL_Reg funcs[] = {
  {"send_handle", send_handle},
  {"recv_handle", recv_handle},
  {NULL, NULL}
};

int hpb_open_passing (lua_State *L) {
  hpb_addfuncs(L, funcs);
  return 0;
}
