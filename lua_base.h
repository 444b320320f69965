/*
** lua_base.h - the base of the Lua binding: what its files share.
**
** The binding has three floors.  lua_hpass.c, the entry point, makes
** the module and calls each concern to register its functions.  The
** concerns -- lua_handle.c (handle objects), lua_ints.c (the integer
** protocol), lua_bytes.c (read, write, lines), lua_spawn.c (process
** objects and spawn_with_handle, its arguments read by lua_spawnargs.c),
** lua_capture.c (hpass.capture's pump), lua_select.c, lua_passing.c
** (send_handle, recv_handle), lua_signal.c (hpass.signals) and
** lua_listen.c (hpass.listen_fds) -- call only down: to this base and
** to the OS interface, hpass_sys.h, never to each other.  The base is
** declared here and lives in lua_base_compat.c (Lua versions, argument
** errors), lua_base_result.c (results, scratch memory, deadlines, kinds
** of objects), lua_base_handle.c (handle objects, their buffers, the
** exit list) and lua_base_arg.c (handle arguments, the transfers
** through them).  Names: hpb_ for the base's functions and the
** concerns' open functions, hpc_ for the replacements of lauxlib's
** checks (below).
**
** One rule runs through all of them: a call reads each of its arguments
** once, without metamethods, into C state whose Lua objects stay anchored
** until the call returns; Lua code that the call runs (a getfd() method,
** a finalizer started by an allocation) can change the arguments, never
** what the call is working with.
*/
#ifndef LUA_BASE_H
#define LUA_BASE_H

#include <stdio.h>

#include "lua.h"
#include "lauxlib.h"

#include "hpass_sys.h"

#define HANDLE_T    "hpass.handle"
#define PROCESS_T   "hpass.process"

/* The largest integer a double holds exactly (2^53). */
#define MAXEXACT    9007199254740992.0

/*
** Whether the float d is a whole number in [lo, 2^53], so that a cast to
** an integer type is defined and exact (false for NaN and +inf).
*/
#define iswhole(d,lo)  ((d) >= (lo) && (d) <= MAXEXACT && (d) == floor(d))


/*
** {======================================================
** Compatibility with Lua 5.1, 5.2, 5.3 and LuaJIT
** =======================================================
*/

#if LUA_VERSION_NUM < 502

#define lua_rawlen(L,i)       lua_objlen(L, (i))
#if !defined(LUA_FILEHANDLE)
#define LUA_FILEHANDLE        "FILE*"   /* lualib.h in 5.1 and LuaJIT */
#endif
/*
** LuaJIT 2.1 has these two, Lua 5.1 does not.  The shims serve both: a
** module built with either's headers is loaded by the other (they share
** lib/lua/5.1), so it must need nothing beyond the Lua 5.1 API.
*/
#define luaL_setfuncs       hpc_setfuncs
/* 5.1's buffers give LUAL_BUFFERSIZE bytes at a time (see BUFSTEP) */
#define luaL_prepbuffsize(B,sz)   luaL_prepbuffer(B)
#define BUFSTEP             LUAL_BUFFERSIZE
#define luaL_testudata      hpc_testudata
HP_INTERNAL void hpc_setfuncs (lua_State *L, const luaL_Reg *l, int nup);
HP_INTERNAL void *hpc_testudata (lua_State *L, int i, const char *tname);

#endif

#if LUA_VERSION_NUM >= 502
#define BUFSTEP             65536  /* bytes asked of a luaL_Buffer at once */
#endif

#if LUA_VERSION_NUM < 503
#define lua_isinteger(L,i)    0   /* all numbers are floats: checked apart */
/*
** luaL_checkinteger casts any number there, and casting NaN, inf or a
** value out of range is undefined behaviour in C (hpc_checkinteger, below,
** refuses them); lua_rawgeti and lua_rawseti take an int, which a count
** beyond 2^31 would wrap.
*/
HP_INTERNAL void hpc_rawgeti (lua_State *L, int t, lua_Integer k);
HP_INTERNAL void hpc_rawseti (lua_State *L, int t, lua_Integer k);
#define rawgeti(L,t,k)        hpc_rawgeti(L, (t), (k))
#define rawseti(L,t,k)        hpc_rawseti(L, (t), (k))
#else
#define rawgeti(L,t,k)        lua_rawgeti(L, (t), (k))
#define rawseti(L,t,k)        lua_rawseti(L, (t), (k))
#endif

