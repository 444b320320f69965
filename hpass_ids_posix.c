/*
** hpass_ids_posix.c - users and groups by name, for the uid, gid and
** groups options of a spawn (hpass_sys.h: hp_userid, hp_groupid).
**
** The names are looked up in the parent, before the child starts: the
** child may run nothing but async-signal-safe code, and the C library's
** lookups (NSS modules, files, sockets to a directory service) are none
** of that.  The reentrant forms take the caller's buffer, so that
** nothing here allocates and two threads may look up at once.
*/
#ifndef _WIN32

#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sys/types.h>

#include "hpass_sys.h"


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

#endif
