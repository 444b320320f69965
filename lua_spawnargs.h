/*
** lua_spawnargs.h - what lua_spawn.c (spawn_with_handle, process objects) and
** lua_spawnargs.c (the readers of its arguments) share, and no other
** file.  Names: hps_.
*/
#ifndef LUA_SPAWNARGS_H
#define LUA_SPAWNARGS_H

#include "lua_base.h"

/* Stack slots of the call: its three arguments, then its own objects. */
enum { A_ARGV = 1, A_HANDLES, A_OPTIONS, S_PROC, S_SCRATCH, S_ANCHOR, S_OBJS };

/*
** The options that say who the child is and what it runs, read after
** the others (readextra, lua_spawnargs.c): the stack index of each one's
** value, 0 when absent.  X_JOIN is group given as a number.
*/
enum { X_EXECUTABLE, X_UMASK, X_UID, X_GID, X_GROUPS, X_JOIN, X_N };

/* What the readers gather. */
typedef struct SpawnArgs {
  hp_spawn_req req;
  int nanchor;          /* entries in the anchor table */
  int stdio[3];         /* stack index of each stdio option, 0 if absent */
  int merge;            /* stderr = "stdout": 2>&1 */
  Handle *null[3];      /* the null device opened for a stdio option */
  int listen, names;    /* stack index of listen, listen_names, or 0 */
  int extra[X_N];       /* stack index of each X_ option, or 0 */
  hp_os *handles;       /* room for req.handles, filled once resolved */
} SpawnArgs;


/*
** Read and check every argument of the call (argv, the options, the
** handles), making the request in s; then every handle as a HandleArg,
** in *ha: (*ha)[0 .. nlisten-1] the listen option's, (*ha)[nlisten ..
** *nh-1] the handles, then the three standard streams (os HP_NOHANDLE
** when not redirected).  The only Lua code it runs is getfd(), before
** any handle is resolved.  Returns 0, or the OS error of opening a
** standard stream by name (s->req.failed says which).
*/
HP_INTERNAL int hps_read (lua_State *L, SpawnArgs *s, HandleArg **ha,
                          size_t *nh);

/* Close what hps_read opened for the call (the null device). */
HP_INTERNAL void hps_closenames (SpawnArgs *s);

/* What a failed start is blamed on, for the message (nh as hps_read's). */
HP_INTERNAL const char *hps_culprit (lua_State *L, const SpawnArgs *s,
                                     size_t nh);

#endif