#if LUA_VERSION_NUM < 504
#define lua_newuserdatauv(L,s,n)  lua_newuserdata(L, (s))
#define luaL_pushfail(L)          lua_pushnil(L)
#endif

/* }====================================================== */


/*
** {======================================================
** Argument errors
** =======================================================
**
** lauxlib names the function of a "bad argument" error after the code
** that called it, and when there is none (under pcall) after a field of
** package.loaded that holds it: 'hpass.core.select' or 'hpass.select',
** whichever the traversal meets first, and '?' before 5.3.  Every
** function of the binding is registered under its public name, and
** these replacements of lauxlib's checks always use it ('select'), on
** every version.  The macros below send every check of the binding
** through them.
*/

HP_INTERNAL int hpc_argerror (lua_State *L, int arg, const char *extramsg);
HP_INTERNAL int hpc_typeerror (lua_State *L, int arg, const char *tname);
HP_INTERNAL void hpc_checktype (lua_State *L, int arg, int t);
HP_INTERNAL void hpc_checkany (lua_State *L, int arg);
HP_INTERNAL void *hpc_checkudata (lua_State *L, int arg, const char *tname);
HP_INTERNAL lua_Number hpc_checknumber (lua_State *L, int arg);
HP_INTERNAL lua_Integer hpc_checkinteger (lua_State *L, int arg);
HP_INTERNAL lua_Integer hpc_optinteger (lua_State *L, int arg,
                                        lua_Integer def);
HP_INTERNAL const char *hpc_checklstring (lua_State *L, int arg, size_t *l);
HP_INTERNAL const char *hpc_optlstring (lua_State *L, int arg,
                                        const char *def, size_t *l);
HP_INTERNAL int hpc_checkoption (lua_State *L, int arg, const char *def,
                                 const char *const lst[]);

/* The registry's table name, pushed (made when missing). */
HP_INTERNAL void hpb_regtable (lua_State *L, const char *name);

/* The public name of each function (table function -> name) in the registry. */
HP_INTERNAL void hpb_setnames (lua_State *L, int t);

#undef luaL_argerror
#undef luaL_typeerror
#undef luaL_checktype
#undef luaL_checkany
#undef luaL_checkudata
#undef luaL_checknumber
#undef luaL_checkinteger
#undef luaL_optinteger
#undef luaL_checklstring
#undef luaL_optlstring
#undef luaL_checkoption
#define luaL_argerror       hpc_argerror
#define luaL_typeerror      hpc_typeerror
#define luaL_checktype      hpc_checktype
#define luaL_checkany       hpc_checkany
#define luaL_checkudata     hpc_checkudata
#define luaL_checknumber    hpc_checknumber
#define luaL_checkinteger   hpc_checkinteger
#define luaL_optinteger     hpc_optinteger
#define luaL_checklstring   hpc_checklstring
#define luaL_optlstring     hpc_optlstring
#define luaL_checkoption    hpc_checkoption

/* }====================================================== */


/*
** {======================================================
** Results and scratch memory
** =======================================================
*/

/* fail, "[what: ]message", code */
HP_INTERNAL int hpb_oserror (lua_State *L, int code, const char *what);
/* true, or fail, message, code */
HP_INTERNAL int hpb_okresult (lua_State *L, int code);
/* Raises "bad argument #arg (no value expected)" past n arguments. */
HP_INTERNAL void hpb_noextra (lua_State *L, int n);
/*
** Raises Lua's memory error for memory outside the collector (size bytes
** the raw allocator refused): status LUA_ERRMEM where memory is short.
*/
HP_INTERNAL int hpb_nomem (lua_State *L, size_t size);

