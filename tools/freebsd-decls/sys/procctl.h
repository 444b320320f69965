/*
** sys/procctl.h - what FreeBSD's <sys/procctl.h> declares that the
** FreeBSD path of hpass_spawn_posix.c uses, so that the path compiles on
** Linux (`make fallback-freebsd`, with -I tools/freebsd-decls).  Only
** compiled, never run.  Signature and value from FreeBSD's procctl(2).
*/
#ifndef HPASS_FREEBSD_PROCCTL_H
#define HPASS_FREEBSD_PROCCTL_H
#include <sys/types.h>
#include <sys/wait.h>      /* idtype_t and P_PID, as on FreeBSD */
#define PROC_PDEATHSIG_CTL  11
int procctl (idtype_t idtype, id_t id, int cmd, void *data);
#endif
