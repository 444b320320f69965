/*
** lua_base_handle.c - the base of the binding: handle objects, their
** buffers, and the list of buffered handles flushed at exit
** (lua_base.h).  The methods users call are in lua_handle.c.
*/

#include <stdlib.h>
#include <string.h>

#include "lua_base.h"


/*
** {======================================================
** Handles
** =======================================================
*/

/*
** A new handle, already marked closed, so that a memory error while the
** OS resource is being acquired leaves it in a consistent state.
*/
Handle *hpb_newhandle (lua_State *L) {
  Handle *h = (Handle *)lua_newuserdatauv(L, sizeof(Handle), 0);
  h->os = HP_NOHANDLE;
  h->wbuf = h->rbuf = NULL;
  h->size = h->wlen = h->rpos = h->rlen = h->rcap = 0;
  h->iruns = NULL;
  h->nruns = 0;
  h->tried = h->late = 0;
  h->timeout = HP_NEVER;
  h->prev = h->next = NULL;
  luaL_getmetatable(L, HANDLE_T);
  lua_setmetatable(L, -2);
  return h;
}


static void freebuf (lua_State *L, unsigned char **b, size_t size) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  if (*b != NULL) f(ud, *b, size, 0);
  *b = NULL;
}


static unsigned char *allocbuf (lua_State *L, size_t size) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  return (unsigned char *)f(ud, NULL, 0, size);
}


/* rbuf resized to cap bytes (its unread input kept at the front). */
static int resizeread (lua_State *L, Handle *h, size_t cap) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  unsigned char *b;
  size_t k = nunread(h);
  if (h->rbuf != NULL && h->rpos > 0) memmove(h->rbuf, h->rbuf + h->rpos, k);
  h->rpos = 0;
  h->rlen = k;
  b = (unsigned char *)f(ud, h->rbuf, h->rbuf != NULL ? h->rcap : 0, cap);
  if (b == NULL) return hp_err_nomem();
  h->rbuf = b;
  h->rcap = cap;
  return 0;
}


/*
** Where a write may stop: how many bytes of the integer that position p
** falls inside lie before p, 0 when p is between two units.  The units
** of a direct write are `whole` bytes from its start (4 for integers, 1
** for bytes); those of h's write buffer (whole == 0) are its integers'
** runs, and single bytes elsewhere.
*/
static size_t begun (const Handle *h, size_t whole, size_t p) {
  size_t i;
  if (whole > 0) return p % whole;
  for (i = 0; i < h->nruns; i++)
    if (p > h->iruns[2 * i] && p < h->iruns[2 * i + 1])
      return (p - h->iruns[2 * i]) % 4;
  return 0;
}


/*
** Write all of buf to os (of handle object h, or NULL), looping over
** short writes; *sent says how much went.  The units that a write may
** not cut are `whole` bytes long, or, with whole == 0, those of h's write
** buffer (begun).  With a deadline each write waits until the handle
** takes hp_room bytes without blocking (HP_ATOMIC, a pipe's PIPE_BUF; on
** Windows a socket's send buffer), and ends between two units, so that
** the write can stop there when the deadline passes (hpb_ready: also
** while the reader keeps up).  Should a short write have cut an integer
** all the same, its rest is still written past the deadline: the stream
** never holds a torn one.
*/
int hpb_writeall (Handle *h, hp_os os, const unsigned char *buf, size_t n,
                  hp_time deadline, size_t whole, size_t *sent) {
  size_t room = deadline != HP_NEVER ? hp_room(os) : 0;
  *sent = 0;
  while (*sent < n) {
    size_t done, k = n - *sent;
    int err;
    if (deadline != HP_NEVER) {
      size_t in = begun(h, whole, *sent);
      err = hpb_ready(h, os, HP_WRITABLE, deadline);
      if (err == hp_err_timeout() && in > 0)
        k = 4 - in;  /* the rest of the integer, and no more */
      else if (err != 0) return err;
      else if (k > room) {
        k = room;
        k -= begun(h, whole, *sent + k);
      }
    }
    err = hp_write(os, buf + *sent, k, &done);
    if (err != 0) return err;
    *sent += done;
  }
  return 0;
}


