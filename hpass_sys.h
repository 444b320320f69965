/*
** hpass_sys.h - the internal OS interface of hpass.
**
** The Lua binding (lua_*.c) talks to the operating system only through
** the functions declared here.  There is one implementation per platform:
** hpass_io_posix.c, hpass_spawn_posix.c, hpass_poll_posix.c and
** hpass_signal_posix.c; hpass_io_win32.c, hpass_send_win32.c,
** hpass_poll_win32.c and hpass_signal_win32.c.  Each of them compiles to
** nothing on the other platform, so a build that lists every file works.
**
** Nothing here knows about Lua, and nothing here calls back into Lua: the
** binding relies on that to know that no Lua code (no finalizer) runs
** during an OS call.  Every function that can fail returns 0 on success or
** a platform error code (errno on POSIX, a GetLastError() or
** WSAGetLastError() value on Windows); hp_strerror turns such a code into
** text.  Scratch memory comes from the caller's allocator (hp_alloc), which
** returns NULL when memory is out and never raises; what it gives lives
** until the binding returns, and nothing here frees it.  A function that
** takes an allocator is given one on every platform, and uses it where
** its platform needs memory (hp_poll on POSIX, hp_envlist on Windows,
** hp_spawn on both).
*/
#ifndef HPASS_SYS_H
#define HPASS_SYS_H

#include <stddef.h>
#include <stdio.h>

/*
** An OS handle: a file descriptor on POSIX, the value of a HANDLE (or
** SOCKET) on Windows.  Both fit in a long long, and -1 is never valid.
*/
typedef long long hp_os;
#define HP_NOHANDLE (-1LL)

/* Internal symbols stay out of the shared object's export table. */
#if defined(__GNUC__) && !defined(_WIN32)
#define HP_INTERNAL __attribute__((visibility("hidden")))
#else
#define HP_INTERNAL
#endif

/*
** Allocator for scratch memory that lives until the binding returns:
** NULL when out of memory (the callee then returns ENOMEM or its own
** code), never a Lua error.
*/
typedef void *(*hp_alloc)(void *ud, size_t size);

/* A started child process. */
typedef struct hp_proc {
  long long pid;        /* process id */
  void *sys;            /* platform data (the process HANDLE on Windows) */
  void *group;          /* the job object on Windows (group, session or
                           die_with_parent), else NULL */
  unsigned flags;       /* the HP_SPAWN_* flags it was started with (set
                           by hp_spawn; 0 before) */
  long long pgid;       /* with HP_SPAWN_JOIN: the group it joined */
} hp_proc;

/* How a child ended (see hp_wait). */
enum { HP_EXITED = 0, HP_SIGNALED = 1 };

/*
** Which part of starting a child failed, so that the binding can name the
** culprit: the program, the cwd option, standard stream i, handle i.
*/
enum {
  HP_FAIL_NONE = 0,
  HP_FAIL_EXEC,         /* the program could not be run */
  HP_FAIL_CWD,          /* the directory could not be entered */
  HP_FAIL_STDIO,        /* stdio[failed_index] could not be set up */
  HP_FAIL_HANDLE,       /* handles[failed_index] could not be passed */
  HP_FAIL_OTHER,        /* anything else (memory, process limits) */
  HP_FAIL_FLAGS,        /* a flag of req->flags this platform cannot do */
  HP_FAIL_UID,          /* the uid option: its lookup, or setuid */
  HP_FAIL_GID,          /* the gid option: its lookup, or setgid */
  HP_FAIL_GROUPS,       /* the groups option: a lookup, or setgroups */
  HP_FAIL_JOIN          /* joining the process group req->pgroup */
};

/*
** What a child starts with besides its handles (hp_spawn_req.flags).
**   GROUP          a new process group that the child leads (its pgid is
**                  its pid); Windows: CREATE_NEW_PROCESS_GROUP and a job
**                  object holding the child and everything it starts
**   SESSION        a new session (setsid), and so a new group too
**   DIEWITHPARENT  the child is killed when this process ends (Linux:
**                  when the thread that spawned it ends)
*/
#define HP_SPAWN_GROUP          1u
#define HP_SPAWN_SESSION        2u
#define HP_SPAWN_DIEWITHPARENT  4u

