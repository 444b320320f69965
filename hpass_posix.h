/*
** hpass_posix.h - what the POSIX backend may use on this platform.
**
** There is no configure step (the rockspec uses LuaRocks' builtin type),
** so each choice is made here from the platform's own macros: the glibc
** version, __APPLE__, __FreeBSD_version, and "Linux but not glibc" for
** musl, which has no version macro.  Every choice is a macro that a -D on
** the command line overrides, so that each path can be built and tested
** on one Linux machine (`make test-fallbacks`).
**
**   HPASS_SPAWN                how children start (HPASS_SPAWN_*, below)
**   HPASS_GLIBC                glibc version as 100*major+minor, 0 if none
**                              (-DHPASS_GLIBC=228 builds as for 2.28)
**   HPASS_HAVE_PIPE2           pipe2(O_CLOEXEC)
**   HPASS_HAVE_SOCK_CLOEXEC    socketpair(SOCK_CLOEXEC)
**   HPASS_HAVE_MSG_CMSG_CLOEXEC  recvmsg(MSG_CMSG_CLOEXEC)
**   HPASS_HAVE_MSG_NOSIGNAL    send(MSG_NOSIGNAL)
**   HPASS_HAVE_SO_NOSIGPIPE    setsockopt(SO_NOSIGPIPE) on new sockets
**   HPASS_HAVE_SIGTIMEDWAIT    sigtimedwait (else sigwait on a pending one)
**   HPASS_PWRITEV2             0 none, 1 the C library's pwritev2,
**                              2 its system call (older C libraries)
**   HPASS_HAVE_CLOSE_RANGE     close_range (the child path tries it first)
**   HPASS_HAVE_PROCFD          a getdents64 walk of /proc/self/fd
**   HPASS_HAVE_CLOSEFROM       closefrom (BSD)
**   HPASS_HAVE_ADDCHDIR_NP     posix_spawn_file_actions_addchdir_np
**   HPASS_PDEATHSIG            0 none, 1 prctl(PR_SET_PDEATHSIG) (Linux),
**                              2 procctl(PROC_PDEATHSIG_CTL) (FreeBSD 11.2)
**   HPASS_HAVE_SPAWN_SETSID    posix_spawnattr flag POSIX_SPAWN_SETSID
*/
#ifndef HPASS_POSIX_H
#define HPASS_POSIX_H

#include <sys/types.h>
#include <sys/param.h>     /* __FreeBSD_version */
#include <sys/socket.h>
#include <signal.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
/*
** Kernel headers older than 5.9 (RHEL 8's, say) lack the number, which
** is the same on the common architectures; the call itself may still be
** refused (ENOSYS), and the child then walks /proc/self/fd.
*/
#if !defined(SYS_close_range) && ((defined(__x86_64__) && !defined(__ILP32__)) || \
    defined(__i386__) || defined(__aarch64__) || defined(__arm__) || \
    defined(__riscv) || defined(__powerpc__) || defined(__s390__))
#define SYS_close_range 436
#endif
#endif

/*
** How a child is started:
**   CHILD      a vfork child of our own: signals, dup2s, close the rest,
**              chdir, exec, and the failing step reported over a pipe.
**              Works wherever vfork does; the default on Linux (glibc and
**              musl) and on BSDs without addclosefrom_np.
**   CLOSEFROM  posix_spawn with adddup2 + addclosefrom_np (+ addchdir_np):
**              glibc >= 2.34, FreeBSD >= 13.1 (the default there).
**   APPLE      posix_spawn with POSIX_SPAWN_CLOEXEC_DEFAULT and
**              addinherit_np (macOS, the default there).
*/
#define HPASS_SPAWN_CHILD       1
#define HPASS_SPAWN_CLOSEFROM   2
#define HPASS_SPAWN_APPLE       3

#if !defined(HPASS_GLIBC)
#if defined(__GLIBC__)
#define HPASS_GLIBC  (__GLIBC__ * 100 + __GLIBC_MINOR__)
#else
#define HPASS_GLIBC  0
#endif
#endif

#if defined(__FreeBSD__) && defined(__FreeBSD_version)
#define HP_FREEBSD  __FreeBSD_version
#else
#define HP_FREEBSD  0
#endif

#if defined(__OpenBSD__) || defined(__NetBSD__) || defined(__DragonFly__)
#define HP_OTHERBSD  1
#else
#define HP_OTHERBSD  0
#endif

#if !defined(HPASS_SPAWN)
#if defined(__APPLE__)
#define HPASS_SPAWN  HPASS_SPAWN_APPLE
#elif HP_FREEBSD >= 1301000
#define HPASS_SPAWN  HPASS_SPAWN_CLOSEFROM
#else
#define HPASS_SPAWN  HPASS_SPAWN_CHILD
#endif
#endif