/*
** Scratch memory for the OS layer, pushed as a userdata.  Its blocks come
** from Lua's allocator function, not from the collector, so an OS call
** that allocates runs no finalizer; the userdata's __gc frees what an
** error left, and hpb_freescratch frees early.
*/
typedef struct Scratch Scratch;
HP_INTERNAL Scratch *hpb_newscratch (lua_State *L);
HP_INTERNAL void *hpb_scratchalloc (void *ud, size_t size);
HP_INTERNAL void hpb_freescratch (Scratch *s);
/* A metatable named tname with __gc gc, in the registry. */
HP_INTERNAL void hpb_gcmetatable (lua_State *L, const char *tname,
                                  lua_CFunction gc);
/* The metatable of scratch memory, made once when the module loads. */
HP_INTERNAL void hpb_open_scratch (lua_State *L);

/*
** Objects of a concern's own that other calls must know (hpass.type,
** select) without calling that concern: the concern gives its metatable
** a Kind (hpb_setkind, the metatable on top), and the others ask
** hpb_kindof for the Kind of a userdata's metatable (NULL: none).
*/
typedef struct Kind {
  const char *name;       /* what hpass.type says: "process", "signals" */
  /* whether the object at i is closed (NULL: it never is) */
  int (*closed) (lua_State *L, int i);
  /*
  ** For select (NULL: waited on as a handle, through getfd): whether
  ** the object at i has ended, and if not a handle that becomes readable
  ** when it does (HP_NOHANDLE where there is none: then select polls).
  */
  void (*ready) (lua_State *L, int i, int *ended, hp_os *fd);
} Kind;
HP_INTERNAL void hpb_setkind (lua_State *L, Kind *k);
HP_INTERNAL const Kind *hpb_kindof (lua_State *L, int i);

/* }====================================================== */


/*
** {======================================================
** Handles and what the calls accept as one
** =======================================================
*/

typedef struct Handle {
  hp_os os;              /* HP_NOHANDLE when closed */
  unsigned char *wbuf;   /* output waiting to be written, or NULL */
  unsigned char *rbuf;   /* input taken from the OS, not yet read, or NULL */
  size_t size;           /* buffer size in "full" mode; 0 = unbuffered */
  size_t wlen;           /* bytes in wbuf (which holds size) */
  size_t rpos, rlen;     /* unread input is rbuf[rpos .. rlen) */
  size_t rcap;           /* what rbuf holds: size, or more for a long line */
  size_t *iruns;         /* where wbuf holds integers (see IRUNS), or NULL */
  size_t nruns;          /* runs of integers in iruns */
  int tried;             /* HP_READABLE/HP_WRITABLE: the call running on
                            this handle has looked before that transfer */
  int late;              /* transfers that call made past its deadline */
  hp_time timeout;       /* ms a blocking call may take, or HP_NEVER */
  struct Handle *prev, *next;  /* in the exit list while buffered */
} Handle;

/*
** The write buffer of a buffered handle mixes bytes (from write) and
** integers (from write_int), and a flush that runs out of time must stop
** between two integers, never inside one.  So the buffer keeps where its
** integers are: run k is wbuf[iruns[2k] .. iruns[2k+1]), integers back to
** back from its start.  IRUNS runs at most: an integer that would start
** one more is queued after a flush, as when the buffer is full.
*/
#define IRUNS       ((size_t)32)

/* Default size of the buffer of a handle in "full" mode. */
#define DEFBUF      65536

#define isclosed(h)   ((h)->os == HP_NOHANDLE)
#define nunread(h)    ((h)->rlen - (h)->rpos)   /* bytes held unread */

/*
** Input in front of what h holds unread: a cut-short read gives its
** bytes back this way, so that the next read sees them first.  The
** buffer grows as needed, outside the collector; 0 or hp's ENOMEM.
*/
HP_INTERNAL int hpb_pushback (lua_State *L, Handle *h, const void *b, size_t k);

/*
** Read more input into h's buffer, after what it holds (growing it when
** full), at most max bytes; *eof is set at the end of the stream.  0 or
** an error code.
*/
HP_INTERNAL int hpb_fill (lua_State *L, Handle *h, hp_time deadline,
                          size_t max, int *eof);

/* Give back buffer memory a long read took, once it is consumed. */
HP_INTERNAL void hpb_trim (lua_State *L, Handle *h);