/*
** Steps in the child that scripts ask for (POSIX only: the binding
** refuses them on Windows, see HP_SPAWN_IDS).  Each says that the field
** of hp_spawn_req it names is set.
**   UMASK   umask(req->umask)
**   GROUPS  setgroups(req->ngroups, req->groups)
**   GID     setgid(req->gid)
**   UID     setuid(req->uid), after the two above: once the user is
**           changed, the rights to change the groups are gone
**   JOIN    setpgid(0, req->pgroup): joins that existing process group
*/
#define HP_SPAWN_UMASK          8u
#define HP_SPAWN_GROUPS         16u
#define HP_SPAWN_GID            32u
#define HP_SPAWN_UID            64u
#define HP_SPAWN_JOIN           128u

/* Whether the steps above exist here: POSIX has users, groups and umask. */
#if defined(_WIN32)
#define HP_SPAWN_IDS  0
#else
#define HP_SPAWN_IDS  1
#endif

/*
** Whether hp_spawn speaks systemd's socket-activation protocol
** (req->nlisten): POSIX, where a child's descriptors have fixed numbers.
** Windows has no such protocol; hp_spawn refuses nlisten > 0 there.
*/
#if defined(_WIN32)
#define HP_LISTEN_PROTOCOL  0
#else
#define HP_LISTEN_PROTOCOL  1
#endif

/* What to start (see hp_spawn). */
typedef struct hp_spawn_req {
  const char *const *argv;  /* program and arguments, NULL-terminated */
  const char *const *envp;  /* "NAME=value" strings, NULL-terminated;
                               NULL keeps the parent's environment */
  const char *cwd;          /* directory to start in; NULL keeps the parent's */
  unsigned flags;           /* HP_SPAWN_* */
  const hp_os *handles;     /* what the child inherits */
  size_t nhandles;
  size_t nlisten;           /* the first nlisten handles are passed as
                               systemd passes sockets (see
                               HP_LISTEN_PROTOCOL): no numbers appended */
  const char *listen_names; /* LISTEN_FDNAMES's value, or NULL */
  hp_os stdio[3];           /* the child's standard input, output, error;
                               HP_NOHANDLE inherits the parent's */
  const char *executable;   /* the program to run, found as argv[0] would
                               be; argv[0] is then only what the program
                               sees as its name.  NULL: argv[0] */
  int umask;                /* with HP_SPAWN_UMASK */
  long long uid, gid;       /* with HP_SPAWN_UID, HP_SPAWN_GID */
  const long long *groups;  /* with HP_SPAWN_GROUPS: ngroups of them */
  size_t ngroups;
  long long pgroup;         /* with HP_SPAWN_JOIN: a process group id */
  int failed;               /* out: on an error, HP_FAIL_* */
  size_t failed_index;      /* out: with HP_FAIL_STDIO or HP_FAIL_HANDLE */
} hp_spawn_req;


/* Text for an error code, as UTF-8, in buf (always NUL-terminated). */
HP_INTERNAL const char *hp_strerror (int code, char *buf, size_t size);

/* Error codes the binding needs to name. */
HP_INTERNAL int hp_err_pipe (void);    /* reader has gone */
HP_INTERNAL int hp_err_srch (void);    /* no such process */
HP_INTERNAL int hp_err_inval (void);   /* invalid argument */
HP_INTERNAL int hp_err_nomem (void);   /* out of memory */

/* Load-time set-up (0 or an error code); safe to call more than once. */
HP_INTERNAL int hp_init (void);

/* A pipe, p[0] for reading and p[1] for writing, both non-inheritable. */
HP_INTERNAL int hp_pipe (hp_os p[2]);

/* A connected pair of local stream sockets, both non-inheritable. */
HP_INTERNAL int hp_socketpair (hp_os p[2]);

/* The null device, opened for reading and writing, non-inheritable. */
HP_INTERNAL int hp_opennull (hp_os *h);

/* This process's standard input, output or error (i = 0, 1, 2). */
HP_INTERNAL int hp_stdio (int i, hp_os *h);

/*
** Make a handle of this process's own (one end of a pipe it made) take
** what fits and return at once when full, rather than block: writes then
** move fewer bytes, or none (done == 0), instead of waiting.
*/
HP_INTERNAL int hp_setnonblock (hp_os h);

/* 0 when h is an open handle, else an error code. */
HP_INTERNAL int hp_check (hp_os h);

/*
** Make an adopted (inherited) handle non-inheritable again.  POSIX's
** standard streams (0, 1, 2) stay as they are: every child inherits them.
*/
HP_INTERNAL int hp_noinherit (hp_os h);

