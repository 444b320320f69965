/*
** hpass_win32.h - what the Windows files of hpass share: hpass_io_win32.c
** (the OS interface) and hpass_send_win32.c (passing handles to a
** running process).  Not part of the OS interface (see hpass_sys.h).
*/
#ifndef HPASS_WIN32_H
#define HPASS_WIN32_H

#ifdef _WIN32

/*
** Windows 8 / Server 2012 is the oldest system hpass supports: before it,
** console handles are pseudo-handles, which CreateProcessW refuses in a
** handle list (ERROR_NO_SYSTEM_RESOURCES), so a child of a console parent
** could not be started.
*/
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0602
#endif

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "hpass_sys.h"

/*
** Refusals of our own.  Bit 29 marks a code as an application's, so no
** system code can collide with these; hp_strerror has their words.
*/
#define HPW_ERR_BATCH    0x20000001  /* the program is a batch file */
#define HPW_ERR_ENVCASE  0x20000002  /* two env names differ only in case */
#define HPW_ERR_CRT      0x20000003  /* Lua's C runtime cannot be found */

/* The last error, never 0: a failure must not look like success. */
HP_INTERNAL int hpw_lasterr (void);
HP_INTERNAL int hpw_lastwsaerr (void);

/* The HANDLE in an hp_os (ERROR_INVALID_HANDLE for values <= 0). */
HP_INTERNAL int hpw_tohandle (hp_os h, HANDLE *out);
HP_INTERNAL hp_os hpw_fromhandle (HANDLE x);

/*
** What a handle is, asked once per call (hpw_classify): a disk file, a
** character device (a console, NUL), an object that is no file (a
** process), a pipe, a socket Winsock knows, or other: a file object that
** is neither, such as a socket Winsock does not report as one (wine's
** inherited sockets, some layered providers).
*/
enum { HPW_FILE, HPW_CHAR, HPW_OBJECT, HPW_PIPE, HPW_SOCKET, HPW_OTHER };

typedef struct hpw_kind {
  int kind;         /* HPW_* */
  int overlapped;   /* opened for overlapped I/O (pipes, files, other) */
  int nowait;       /* a pipe in PIPE_NOWAIT mode */
} hpw_kind;

HP_INTERNAL void hpw_classify (HANDLE x, hpw_kind *k);
HP_INTERNAL int hpw_is_socket (HANDLE x);

/*
** NtQueryInformationFile of class cls (HPW_*_INFO) about x into buf: 0, or
** nonzero when the system does not answer.
*/
#define HPW_ACCESS_INFO 8       /* FileAccessInformation */
#define HPW_MODE_INFO 16        /* FileModeInformation */
HP_INTERNAL int hpw_queryfile (HANDLE x, void *buf, unsigned long size,
                               int cls);

/* The longest pause of a Windows wait that polls (hp_backoff), in ms. */
#define HPW_PAUSE 16

/* Milliseconds left before a deadline: INFINITE for none, 0 once passed. */
HP_INTERNAL DWORD hpw_left (hp_time deadline);

/* hp_close tells the hook set here of each handle it closes (its value
** is then free), so a layer above can forget what it kept for it. */
typedef void (*hpw_closehook) (HANDLE x);
HP_INTERNAL void hpw_on_close (hpw_closehook f);

/* A socket of our own for the one in info (made for this process). */
HP_INTERNAL int hpw_take_socket (WSAPROTOCOL_INFOW *info, int inherit,
                                 HANDLE *out);

/* A copy of x in this process, by Winsock for a socket. */
HP_INTERNAL int hpw_dup_local (HANDLE x, int inherit, HANDLE *out);

#endif

#endif