/*
** A deadline bounds a whole call, however its peer behaves.  A call waits
** only until its deadline.  Once the deadline has passed it starts no
** further write, and a further read only on a handle that is readable at
** once, at most LATE of them: input already there is still taken (the
** end of a stream too, which takes a read of its own), while a peer that
** floods or drains steadily cannot keep the call going.  The first read
** and the first write of a call are tried all the same, so that a timeout
** of 0 does what can be done at once.
**
** hpb_deadline is the deadline of a call on handle h (NULL: none) that
** starts now; it begins the call's count of tries.  hpb_ready waits
** until os (of handle object h, or NULL for the other handle forms, which
** have no deadline) is ready for events before a transfer, or returns
** hp_err_timeout() as above.  With no deadline it returns 0 at once: the
** transfer itself may block.
*/
#define LATE  8
HP_INTERNAL hp_time hpb_deadline (Handle *h);
HP_INTERNAL int hpb_ready (Handle *h, hp_os os, int events, hp_time dl);

/* fail, "timeout", code for a deadline that passed, else hpb_oserror */
HP_INTERNAL int hpb_ioerror (lua_State *L, int code, const char *what);

/*
** A timeout as milliseconds, from the seconds at argument arg: nil gives
** HP_NEVER, a negative, NaN or non-number value raises.
*/
HP_INTERNAL hp_time hpb_opttimeout (lua_State *L, int arg);

/*
** settimeout and timeout of an object whose timeout is *timeout / is
** timeout: the one argument read and checked, the result pushed.
*/
HP_INTERNAL int hpb_settimeout (lua_State *L, hp_time *timeout);
HP_INTERNAL int hpb_pushtimeout (lua_State *L, hp_time timeout);

/* The one close of a handle (close, __gc, __close): 0 or an error code. */
HP_INTERNAL int hpb_close (lua_State *L, Handle *h);

/* A new handle object, pushed, already marked closed. */
HP_INTERNAL Handle *hpb_newhandle (lua_State *L);

/*
** Every function of the module has the handle metatable as upvalue 1,
** so telling a handle apart costs one comparison instead of
** luaL_testudata's registry lookup by name (a third of a write_int
** otherwise).  hpb_testhandle: the handle at i, or NULL; hpb_checkhandle:
** the handle at i, open, or it raises.
*/
#define HANDLEMT    lua_upvalueindex(1)

/*
** Adds the functions of l to the module table on top of the stack, the
** handle metatable below it as their upvalue 1 (how each concern
** registers its functions).
*/
HP_INTERNAL void hpb_addfuncs (lua_State *L, const luaL_Reg *l);
HP_INTERNAL Handle *hpb_testhandle (lua_State *L, int i);
HP_INTERNAL Handle *hpb_checkhandle (lua_State *L, int i);

/*
** Write all of buf to os (of handle object h, or NULL), looping over
** short writes and never cutting a unit of `whole` bytes (0: the units
** of h's write buffer) when the deadline passes; *sent says how much
** went.  hpb_flushbuf sends what waits in h's write buffer.
*/
HP_INTERNAL int hpb_writeall (Handle *h, hp_os os, const unsigned char *buf,
                              size_t n, hp_time deadline, size_t whole,
                              size_t *sent);
HP_INTERNAL int hpb_flushbuf (Handle *h, hp_time deadline);

/*
** hpb_setbuffer gives an unbuffered h buffers of size bytes and puts it
** in the list flushed at exit (0, or hp's ENOMEM); hpb_unbuffer takes
** them back.
*/
HP_INTERNAL int hpb_setbuffer (lua_State *L, Handle *h, size_t size);
HP_INTERNAL void hpb_unbuffer (lua_State *L, Handle *h);

/*
** A handle argument, in any accepted form: an hpass handle (h), a Lua
** file (f), a descriptor number, or an object with a getfd() method.
** arg, elem and opt say where it came from, for error messages: argument
** arg, element elem of it (when inarray), or the option named opt.
*/
typedef struct HandleArg {
  hp_os os;
  Handle *h;
  FILE *f;
  void *file;           /* f's Lua file, anchored by the caller */
  int getfd;            /* os came from getfd() */
  int arg;
  int inarray;
  lua_Integer elem;
  const char *opt;
} HandleArg;