HP_INTERNAL int hp_close (hp_os h);

/*
** One read or write system call (retried on EINTR).  *done gets the number
** of bytes moved; a read of 0 bytes with result 0 is the end of the stream.
** hp_write never raises SIGPIPE: a write to a pipe or socket whose reader
** has gone fails with hp_err_pipe(), and the signal state of the process
** is the same afterwards as before.
*/
HP_INTERNAL int hp_read (hp_os h, void *buf, size_t n, size_t *done);
HP_INTERNAL int hp_write (hp_os h, const void *buf, size_t n, size_t *done);

/*
** Makes every page of buf[0 .. n) present and writable before a read
** fills it (its bytes may change).  A page first touched by the kernel's
** copy out of a pipe faults while the reader holds the pipe's lock, and
** the writer spins on that lock meanwhile.
*/
HP_INTERNAL void hp_prefault (void *buf, size_t n);

/*
** Start a child that inherits exactly req->handles plus the standard
** input, output and error, and nothing else.  req->argv holds the program
** and its own arguments; hp_spawn appends one decimal argument per handle
** past the first req->nlisten, the number that handle has in the child
** (only the platform knows it: POSIX renumbers to 3, 4, ...; on Windows it
** is the value of a duplicate made during the call).
** With req->nlisten > 0 (POSIX only) the child's environment is envp's,
** or this process's, without any LISTEN_PID, LISTEN_FDS or
** LISTEN_FDNAMES, plus LISTEN_FDS=nlisten, LISTEN_FDNAMES=listen_names
** when given, and LISTEN_PID=its own pid, written in the child before
** it execs: systemd's socket-activation protocol.  A program name without a directory separator is
** searched in PATH (on Windows the PATH of envp when envp is given, and
** never the current directory).  A program that cannot be started is
** reported here, as an error code, not as a child exit status, with
** req->failed saying which part failed.
** Handles numbered above the soft descriptor limit, or more handles than
** it leaves numbers for, are passed all the same (POSIX: the child lifts
** its limit while it places them and restores it); a hard limit below
** 3 + nhandles gives EMFILE with HP_FAIL_HANDLE before anything starts.
*/
HP_INTERNAL int hp_spawn (hp_spawn_req *req, hp_proc *p,
                          hp_alloc alloc, void *ud);

/*
** Collect a child.  With block == 0 it only polls: *done tells whether the
** child has ended.  When it has, *how is HP_EXITED or HP_SIGNALED and *code
** the exit status or signal number.  The process is collected at most once.
*/
HP_INTERNAL int hp_wait (hp_proc *p, int block, int *done, int *how,
                         long long *code);

/*
** Whether some child of this process may have ended and wait to be
** collected: 0 only when none can be (then polling each child is
** pointless), 1 when one may (ours or another library's).
*/
HP_INTERNAL int hp_anyended (void);

/* Send signal sig (POSIX) or terminate with exit code sig (Windows). */
HP_INTERNAL int hp_kill (hp_proc *p, int sig);

/*
** The same for the child's whole group, for a child started with
** HP_SPAWN_GROUP or HP_SPAWN_SESSION, whether it still runs or has ended:
** the group outlives its leader as long as members hold the pipes.
** collected says whether hp_wait has collected the child (or found that
** someone else did).  hp_err_srch() when the group can no longer be
** reached safely; nothing is signalled then.
**   POSIX    kill(-pid, sig): the group's id is the leader's pid.  Only
**            while the leader is not collected: a leader that has ended
**            but waits to be collected still holds its pid, so no other
**            group can have that id.  The check looks without collecting
**            (waitid with WNOWAIT): a child that someone else collected
**            gives ECHILD and is not signalled.  After collection,
**            hp_err_srch().
**   Windows  TerminateJobObject, every process of the job ending with
**            exit code sig, collected or not: the job handle is ours and
**            cannot name another job.  hp_err_srch() once the job is gone
**            (hp_endgroup).  sig 0 only checks, as in hp_kill.
*/
HP_INTERNAL int hp_killgroup (hp_proc *p, int sig, int collected);

/*
** Let go of p->group once the process object goes (after hp_wait or
** hp_release).  Windows closes the job, unless it kills on close
** (HP_SPAWN_DIEWITHPARENT in p->flags: what the system reports of the
** job's limits is not trusted) and still holds a process: such a job
** stays open until this process ends, which is what kills them.  Nothing
** to do on POSIX.
*/
HP_INTERNAL void hp_endgroup (hp_proc *p);

