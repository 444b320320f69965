/*
** hpass_ids_posix.c - who a child is: its umask, user, group and
** supplementary groups, its process group or session, and its tie to
** the parent (the death signal).
**
** - In the parent: users and groups by name, for the uid, gid and groups
**   options (hpass_sys.h: hp_userid, hp_groupid), and the request's ids
**   in the system's types (hpp_idsprep).  The names are looked up before
**   the child starts: the child may run nothing but async-signal-safe
**   code, and the C library's lookups (NSS modules, files, sockets to a
**   directory service) are none of that.  The reentrant forms take the
**   caller's buffer, so that nothing here allocates and two threads may
**   look up at once.
**
** - In the child (hpass_spawn_posix.c, between its descriptors and exec):
**   the steps themselves, in the one order that works (hpp_setids).
*/
#ifndef _WIN32

#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE     /* setgroups */
#endif

#include "hpass_posix.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "hpass_sys.h"

#if HPASS_PDEATHSIG == 1
#include <sys/prctl.h>
#elif HPASS_PDEATHSIG == 2
#include <sys/procctl.h>
#endif


/*
** {======================================================
** In the parent
** =======================================================
*/

int hp_err_noent (void) { return ENOENT; }


/*
** What getpwnam_r and getgrnam_r return when the name is not there:
** POSIX lets them return 0 with no entry, or one of these codes.
*/
static int notfound (int err) {
  return err == 0 || err == ENOENT || err == ESRCH || err == EBADF ||
         err == EPERM;
}


int hp_userid (const char *name, char *buf, size_t size, long long *id) {
  struct passwd pw, *found = NULL;
  int err;
  do {
    err = getpwnam_r(name, &pw, buf, size, &found);
  } while (err == EINTR);
  if (found != NULL) {
    *id = (long long)found->pw_uid;
    return 0;
  }
  return notfound(err) ? ENOENT : err;
}


int hp_groupid (const char *name, char *buf, size_t size, long long *id) {
  struct group gr, *found = NULL;
  int err;
  do {
    err = getgrnam_r(name, &gr, buf, size, &found);
  } while (err == EINTR);
  if (found != NULL) {
    *id = (long long)found->gr_gid;
    return 0;
  }
  return notfound(err) ? ENOENT : err;
}


/*
** A child that changes its user or groups is forked, not vforked, as
** CPython's is: the C library's setuid, setgid and setgroups make every
** thread of the process change with the caller (glibc and musl signal
** each of them), and a vfork child would reach the threads of the
** parent, whose memory it shares.  A forked child is a process of its
** own, with one thread; it costs a copy of the page tables.
*/
int hpp_idsprep (hpp_ids *ids, const hp_spawn_req *req,
                 hp_alloc alloc, void *ud) {
  size_t i;
  ids->flags = req->flags;
  ids->parent = getpid();
  ids->forks = (req->flags & (HP_SPAWN_UID | HP_SPAWN_GID |
                              HP_SPAWN_GROUPS)) != 0;
  ids->mask = (mode_t)req->umask;
  ids->uid = (uid_t)req->uid;
  ids->gid = (gid_t)req->gid;
  ids->pgroup = (pid_t)req->pgroup;
  ids->groups = NULL;
  ids->ngroups = 0;
  if (!(req->flags & HP_SPAWN_GROUPS)) return 0;
  if (req->ngroups > (size_t)INT_MAX ||
      req->ngroups + 1 > (size_t)-1 / sizeof(gid_t))
    return EINVAL;
  ids->groups = (gid_t *)alloc(ud, (req->ngroups + 1) * sizeof(gid_t));
  if (ids->groups == NULL) return ENOMEM;
  for (i = 0; i < req->ngroups; i++) ids->groups[i] = (gid_t)req->groups[i];
  ids->ngroups = (int)req->ngroups;
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** In the child
** =======================================================
*/

/*
** The umask, then the supplementary groups, the group and the user, in
** that order: once the user is changed, the rights to change the groups
** are gone.
*/
static int setcreds (const hpp_ids *ids, int *failed) {
  if (ids->flags & HP_SPAWN_UMASK) (void)umask(ids->mask);
  *failed = HP_FAIL_GROUPS;
  if ((ids->flags & HP_SPAWN_GROUPS) &&
      setgroups(ids->ngroups, ids->groups) != 0)
    return errno;
  *failed = HP_FAIL_GID;
  if ((ids->flags & HP_SPAWN_GID) && setgid(ids->gid) != 0) return errno;
  *failed = HP_FAIL_UID;
  if ((ids->flags & HP_SPAWN_UID) && setuid(ids->uid) != 0) return errno;
  return 0;
}


/*
** A group or session of the child's own, or the group it joins; then
** the death signal, which comes after the change of user because that
** clears it (Linux).  The death signal is tied to the thread that forked
** (Linux) or to the process (FreeBSD); if the parent has already gone by
** the time it is set, it will never come, so the child checks and gives
** up.
*/
static int setgroup (const hpp_ids *ids, int *failed) {
  *failed = HP_FAIL_OTHER;
  if ((ids->flags & HP_SPAWN_SESSION) && setsid() < 0) return errno;
  if ((ids->flags & HP_SPAWN_GROUP) && !(ids->flags & HP_SPAWN_SESSION) &&
      setpgid(0, 0) != 0)
    return errno;
  *failed = HP_FAIL_JOIN;
  if ((ids->flags & HP_SPAWN_JOIN) && setpgid(0, ids->pgroup) != 0)
    return errno;
  *failed = HP_FAIL_OTHER;
  if (ids->flags & HP_SPAWN_DIEWITHPARENT) {
#if HPASS_PDEATHSIG == 1
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL, 0UL, 0UL, 0UL) != 0)
      return errno;
#elif HPASS_PDEATHSIG == 2
    int sig = SIGKILL;
    if (procctl(P_PID, 0, PROC_PDEATHSIG_CTL, &sig) != 0) return errno;
#endif
    if (getppid() != ids->parent) _exit(127);  /* orphaned already */
  }
  return 0;
}


int hpp_setids (const hpp_ids *ids, int *failed) {
  int err = setcreds(ids, failed);
  return err != 0 ? err : setgroup(ids, failed);
}

/* }====================================================== */

#endif