#if !defined(HPASS_HAVE_ADDCHDIR_NP)
#if HPASS_GLIBC >= 229 || HP_FREEBSD >= 1301000 || \
    (defined(__linux__) && HPASS_GLIBC == 0)  /* musl >= 1.1.24 */
#define HPASS_HAVE_ADDCHDIR_NP  1
#elif defined(__APPLE__) && defined(__MAC_OS_X_VERSION_MIN_REQUIRED)
#define HPASS_HAVE_ADDCHDIR_NP  (__MAC_OS_X_VERSION_MIN_REQUIRED >= 101500)
#else
#define HPASS_HAVE_ADDCHDIR_NP  0
#endif
#endif

#if !defined(HPASS_HAVE_PIPE2)
#if defined(__APPLE__)
#define HPASS_HAVE_PIPE2  0
#else
#define HPASS_HAVE_PIPE2  1
#endif
#endif

#if !defined(HPASS_HAVE_SOCK_CLOEXEC)
#if defined(SOCK_CLOEXEC)
#define HPASS_HAVE_SOCK_CLOEXEC  1
#else
#define HPASS_HAVE_SOCK_CLOEXEC  0
#endif
#endif

#if !defined(HPASS_HAVE_MSG_CMSG_CLOEXEC)
#if defined(MSG_CMSG_CLOEXEC)
#define HPASS_HAVE_MSG_CMSG_CLOEXEC  1
#else
#define HPASS_HAVE_MSG_CMSG_CLOEXEC  0
#endif
#endif

#if !defined(HPASS_HAVE_MSG_NOSIGNAL)
#if defined(MSG_NOSIGNAL)
#define HPASS_HAVE_MSG_NOSIGNAL  1
#else
#define HPASS_HAVE_MSG_NOSIGNAL  0
#endif
#endif

#if !defined(HPASS_HAVE_SO_NOSIGPIPE)
#if defined(SO_NOSIGPIPE)
#define HPASS_HAVE_SO_NOSIGPIPE  1
#else
#define HPASS_HAVE_SO_NOSIGPIPE  0
#endif
#endif

#if !defined(HPASS_HAVE_SIGTIMEDWAIT)
#if defined(__APPLE__) || defined(__OpenBSD__)
#define HPASS_HAVE_SIGTIMEDWAIT  0
#else
#define HPASS_HAVE_SIGTIMEDWAIT  1
#endif
#endif

#if !defined(HPASS_PWRITEV2)
#if HPASS_GLIBC >= 226
#define HPASS_PWRITEV2  1
#elif defined(__linux__) && defined(SYS_pwritev2)
#define HPASS_PWRITEV2  2   /* musl < 1.2.5 and glibc < 2.26 lack the wrapper */
#else
#define HPASS_PWRITEV2  0
#endif
#endif

#if !defined(HPASS_HAVE_CLOSE_RANGE)
#if defined(__linux__) || HP_FREEBSD >= 1202000
#define HPASS_HAVE_CLOSE_RANGE  1
#else
#define HPASS_HAVE_CLOSE_RANGE  0
#endif
#endif

#if !defined(HPASS_HAVE_PROCFD)
#if defined(__linux__)
#define HPASS_HAVE_PROCFD  1
#else
#define HPASS_HAVE_PROCFD  0
#endif
#endif

#if !defined(HPASS_HAVE_CLOSEFROM)
#if HP_FREEBSD > 0 || HP_OTHERBSD
#define HPASS_HAVE_CLOSEFROM  1
#else
#define HPASS_HAVE_CLOSEFROM  0
#endif
#endif

#if !defined(HPASS_PDEATHSIG)
#if defined(__linux__)
#define HPASS_PDEATHSIG  1
#elif HP_FREEBSD >= 1102000
#define HPASS_PDEATHSIG  2
#else
#define HPASS_PDEATHSIG  0
#endif
#endif

/*
** glibc >= 2.26 and musl have it; elsewhere it is used when <spawn.h>
** defines it (hpass_spawn_posix.c checks), except on macOS, where a
** session goes through the fork child.
*/
#if !defined(HPASS_HAVE_SPAWN_SETSID)
#if defined(__APPLE__) || (HPASS_GLIBC > 0 && HPASS_GLIBC < 226)
#define HPASS_HAVE_SPAWN_SETSID  0
#else
#define HPASS_HAVE_SPAWN_SETSID  1
#endif
#endif