/*
** This process's environment as it is now: *out gets "NAME=value"
** strings, NULL-terminated, in UTF-8 (Windows converts from UTF-16 and
** leaves out its hidden "=C:" entries).  The array may be the C
** library's own (POSIX): read it before anything changes the environment.
*/
HP_INTERNAL int hp_envlist (char *const **out, hp_alloc alloc, void *ud);

/*
** Forget a process that is still running (its object was collected).
** Frees platform data.  Returns nonzero when the process must still be
** collected later with hp_wait(p, 0, ...) so that it leaves no zombie
** (POSIX); 0 when nothing more is needed (Windows).
*/
HP_INTERNAL int hp_release (hp_proc *p);

/*
** The signal names kill takes ("TERM"; the binding also accepts
** "SIGTERM") and their numbers on this system, ended by a NULL name.
*/
typedef struct hp_signame {
  const char *name;
  int sig;
} hp_signame;

HP_INTERNAL extern const hp_signame hp_signames[];

/*
** One process-wide lock, for the little state hpass keeps per process (the
** list of buffered handles flushed at exit).  Statically initialised.
*/
HP_INTERNAL void hp_lock (void);
HP_INTERNAL void hp_unlock (void);

/*
** The lock for the flush at exit: 1 when taken, 0 when it cannot be had
** safely.  POSIX waits for it, as other threads still run at exit.  On
** Windows a DLL's exit handlers run after the other threads were ended,
** and a lock one of them held stays held: it is only tried there.
*/
HP_INTERNAL int hp_lock_atexit (void);

/*
** Keep this module loaded until the process ends.  The binding calls it
** when the module is opened: a closing Lua state unloads its C modules,
** and code of the module can still run after that: the exit handler a C
** library runs only at exit, a signal handler, and on LuaJIT a finalizer
** that runs after the library's own (and calls hpass) at the close of
** the state.  Where the platform cannot pin a module, nothing happens.
*/
HP_INTERNAL void hp_pinself (void);

/*
** Lua io files.  The FILE * belongs to the C runtime that Lua was built
** with; only these functions touch it, so that a platform whose modules
** may each have their own runtime (Windows) can route them to Lua's.
*/

/* Handle behind a C stream. */
HP_INTERNAL int hp_fromfile (FILE *f, hp_os *h);

/*
** Write out what the stream holds in its output buffer.  Never raises
** SIGPIPE: a reader that has gone gives hp_err_pipe(), and the signal
** state of the process is the same afterwards as before.
*/
HP_INTERNAL int hp_fflush (FILE *f);

/*
** Bytes of input the stream has read ahead of its handle (what a read
** from the handle itself would skip); 0 where the platform cannot tell.
*/
HP_INTERNAL size_t hp_freadahead (FILE *f);

/*
** Move up to n of those read-ahead bytes into buf, with no system call;
** returns how many were moved.
*/
HP_INTERNAL size_t hp_ftake (FILE *f, void *buf, size_t n);

/*
** A C stream that takes over handle h (on success h belongs to the stream;
** on failure it is untouched).
*/
HP_INTERNAL FILE *hp_tofile (hp_os h, const char *mode, int *err);

/* fclose of the stream's own C runtime: 0, or EOF with its errno set. */
HP_INTERNAL int hp_fclose (FILE *f);


/*
** Deadlines and readiness.  A deadline is a time in milliseconds on a
** monotonic clock (hp_now), or HP_NEVER; it may lie up to 10^18 ms ahead
** (a timeout is at most 10^15 s), so a wait that the system takes in
** pieces (a DWORD of milliseconds on Windows) loops until it.  hp_read
** and hp_write block without limit; a caller with a deadline first waits
** with hp_ready, then moves no more than a ready handle takes at once
** (hp_room bytes on a write), so that the call itself does not block.
** A deadline that has passed is the binding's to enforce (hpb_ready in
** lua_base_result.c): hp_ready and hp_poll only wait until it, and report
** a handle that is ready then as ready.
*/
typedef long long hp_time;
#define HP_NEVER  (-1LL)

