/*
** oldkernel - run a command as if on an older Linux kernel.
**
**   oldkernel COMMAND [ARG ...]
**
** Installs a seccomp filter that makes the system calls newer kernels
** added fail with ENOSYS, as a kernel that does not know them would, then
** execs COMMAND.  The filter is inherited by every process COMMAND starts
** and cannot be removed.  Refused calls:
**   close_range   (Linux 5.9)
**   pwritev2      (Linux 4.6; RWF_NOSIGNAL came in 6.18)
**   pidfd_open    (Linux 5.3)
**   clone3        (Linux 5.3; the C library falls back to clone)
** A test tool for `make test-oldkernel`, not part of hpass.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__i386__)
#define ARCH AUDIT_ARCH_I386
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error "oldkernel: add this architecture's AUDIT_ARCH value"
#endif

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

#define REFUSE(nr) \
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA))

int main (int argc, char **argv) {
  struct sock_filter code[] = {
    /* another architecture's calls (x32, i386 on x86_64) pass unchanged */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    REFUSE(SYS_close_range),
    REFUSE(SYS_pwritev2),
    REFUSE(SYS_pidfd_open),
    REFUSE(SYS_clone3),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog;
  if (argc < 2) {
    fprintf(stderr, "usage: oldkernel COMMAND [ARG ...]\n");
    return 64;
  }
  prog.len = (unsigned short)(sizeof code / sizeof code[0]);
  prog.filter = code;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    fprintf(stderr, "oldkernel: seccomp: %s\n", strerror(errno));
    return 70;
  }
  execvp(argv[1], argv + 1);
  fprintf(stderr, "oldkernel: %s: %s\n", argv[1], strerror(errno));
  return 127;
}