/* The first sent bytes of the write buffer went out: drop them. */
static void dropsent (Handle *h, size_t sent) {
  size_t i, k = 0;
  memmove(h->wbuf, h->wbuf + sent, h->wlen - sent);
  h->wlen -= sent;
  for (i = 0; i < h->nruns; i++) {
    size_t from = h->iruns[2 * i], to = h->iruns[2 * i + 1];
    if (to <= sent) continue;
    h->iruns[2 * k] = from > sent ? from - sent : 0;  /* sent is between two */
    h->iruns[2 * k + 1] = to - sent;
    k++;
  }
  h->nruns = k;
}


/*
** Send what waits in the write buffer.  On failure the unsent bytes are
** dropped, as the reader is gone or the handle broken: keeping them would
** only resend a partial integer later.  When a deadline passes they stay,
** whole integers, to go first next time.
*/
int hpb_flushbuf (Handle *h, hp_time deadline) {
  int err = 0;
  if (h->wlen > 0) {
    size_t sent;
    err = hpb_writeall(h, h->os, h->wbuf, h->wlen, deadline, 0, &sent);
    if (err == hp_err_timeout()) dropsent(h, sent);
    else h->wlen = 0;
  }
  if (h->wlen == 0) h->nruns = 0;
  return err;
}


int hpb_pushback (lua_State *L, Handle *h, const void *b, size_t k) {
  size_t have = nunread(h);
  if (k == 0) return 0;
  if (h->rpos < k) {  /* no room in front: move what is there up */
    int err;
    if (have + k > h->rcap &&
        (err = resizeread(L, h, have + k < DEFBUF ? DEFBUF : have + k)) != 0)
      return err;
    memmove(h->rbuf + k, h->rbuf + h->rpos, have);
    h->rpos = k;
    h->rlen = k + have;
  }
  h->rpos -= k;
  memcpy(h->rbuf + h->rpos, b, k);
  return 0;
}


int hpb_fill (lua_State *L, Handle *h, hp_time deadline, size_t max,
              int *eof) {
  size_t done, room;
  int err;
  *eof = 0;
  /* a request may wait in our buffer for the reply we now wait for */
  if (h->wlen > 0 && (err = hpb_flushbuf(h, deadline)) != 0) return err;
  /* the wait first: a deadline that has passed grows no buffer */
  if ((err = hpb_ready(h, h->os, HP_READABLE, deadline)) != 0) return err;
  if (h->rlen == h->rcap) {
    if (h->rpos > 0) (void)resizeread(L, h, h->rcap);   /* compact */
    else if ((err = resizeread(L, h, h->rcap < DEFBUF / 16 ? DEFBUF / 16
                                                        : 2 * h->rcap)) != 0)
      return err;
  }
  room = h->rcap - h->rlen;
  err = hp_read(h->os, h->rbuf + h->rlen, room < max ? room : max, &done);
  if (err != 0) return err;
  if (done == 0) *eof = 1;
  h->rlen += done;
  return 0;
}


void hpb_trim (lua_State *L, Handle *h) {
  if (h->rcap > (h->size > DEFBUF ? h->size : DEFBUF) && nunread(h) < h->size)
    (void)resizeread(L, h, h->size > 0 ? h->size : DEFBUF);
  if (h->size == 0 && nunread(h) == 0 && h->rbuf != NULL) {
    freebuf(L, &h->rbuf, h->rcap);
    h->rpos = h->rlen = h->rcap = 0;
  }
}



/*
** {------------------------------------------------------
** Buffered output at exit
**
** Like C stdio, buffered output must survive a plain exit: os.exit(n)
** does not close the Lua state, so no __gc runs.  Handles with a write
** buffer are kept in one process-wide list that an atexit handler
** flushes.  The module stays loaded for that (hp_pinself, when it is
** opened): where the C library runs a library's handlers only at exit,
** it would otherwise call into unmapped code.
** -------------------------------------------------------
*/