/*
** The back-off of a wait that must poll, having nothing to sleep on (a
** process without a pidfd, a pipe that took nothing, a Windows pipe in
** PIPE_NOWAIT mode): the pause to take now, in ms, while *pause doubles
** for the next one up to cap (a power of two, so that the pauses run 1,
** 2, 4, ..., cap).  The one copy, for the binding and the backends.
*/
static inline hp_time hp_backoff (hp_time *pause, hp_time cap) {
  hp_time now = *pause;
  if (*pause < cap) *pause *= 2;
  return now;
}

/*
** Bytes a handle that polls writable takes without blocking: PIPE_BUF,
** which POSIX sets at 512 or more and Linux at a page.
*/
#if defined(__linux__)
#define HP_ATOMIC 4096
#else
#define HP_ATOMIC 512
#endif

HP_INTERNAL hp_time hp_now (void);

/*
** The deadline ms milliseconds from now (HP_NEVER stays so).  The part
** of a millisecond that the clock has run counts as a whole one, so a
** wait that ends when hp_now() reaches the deadline is never early.  0
** gives a deadline that has passed already: only what is possible now.
*/
HP_INTERNAL hp_time hp_after (hp_time ms);

/* The code of a deadline that passed (ETIMEDOUT, ERROR_TIMEOUT). */
HP_INTERNAL int hp_err_timeout (void);

enum { HP_READABLE = 1, HP_WRITABLE = 2 };

/*
** Wait until h is ready for one of events (a read or write would not
** block: data, end of stream, an error, room) or the deadline passes
** (hp_err_timeout()).  Signals never shorten or lengthen the wait.
*/
HP_INTERNAL int hp_ready (hp_os h, int events, hp_time deadline);

/*
** Bytes a write to h may move without blocking once hp_ready has found it
** writable: HP_ATOMIC, or more where the platform can tell (a socket's
** send buffer on Windows, where HP_ATOMIC would crawl).
*/
HP_INTERNAL size_t hp_room (hp_os h);

/* One entry of hp_poll. */
typedef struct hp_pollitem {
  hp_os h;              /* the handle; HP_NOHANDLE entries are skipped */
  int events;           /* HP_READABLE and/or HP_WRITABLE */
  int revents;          /* out: which of them are ready */
} hp_pollitem;

/*
** Wait until at least one item is ready or the deadline passes; *nready
** gets how many are (0 when the deadline passed, which is no error).
** With n == 0 it sleeps until the deadline, and alloc may be NULL.
*/
HP_INTERNAL int hp_poll (hp_pollitem *items, size_t n, hp_time deadline,
                         int *nready, hp_alloc alloc, void *ud);

/*
** A new handle that becomes readable when the child has ended (a pidfd
** on Linux, a copy of the process handle on Windows), or an error code:
** ENOSYS or the like where the system has none, ECHILD when the child was
** already collected by someone else.  Call it only for a child not yet
** collected by hp_wait.  The caller closes it with hp_close.
*/
HP_INTERNAL int hp_procfd (const hp_proc *p, hp_os *fd);

/* HP_READABLE and/or HP_WRITABLE: what h was opened for, when known. */
HP_INTERNAL int hp_access (hp_os h);


/*
** Passing handles to a process that already runs.  The channel is a
** connected local stream socket (an end of hp_socketpair, or any such
** socket).  One hp_sendfds is one message, taken whole by one hp_recvfds,
** in order with the other bytes written on the channel.  On POSIX a
** message is one byte, the number of handles, carrying the descriptors
** as SCM_RIGHTS.
*/

/*
** Most handles in one message: Linux refuses more (SCM_MAX_FD), and
** musl's sendmsg refuses more than 1024 bytes of control data (ENOMEM),
** which hold 252.
*/
#if defined(__linux__) && !defined(__GLIBC__) && !defined(_WIN32)
#define HP_MAXFDS 252
#else
#define HP_MAXFDS 253
#endif

/*
** Send copies of h[0 .. n-1], 1 <= n <= HP_MAXFDS, as one message (else
** hp_err_inval()).  The caller's handles stay open, and each side may
** close its own copies at any time once this returns 0.  Never raises
** SIGPIPE: a peer that has gone gives hp_err_pipe().  Needs no scratch
** memory: a message's size is bounded by HP_MAXFDS.
*/
HP_INTERNAL int hp_sendfds (hp_os chan, const hp_os *h, size_t n);

