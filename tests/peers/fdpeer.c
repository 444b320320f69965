/*
** fdpeer - a peer that sends handle messages which hpass.send_handle never
** sends, for the tests of recv_handle.  hpass's message is one byte, the
** number of descriptors, carrying that many descriptors as SCM_RIGHTS.
** The channel's number comes last, as hpass appends it; every mode ends
** by exiting, which closes the channel.
**
**   fdpeer short FD     announce 3 descriptors, attach 1 (the message is
**                       cut short), exit
**   fdpeer extra FD     announce 1 descriptor, attach 3, exit
**   fdpeer bare FD      send the byte 1 with no descriptor, exit
*/
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Send the byte 'count' with 'attach' descriptors of /dev/null. */
static int sendmsgfds (int chan, unsigned char count, int attach) {
  struct msghdr msg;
  struct iovec iov;
  union {                       /* aligned for struct cmsghdr */
    struct cmsghdr h;
    unsigned char b[CMSG_SPACE(8 * sizeof(int))];
  } ctl;
  int i;
  memset(&msg, 0, sizeof(msg));
  memset(&ctl, 0, sizeof(ctl));
  iov.iov_base = &count;
  iov.iov_len = 1;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (attach > 0) {
    struct cmsghdr *c;
    msg.msg_control = ctl.b;
    msg.msg_controllen = CMSG_SPACE((size_t)attach * sizeof(int));
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)attach * sizeof(int));
    for (i = 0; i < attach; i++) {
      int fd = open("/dev/null", O_RDONLY);
      if (fd < 0) return -1;
      memcpy(CMSG_DATA(c) + (size_t)i * sizeof(int), &fd, sizeof(int));
    }
  }
  return sendmsg(chan, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

int main (int argc, char **argv) {
  int chan, r;
  if (argc != 3) {
    fprintf(stderr, "usage: fdpeer short|extra|bare FD\n");
    return 2;
  }
  chan = atoi(argv[2]);
  if (strcmp(argv[1], "short") == 0) r = sendmsgfds(chan, 3, 1);
  else if (strcmp(argv[1], "extra") == 0) r = sendmsgfds(chan, 1, 3);
  else if (strcmp(argv[1], "bare") == 0) r = sendmsgfds(chan, 1, 0);
  else {
    fprintf(stderr, "fdpeer: unknown mode '%s'\n", argv[1]);
    return 2;
  }
  if (r != 0) {
    perror("fdpeer: sendmsg");
    return 1;
  }
  return 0;
}