static Handle *buffered = NULL;
static int atexit_set = 0;

static void flush_at_exit (void) {
  Handle *h;
  if (!hp_lock_atexit()) return;  /* held by a thread the exit ended */
  for (h = buffered; h != NULL; h = h->next)
    if (h->os != HP_NOHANDLE) (void)hpb_flushbuf(h, HP_NEVER);  /* nobody to tell */
  hp_unlock();
}

static void listhandle (Handle *h) {
  hp_lock();
  if (!atexit_set && atexit(flush_at_exit) == 0)
    atexit_set = 1;
  h->prev = NULL;
  h->next = buffered;
  if (buffered != NULL) buffered->prev = h;
  buffered = h;
  hp_unlock();
}

static void unlisthandle (Handle *h) {
  hp_lock();
  if (h->prev != NULL) h->prev->next = h->next;
  else if (buffered == h) buffered = h->next;
  if (h->next != NULL) h->next->prev = h->prev;
  h->prev = h->next = NULL;
  hp_unlock();
}

void hpb_unbuffer (lua_State *L, Handle *h) {
  if (h->size > 0) unlisthandle(h);
  freebuf(L, &h->wbuf, h->size);
  freebuf(L, &h->rbuf, h->rcap);
  if (h->iruns != NULL) {
    void *ud;
    lua_Alloc f = lua_getallocf(L, &ud);
    f(ud, h->iruns, 2 * IRUNS * sizeof(size_t), 0);
    h->iruns = NULL;
  }
  h->size = h->wlen = h->rpos = h->rlen = h->rcap = h->nruns = 0;
}

int hpb_setbuffer (lua_State *L, Handle *h, size_t size) {
  unsigned char *wb = allocbuf(L, size);
  unsigned char *rb = allocbuf(L, size);
  unsigned char *ir = allocbuf(L, 2 * IRUNS * sizeof(size_t));
  if (wb == NULL || rb == NULL || ir == NULL) {
    freebuf(L, &wb, size);
    freebuf(L, &rb, size);
    freebuf(L, &ir, 2 * IRUNS * sizeof(size_t));
    return hp_err_nomem();
  }
  h->wbuf = wb;
  h->rbuf = rb;
  h->iruns = (size_t *)(void *)ir;
  h->size = h->rcap = size;
  listhandle(h);
  return 0;
}

/* }------------------------------------------------------ */


/*
** The one close, used by close, __gc and __close: flush, free the
** buffers, release the OS handle.  Safe to call any number of times.
*/
int hpb_close (lua_State *L, Handle *h) {
  int err = 0, err2;
  hp_os os = h->os;
  if (os == HP_NOHANDLE) return 0;
  err = hpb_flushbuf(h, HP_NEVER);  /* flush() first bounds this */
  hpb_unbuffer(L, h);
  h->os = HP_NOHANDLE;
  err2 = hp_close(os);
  return err != 0 ? err : err2;
}


Handle *hpb_testhandle (lua_State *L, int i) {
  Handle *h = (Handle *)lua_touserdata(L, i);
  if (h != NULL) {
    if (!lua_getmetatable(L, i)) return NULL;
    if (!lua_rawequal(L, -1, HANDLEMT)) h = NULL;
    lua_pop(L, 1);
  }
  return h;
}


/* The handle at argument i, open (raises if it is closed). */
Handle *hpb_checkhandle (lua_State *L, int i) {
  Handle *h = hpb_testhandle(L, i);
  if (h == NULL) h = (Handle *)luaL_checkudata(L, i, HANDLE_T);  /* raises */
  if (isclosed(h)) luaL_argerror(L, i, "attempt to use a closed handle");
  return h;
}

/* }====================================================== */


void hpb_addfuncs (lua_State *L, const luaL_Reg *l) {
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, l, 1);
}