/*
** Receive one message into h[0 .. *n-1]: new handles, non-inheritable,
** giving up with hp_err_timeout() when the deadline passes first (HP_NEVER:
** no limit).  The deadline covers the whole message: on Windows its 44
** bytes and the rendezvous with the sender.  A message that a timeout cut
** before its handles were asked for is kept for the next call on the same
** channel, so nothing is lost.
** Result 0 with *n == 0 is a clean end of stream (the peer closed between
** messages).  Anything that is not a whole message sent by hp_sendfds is
** an error, after which *n is 0 and every handle that came with it has
** been closed: bytes without handles or a count that does not match them
** (EBADMSG on POSIX), handles the kernel could not install because the
** descriptor limit was hit (EMFILE), more than max handles (EMSGSIZE).
*/
HP_INTERNAL int hp_recvfds (hp_os chan, hp_os *h, size_t max, size_t *n,
                             hp_time deadline);


/*
** {======================================================
** What servers need: socket activation received, signals as a handle
** =======================================================
*/

/*
** The receiving side of systemd's socket activation.  hp_listenvar
** gives the value of LISTEN_PID, LISTEN_FDS or LISTEN_FDNAMES in this
** process's environment, or NULL (always NULL on Windows, where the
** protocol does not exist); the string is valid until the environment
** changes.  hp_unlistenvar removes one of them from the environment.
*/
HP_INTERNAL const char *hp_listenvar (const char *name);
HP_INTERNAL void hp_unlistenvar (const char *name);

/* This process's id. */
HP_INTERNAL long long hp_getpid (void);

/*
** The id of the user (hp_userid) or group (hp_groupid) called name, in
** *id, looked up with buf (size bytes) as the C library's scratch: 0,
** ERANGE when buf is too small for the entry (try again with more),
** hp_err_noent() when there is no such name, or another error code.
** POSIX only (HP_SPAWN_IDS).
*/
HP_INTERNAL int hp_userid (const char *name, char *buf, size_t size,
                           long long *id);
HP_INTERNAL int hp_groupid (const char *name, char *buf, size_t size,
                            long long *id);
HP_INTERNAL int hp_err_noent (void);

/*
** The highest descriptor number this process could hold (its hard
** descriptor limit less one), or -1 when there is no limit to tell.
*/
HP_INTERNAL long long hp_maxfd (void);

/*
** Signals as a handle.  hp_catchable lists, by name, what a signals
** handle can catch on this system, ended by a NULL name: asynchronous
** POSIX signals (not KILL and STOP, which cannot be caught, nor the
** faults SEGV, BUS, FPE, ILL, TRAP, SYS and ABRT, whose handler would
** return into the fault); on Windows the console control events INT
** (Ctrl+C), BREAK (Ctrl+Break) and TERM (the console closes).
*/
HP_INTERNAL extern const hp_signame hp_catchable[];

/* Most signals one handle catches. */
#define HP_MAXSIGS  32

typedef struct hp_signals {
  hp_os h;                  /* readable while a signal waits; HP_NOHANDLE
                               once closed */
  hp_os w;                  /* the end the handler writes to */
  int n;                    /* how many signals */
  int sig[HP_MAXSIGS];      /* their numbers (hp_catchable's) */
  int unblocked[HP_MAXSIGS];  /* POSIX: sig[i] was blocked in the thread
                               that opened the handle, which unblocked it */
} hp_signals;

/*
** Catch the signals s->sig[0 .. s->n-1] (distinct, from hp_catchable)
** until hp_sigclose: each delivery becomes one entry that hp_sigtake
** takes, and s->h is readable while one waits.  Nothing but a write to a
** non-blocking pipe happens in the handler.  A signal that an open set
** already catches gives hp_err_busy() with *busy its number, and nothing
** changes.  The handle is non-inheritable.
*/
HP_INTERNAL int hp_sigopen (hp_signals *s, int *busy);

/* The next signal that arrived, or *sig == 0 when none waits.  Never blocks. */
HP_INTERNAL int hp_sigtake (hp_signals *s, int *sig);

/*
** Stop catching: every signal gets back exactly the disposition it had
** before hp_sigopen (POSIX: the whole sigaction, flags and mask), one
** that hp_sigopen unblocked is blocked again in the calling thread, and
** the handles are closed.  Entries not yet taken are dropped.
*/
HP_INTERNAL int hp_sigclose (hp_signals *s);

/* The code of "already caught" (EBUSY, ERROR_BUSY). */
HP_INTERNAL int hp_err_busy (void);

/* }====================================================== */

#endif
