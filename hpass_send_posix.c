/*
** hpass_send_posix.c - passing handles to running processes on POSIX:
** hp_sendfds and hp_recvfds of hpass_sys.h, over a local socket with
** SCM_RIGHTS.
*/
#ifndef _WIN32

#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE     /* MSG_CMSG_CLOEXEC */
#endif

#include "hpass_posix.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hpass_sys.h"


/*
** {======================================================
** Passing handles to running processes
** =======================================================
**
** A message is one byte, the number of descriptors, with the descriptors
** attached as SCM_RIGHTS.  The byte is needed (Linux drops control data
** sent with no payload) and lets the receiver check that what arrived is
** what was sent: bytes written by anything else carry no descriptors, and
** a count that does not match means the message was not ours.  The
** control buffers are sized with CMSG_SPACE, which includes the padding
** the kernel expects; CMSG_LEN would be short on some ABIs.
*/

#if !defined(MSG_CMSG_CLOEXEC)
#define MSG_CMSG_CLOEXEC 0   /* set FD_CLOEXEC after the fact, below */
#endif
/*
** Control messages that carry descriptors besides SCM_RIGHTS, which a
** receiver must close: Linux attaches SCM_PIDFD to every message once
** SO_PASSPIDFD is set on the socket (6.5), whether headers know it or not.
*/
#if defined(__linux__) && !defined(SCM_PIDFD)
#define SCM_PIDFD 0x04
#elif !defined(SCM_PIDFD)
#define SCM_PIDFD SCM_RIGHTS   /* none: the test above already takes it */
#endif

/*
** Room for other control messages next to SCM_RIGHTS (credentials, when
** SO_PASSCRED is on), so that a full message of descriptors never comes
** back truncated for want of space.
*/
#define CTLSLACK  64

/* Room for the control data of any message, aligned for a cmsghdr. */
typedef union ctlbuf {
  struct cmsghdr align;
  unsigned char b[CMSG_SPACE(HP_MAXFDS * sizeof(int)) + CTLSLACK];
} ctlbuf;


/* sendmsg that never raises SIGPIPE: MSG_NOSIGNAL, else the mask. */
static ssize_t sendmsg_nosig (int fd, const struct msghdr *msg) {
#if HPASS_HAVE_MSG_NOSIGNAL
  return sendmsg(fd, msg, MSG_NOSIGNAL);
#else
  hpp_nosigpipe s;
  ssize_t r;
  hpp_nosigpipe_begin(&s);
  r = sendmsg(fd, msg, 0);
  hpp_nosigpipe_end(&s, r < 0 && errno == EPIPE);
  return r;
#endif
}


/* A message of one byte (*count) with room for control data in ctl. */
static void setmsg (struct msghdr *msg, struct iovec *iov,
                    unsigned char *count, unsigned char *ctl, size_t space) {
  memset(msg, 0, sizeof(*msg));
  iov->iov_base = count;
  iov->iov_len = 1;
  msg->msg_iov = iov;
  msg->msg_iovlen = 1;
  msg->msg_control = ctl;
  msg->msg_controllen = space;
}


int hp_sendfds (hp_os chan, const hp_os *h, size_t n) {
  struct msghdr msg;
  struct iovec iov;
  struct cmsghdr *c;
  unsigned char count = (unsigned char)n;
  size_t space, i;
  ctlbuf buf;
  unsigned char *ctl = buf.b;
  ssize_t r;
  int err;
  if (n == 0 || n > HP_MAXFDS) return EINVAL;
  if (HPP_NOTFD(chan)) return EBADF;
  space = CMSG_SPACE(n * sizeof(int));
  memset(ctl, 0, space);
  setmsg(&msg, &iov, &count, ctl, space);
  c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(n * sizeof(int));
  for (i = 0; i < n; i++) {
    int fd = (int)h[i];
    if (HPP_NOTFD(h[i])) return EBADF;
    memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
  }
  do {
    r = sendmsg_nosig((int)chan, &msg);
  } while ((err = hpp_settle(r, (int)chan, POLLOUT)) < 0);
  if (err != 0) return err;
  return r == 1 ? 0 : EIO;  /* a 1-byte send is never short, but be sure */
}


/* Close h[0 .. n-1]: the handles of a message that is refused. */
static void closeall (hp_os *h, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    close((int)h[i]);
    h[i] = HP_NOHANDLE;
  }
}


/*
** Take every descriptor that arrived with msg, whatever else is wrong
** with the message, so that none stays open unowned: up to max into h
** (*kept of them), the rest closed at once; *got counts the handles.
*/
static void takefds (struct msghdr *msg, hp_os *h, size_t max, size_t *got,
                     size_t *kept) {
  struct cmsghdr *c;
  for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
    size_t k, i;
    if (c->cmsg_level != SOL_SOCKET ||
        (c->cmsg_type != SCM_RIGHTS && c->cmsg_type != SCM_PIDFD))
      continue;
    k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      /* a pidfd (SO_PASSPIDFD on the channel) is no handle of the message */
      if (c->cmsg_type != SCM_RIGHTS) {
        close(fd);
        continue;
      }
      (*got)++;
      if (MSG_CMSG_CLOEXEC == 0) (void)hpp_cloexec(fd);
      if (*kept < max) h[(*kept)++] = fd;
      else close(fd);
    }
  }
}


/* A message is one byte: once the channel is readable, it is all there. */
int hp_recvfds (hp_os chan, hp_os *h, size_t max, size_t *n,
                hp_time deadline) {
  struct msghdr msg;
  struct iovec iov;
  unsigned char count = 0;
  size_t space = sizeof(ctlbuf);
  size_t got = 0, kept = 0;
  ctlbuf buf;
  unsigned char *ctl = buf.b;
  ssize_t r;
  int err = 0;
  *n = 0;
  if (HPP_NOTFD(chan)) return EBADF;
  if (deadline != HP_NEVER &&
      (err = hp_ready(chan, HP_READABLE, deadline)) != 0)
    return err;
  /* close-on-exec from birth: no window for a concurrent spawn to leak them */
  do {
    setmsg(&msg, &iov, &count, ctl, space);
    r = recvmsg((int)chan, &msg, MSG_CMSG_CLOEXEC);
  } while ((err = hpp_settle(r, (int)chan, POLLIN)) < 0);
  if (err != 0) return err;
  takefds(&msg, h, max, &got, &kept);
  if (r == 0 && got == 0) return 0;  /* clean end of stream */
  if (msg.msg_flags & MSG_CTRUNC)
    err = EMFILE;  /* the buffer has room for any message: the limit was hit */
  else if (got == 0 || (msg.msg_flags & MSG_TRUNC) || (size_t)count != got)
    err = EBADMSG;  /* not a message from hp_sendfds */
  else if (got > max)
    err = EMSGSIZE;
  if (err != 0) {
    closeall(h, kept);
    return err;
  }
  *n = kept;
  return 0;
}

/* }====================================================== */

#endif