/*
** Reading a handle argument takes two steps, so that a call with several can run
** all the Lua code first: hpb_handlearg_getfd calls getfd() where the object
** has one (the only Lua code an argument runs), hpb_handlearg_resolve then reads
** everything else without running Lua code or allocating.  Both raise
** for a value that is no handle or is closed.
*/
HP_INTERNAL void hpb_handlearg_getfd (lua_State *L, int i, HandleArg *ha);
HP_INTERNAL void hpb_handlearg_resolve (lua_State *L, int i, HandleArg *ha);
HP_INTERNAL void hpb_tohandlearg (lua_State *L, int i, int arg, HandleArg *ha);

/*
** Lua code may run between resolving a handle argument and using it: any
** allocation through the collector can run a finalizer, which may close
** the handle or file (freeing its buffers, or its FILE).  So every use
** of a resolved HandleArg -- hpb_send, hpb_recv, hpb_flushout,
** hpb_checkahead, hpb_hasahead -- first calls hpb_handlearg_check, which
** raises "handle (file) was closed during the call" and refreshes ha->os.
** Numbers and getfd() objects are plain numbers: nothing to check.
*/
HP_INTERNAL void hpb_handlearg_check (lua_State *L, HandleArg *ha);

/*
** A number as a descriptor: whole and not negative, else it raises
** (what: the message for a fraction); the OS layer refuses numbers that
** are no open handle.
*/
HP_INTERNAL hp_os hpb_checkdescriptor (lua_State *L, int i,
                                       const HandleArg *ha, const char *what);

/* A Lua file's buffered output streamed out before writing around it. */
HP_INTERNAL int hpb_prepwrite (lua_State *L, HandleArg *ha);

/* Raises "bad argument #ha->arg (element k: msg)" or its option form. */
HP_INTERNAL int hpb_handleargerror (lua_State *L, const HandleArg *ha,
                                    const char *msg);

/*
** Before a handle leaves this process's hands (passed to a child or to
** another process), its buffered output is written out (hpb_flushout
** returns 0 or an error code), and input read ahead of it, which the
** other side would never see, is refused (hpb_checkahead raises).  Flush
** first: flushing a Lua file on a seekable file gives its read-ahead back
** to the file.  dl is the flush's deadline (that of a call on ha->h).
*/
HP_INTERNAL void hpb_checkahead (lua_State *L, HandleArg *ha);
HP_INTERNAL int hpb_flushout (lua_State *L, HandleArg *ha, hp_time dl);

/* Whether input was read ahead of ha's handle, in its buffer or its file's. */
HP_INTERNAL int hpb_hasahead (lua_State *L, HandleArg *ha);

/*
** Write n bytes through ha: into a buffered handle's buffer, else to the
** OS.  whole is the unit a timeout must not tear (4 for integers, 1 for
** bytes); *sent says how many went (or were buffered).
*/
HP_INTERNAL int hpb_send (lua_State *L, HandleArg *ha, const unsigned char *b,
                          size_t n, hp_time deadline, size_t whole,
                          size_t *sent);

/* Read exactly n bytes unless the stream ends: *got says how many. */
HP_INTERNAL int hpb_recv (lua_State *L, HandleArg *ha, unsigned char *b,
                          size_t n, size_t *got, hp_time deadline);

/* Whether the object at i is one handle (not a table of them). */
HP_INTERNAL int hpb_issingle (lua_State *L, int i);

/* }====================================================== */

/*
** {======================================================
** The concerns, registered by lua_hpass.c
** =======================================================
**
** Each adds its functions to the module table on top of the stack, the
** handle metatable below it (their upvalue 1), and returns 0.
*/

HP_INTERNAL int hpb_open_handle (lua_State *L);
HP_INTERNAL int hpb_open_ints (lua_State *L);
HP_INTERNAL int hpb_open_bytes (lua_State *L);
HP_INTERNAL int hpb_open_passing (lua_State *L);
HP_INTERNAL int hpb_open_select (lua_State *L);
HP_INTERNAL int hpb_open_spawn (lua_State *L);
HP_INTERNAL int hpb_open_capture (lua_State *L);
HP_INTERNAL int hpb_open_signal (lua_State *L);
HP_INTERNAL int hpb_open_listen (lua_State *L);

/* }====================================================== */

#endif
