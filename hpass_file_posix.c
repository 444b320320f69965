/*
** hpass_file_posix.c - Lua files on POSIX: the hp_f* functions of
** hpass_sys.h, on the C library's stdio.
*/
#ifndef _WIN32

#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE     /* fileno, fdopen */
#endif

#include "hpass_posix.h"

#include <errno.h>
#include <stdio.h>
#if defined(__linux__) && !defined(__GLIBC__)
#include <stdio_ext.h>     /* __freadahead (musl) */
#endif
#include <unistd.h>

#include "hpass_sys.h"


/*
** {======================================================
** C streams
** =======================================================
*/

int hp_fromfile (FILE *f, hp_os *h) {
  int fd = fileno(f);
  if (fd < 0) return errno ? errno : EBADF;
  *h = fd;
  return 0;
}


int hp_fflush (FILE *f) {
  hpp_nosigpipe s;
  int r, err;
  /*
  ** A stream that holds input has no output to write.  Flushing it seeks
  ** the descriptor back over that input where it can; where it cannot (a
  ** pipe), musl drops the input and glibc keeps it.  So it is left alone.
  */
  if (hp_freadahead(f) > 0 && lseek(fileno(f), 0, SEEK_CUR) < 0) return 0;
  hpp_nosigpipe_begin(&s);
  errno = 0;
  r = fflush(f);
  err = errno;
  hpp_nosigpipe_end(&s, r != 0 && err == EPIPE);
  if (r == 0) return 0;
  return err != 0 ? err : EIO;
}


/*
** Input a stream holds: stdio has no standard call for it, so each C
** library is asked in its own terms (musl and the BSDs export one; glibc's
** FILE is a public struct whose read pointers say it).
*/
size_t hp_freadahead (FILE *f) {
#if defined(__GLIBC__)
  if (f->_IO_read_ptr == NULL || f->_IO_read_end <= f->_IO_read_ptr)
    return 0;
  return (size_t)(f->_IO_read_end - f->_IO_read_ptr);
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || \
      defined(__OpenBSD__) || defined(__DragonFly__)
  return f->_r > 0 ? (size_t)f->_r : 0;
#elif defined(__linux__)
  return __freadahead(f);  /* musl */
#else
  (void)f;
  return 0;
#endif
}


size_t hp_ftake (FILE *f, void *buf, size_t n) {
  size_t k = hp_freadahead(f);
  if (k > n) k = n;
  return k == 0 ? 0 : fread(buf, 1, k, f);
}


FILE *hp_tofile (hp_os h, const char *mode, int *err) {
  FILE *f = fdopen((int)h, mode);
  if (f == NULL) *err = errno;
  return f;
}


int hp_fclose (FILE *f) {
  return fclose(f);
}

/* }====================================================== */

#endif