/*
** dladdr and dlopen(RTLD_NODELETE | RTLD_NOLOAD), which keep the module
** loaded (hp_pinself): in the C library on glibc 2.34 and later, musl,
** the BSDs and macOS.  Before glibc 2.34 they are in libdl, which the
** module does not link; gcc's links there give the exit handler the
** library's own handle, and glibc runs it when the library is unloaded.
*/
#if !defined(HPASS_HAVE_DLADDR)
#if HPASS_GLIBC > 0 && HPASS_GLIBC < 234
#define HPASS_HAVE_DLADDR  0
#else
#define HPASS_HAVE_DLADDR  1
#endif
#endif

/* A forced absence hides the flag from the code that would use it. */
#if !HPASS_HAVE_MSG_CMSG_CLOEXEC
#undef MSG_CMSG_CLOEXEC
#endif
#if !HPASS_HAVE_MSG_NOSIGNAL
#undef MSG_NOSIGNAL
#endif

/* The environment of this process (a macOS bundle has no environ symbol). */
#if defined(__APPLE__)
#include <crt_externs.h>
#define hp_environ()  (*_NSGetEnviron())
#else
extern char **environ;
#define hp_environ()  (environ)
#endif

/* Name of the spawn path built in, left in the module as a string
   (hpass_spawn_posix.c) that `make bench` reads to say which path ran. */
#if HPASS_SPAWN == HPASS_SPAWN_CHILD
#define HPASS_SPAWN_NAME  "vfork"
#elif HPASS_SPAWN == HPASS_SPAWN_CLOSEFROM
#define HPASS_SPAWN_NAME  "posix_spawn+addclosefrom_np"
#else
#define HPASS_SPAWN_NAME  "posix_spawn+cloexec_default"
#endif

/*
** {======================================================
** What the POSIX files share (prefix hpp_)
** =======================================================
*/

#include <limits.h>

#include "hpass_sys.h"

/*
** A handle number that an int cannot hold is no descriptor: the cast
** would turn it into another one (2^32 + 1 into 1), so it is EBADF.
*/
#define HPP_NOTFD(h)  ((h) < 0 || (h) > INT_MAX)

/* Set close-on-exec on fd: 0 or an error code (hpass_io_posix.c). */
HP_INTERNAL int hpp_cloexec (int fd);

/*
** A pipe that is close-on-exec: 0, or -1 with errno set.  Without pipe2
** (macOS) the flag comes right after, and a concurrent fork + exec by
** other code could inherit the pipe in between; hpass's own children
** cannot, as they close what they are not given.
*/
HP_INTERNAL int hpp_pipe (int fd[2]);

/*
** After a read, write, sendmsg or recvmsg on fd that returned r: 0 when
** it is done, -1 to try again (EINTR, or fd became ready for events
** after EAGAIN: hpass calls block also on a descriptor someone else made
** non-blocking), else the error.
*/
HP_INTERNAL int hpp_settle (ssize_t r, int fd, short events);

/*
** SIGPIPE blocked in this thread around a call that may write (the
** portable fallback).  A SIGPIPE the call queued is taken back before the
** mask is restored; one that was already pending belongs to someone else
** and stays.  epipe: whether the call failed with EPIPE.
*/
typedef struct hpp_nosigpipe {
  sigset_t pipeset, old;
  int was_pending;
} hpp_nosigpipe;
HP_INTERNAL void hpp_nosigpipe_begin (hpp_nosigpipe *s);
HP_INTERNAL void hpp_nosigpipe_end (hpp_nosigpipe *s, int epipe);

/*
** Who a child is (hpass_ids_posix.c): the steps between its descriptors
** and exec that set its umask, groups and user, its process group or
** session, and its death signal, from what the parent prepared in the
** system's types (hpp_idsprep: groups in scratch memory from alloc; 0 or
** an error code).  forks: the child changes its user or groups and must
** be forked, not vforked.  hpp_setids runs in the child, async-signal-
** safe: 0, or the errno of the step that failed, with *failed its
** HP_FAIL_*; a child whose parent has already gone exits there.
*/
typedef struct hpp_ids {
  unsigned flags;       /* HP_SPAWN_* */
  pid_t parent;         /* the parent's pid, taken before the fork */
  int forks;
  mode_t mask;          /* with HP_SPAWN_UMASK */
  uid_t uid;            /* with HP_SPAWN_UID */
  gid_t gid;            /* with HP_SPAWN_GID */
  gid_t *groups;        /* with HP_SPAWN_GROUPS: ngroups of them */
  int ngroups;
  pid_t pgroup;         /* with HP_SPAWN_JOIN */
} hpp_ids;
HP_INTERNAL int hpp_idsprep (hpp_ids *ids, const hp_spawn_req *req,
                             hp_alloc alloc, void *ud);
HP_INTERNAL int hpp_setids (const hpp_ids *ids, int *failed);

/* }====================================================== */

#endif
