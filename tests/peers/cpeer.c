/*
** cpeer - a C program on the other side of the hpass protocol, doing
** exactly what the FAQ's example does: read(fd, &i, sizeof(int)) and
** write(fd, &i, sizeof(int)) of native ints.
**
**   cpeer read COUNT FD     read COUNT ints, print one per line
**   cpeer write FIRST STEP COUNT FD   write FIRST, FIRST+STEP, ...
**   cpeer fds              print this process's open descriptors
*/
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int readall (int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

int main (int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "read") == 0) {
    int count = atoi(argv[2]), fd = atoi(argv[3]), i, v;
    for (i = 0; i < count; i++) {
      if (readall(fd, &v, sizeof(int)) != 0) return 2;
      printf("%d\n", v);
    }
    return 0;
  }
  if (argc == 6 && strcmp(argv[1], "write") == 0) {
    int v = atoi(argv[2]), step = atoi(argv[3]), count = atoi(argv[4]);
    int fd = atoi(argv[5]), i;
    for (i = 0; i < count; i++, v += step)
      if (write(fd, &v, sizeof(int)) != (ssize_t)sizeof(int)) return 2;
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "fds") == 0) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    if (d == NULL) return 2;
    while ((e = readdir(d)) != NULL)
      if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
        printf("%s\n", e->d_name);
    closedir(d);
    return 0;
  }
  fprintf(stderr, "usage: cpeer read COUNT FD | write FIRST STEP COUNT FD | fds\n");
  return 64;
}
