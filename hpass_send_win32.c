/*
** hpass_send_win32.c - hp_sendfds and hp_recvfds on Windows: passing
** handles to a process that already runs, through a rendezvous of our
** own (Windows has no SCM_RIGHTS).
**
** The whole file is empty on other platforms, so a build that lists every
** source file still works there.
*/
#ifdef _WIN32

/* rand_s, for the names of the pipes that pass handles */
#define _CRT_RAND_S

#include "hpass_win32.h"

/*
** {======================================================
** Passing handles to a running process
** =======================================================
*/

/*
** Windows has no SCM_RIGHTS.  A handle reaches another process through
** DuplicateHandle, and a socket through WSADuplicateSocket (Winsock must
** make the copy: a socket copied with DuplicateHandle may be unknown to
** Winsock in the target).  Both need the receiver's process id, and the
** peer of a loopback socket has none that can be learnt reliably (wine
** reports 0 for it), while a pid exchange on the channel itself would
** tangle with the user's own bytes.  So each message gets its own
** rendezvous, a one-instance named pipe:
**
**   sender    makes private, non-inheritable copies of the handles (they
**             outlive the caller's, which may be closed at once), creates
**             the pipe, writes the message and leaves a thread to serve
**             the pipe;
**   receiver  reads the message, opens the pipe, checks that the process
**             serving it is the sender the message names, and writes its
**             pid and the message's secret;
**   thread    checks the secret and that the pid is the client's as the
**             system reports it, copies each handle into that process
**             (WSADuplicateSocket for sockets, DuplicateHandle for the
**             rest), writes one record per handle, waits until they are
**             read and ends, closing its private copies.
**
** The message is 44 bytes: "hpH2", the sender's pid, the count (4 bytes
** each), 16 random bytes that name the pipe and 16 random bytes of
** secret.  A record is 'S' and a WSAPROTOCOL_INFOW, 'H' and the 8-byte
** handle value in the receiver, or 'E' and a 4-byte error code, after
** which nothing follows.  Integers are little-endian.
**
** Pipe names can be listed, so the name alone keeps no one out.  The
** pipe admits only this process's user, and a client that does not give
** the secret within HELLO_MS is dropped and the pipe waits again: other
** processes of the same user (which could take our handles with
** OpenProcess anyway) and anything they run at lower integrity can delay
** a message, but not take it.  Once the sender has exited, anyone may
** create a pipe of its name; the receiver's check of the server's pid
** keeps the secret (and the receiver's trust) from such a pipe.
**
** Hence the limits: the sender must still be running when the message is
** received, the receiver must run as the same user, and a message nobody
** receives keeps its thread and copies in the sender until it exits.
*/
#define MSGHEAD 44
#define NONCE 16
#define PIPENAME 64
#define HELLO 20         /* what the receiver writes: pid and secret */
#define HELLO_MS 5000    /* how long a client may take to write it */
#define BUSY_TRIES 4     /* times the receiver waits for a busy pipe */

static void put_le (unsigned char *p, unsigned long long v, int n) {
  int i;
  for (i = 0; i < n; i++, v >>= 8)
    p[i] = (unsigned char)(v & 0xff);
}

static unsigned long long get_le (const unsigned char *p, int n) {
  unsigned long long v = 0;
  while (n-- > 0)
    v = (v << 8) | p[n];
  return v;
}

static void pipe_name (wchar_t *out, unsigned long pid,
                       const unsigned char *nonce) {
  static const char hex[] = "0123456789abcdef";
  int i, k = swprintf(out, PIPENAME, L"\\\\.\\pipe\\hpass-%lu-", pid);
  for (i = 0; i < NONCE; i++) {
    out[k++] = (wchar_t)hex[nonce[i] >> 4];
    out[k++] = (wchar_t)hex[nonce[i] & 15];
  }
  out[k] = L'\0';
}

static int random_bytes (unsigned char *b, int n) {
  int i;
  for (i = 0; i < n; i += 4) {
    unsigned int r;
    if (rand_s(&r) != 0)
      return ERROR_GEN_FAILURE;
    put_le(b + i, r, 4);
  }
  return 0;
}


/* One message being served. */
typedef struct sendjob {
  HANDLE pipe;
  HANDLE event;    /* for the pipe's overlapped I/O */
  HMODULE module;  /* holds this DLL in memory while the thread runs */
  unsigned char secret[NONCE];
  size_t n;
  HANDLE copy[HP_MAXFDS];  /* the private copies */
} sendjob;

static void free_job (sendjob *job) {
  size_t i;
  for (i = 0; i < job->n; i++)
    hp_close(hpw_fromhandle(job->copy[i]));
  if (job->pipe != INVALID_HANDLE_VALUE)
    CloseHandle(job->pipe);
  if (job->event != NULL)
    CloseHandle(job->event);
  HeapFree(GetProcessHeap(), 0, job);
}


/*
** The thread's side of the pipe is overlapped, so that reading the hello
** can time out.  pipe_io moves all n bytes or fails; a read that times
** out is cancelled.
*/
static int pipe_io (sendjob *job, int writing, void *b, DWORD n, DWORD ms) {
  DWORD done = 0;
  while (done < n) {
    OVERLAPPED o;
    DWORD k = 0;
    BOOL ok;
    memset(&o, 0, sizeof(o));
    o.hEvent = job->event;
    ResetEvent(job->event);
    ok = writing ? WriteFile(job->pipe, (char *)b + done, n - done, NULL, &o)
                 : ReadFile(job->pipe, (char *)b + done, n - done, NULL, &o);
    if (!ok && GetLastError() != ERROR_IO_PENDING)
      return 0;
    if (WaitForSingleObject(job->event, ms) != WAIT_OBJECT_0) {
      CancelIo(job->pipe);
      GetOverlappedResult(job->pipe, &o, &k, TRUE);
      return 0;
    }
    if (!GetOverlappedResult(job->pipe, &o, &k, FALSE) || k == 0)
      return 0;
    done += k;
  }
  return 1;
}

/*
** Wait for a client; 0 when the pipe is broken for good.  A client that
** came and went before we waited (ERROR_NO_DATA) only needs a disconnect.
*/
static int pipe_accept (sendjob *job) {
  for (;;) {
    OVERLAPPED o;
    DWORD k;
    memset(&o, 0, sizeof(o));
    o.hEvent = job->event;
    ResetEvent(job->event);
    if (ConnectNamedPipe(job->pipe, &o))
      return 1;
    switch (GetLastError()) {
      case ERROR_PIPE_CONNECTED:
        return 1;
      case ERROR_IO_PENDING:
        return GetOverlappedResult(job->pipe, &o, &k, TRUE);
      case ERROR_NO_DATA:
        if (DisconnectNamedPipe(job->pipe)) continue;
        return 0;
      default:
        return 0;
    }
  }
}

/* Comparing every byte: the time taken tells nothing about the secret. */
static int same_secret (const unsigned char *a, const unsigned char *b) {
  unsigned char d = 0;
  int i;
  for (i = 0; i < NONCE; i++)
    d |= (unsigned char)(a[i] ^ b[i]);
  return d == 0;
}


/*
** The record that brings copy x to process pid: 'S' and Winsock's info for
** a socket, 'H' and the handle's value there for anything else, also for
** a socket Winsock cannot copy (WSAENOTSOCK: wine's inherited sockets).
** *target is the process, opened on first need.  0, or the error.
*/
static int make_record (HANDLE x, DWORD pid, HANDLE *target,
                        unsigned char *rec, DWORD *len) {
  HANDLE v;
  if (hpw_is_socket(x)) {
    WSAPROTOCOL_INFOW info;
    if (WSADuplicateSocketW((SOCKET)x, pid, &info) == 0) {
      rec[0] = 'S';
      memcpy(rec + 1, &info, sizeof(info));
      *len = 1 + sizeof(info);
      return 0;
    }
    if (WSAGetLastError() != WSAENOTSOCK)
      return hpw_lastwsaerr();
  }
  if (*target == NULL &&
      (*target = OpenProcess(PROCESS_DUP_HANDLE, FALSE, pid)) == NULL)
    return hpw_lasterr();
  if (!DuplicateHandle(GetCurrentProcess(), x, *target, &v, 0, FALSE,
                       DUPLICATE_SAME_ACCESS))
    return hpw_lasterr();
  rec[0] = 'H';
  put_le(rec + 1, (unsigned long long)hpw_fromhandle(v), 8);
  *len = 9;
  return 0;
}

/*
** The records for process pid.  A failure is reported to the receiver as
** an 'E' record; the copies already made are its to close.
*/
static void hand_over (sendjob *job, DWORD pid) {
  HANDLE target = NULL;
  unsigned char rec[1 + sizeof(WSAPROTOCOL_INFOW)];
  size_t i;
  int err = 0;
  for (i = 0; i < job->n && err == 0; i++) {
    DWORD len;
    if ((err = make_record(job->copy[i], pid, &target, rec, &len)) != 0)
      break;
    if (!pipe_io(job, 1, rec, len, INFINITE))
      err = -1;  /* the receiver has gone */
  }
  if (err > 0) {
    rec[0] = 'E';
    put_le(rec + 1, (unsigned long long)err, 4);
    pipe_io(job, 1, rec, 5, INFINITE);
  }
  /* Wait until everything is read: closing first could discard it. */
  FlushFileBuffers(job->pipe);
  if (target != NULL)
    CloseHandle(target);
}

static DWORD WINAPI serve (LPVOID arg) {
  sendjob *job = (sendjob *)arg;
  HMODULE module = job->module;
  unsigned char hello[HELLO];
  while (pipe_accept(job)) {
    if (pipe_io(job, 0, hello, HELLO, HELLO_MS) &&
        same_secret(hello + 4, job->secret)) {
      ULONG pid = 0;
      /*
      ** The handles go to the process the system says is the client, and
      ** to none when it cannot say: the pid in the hello is only the
      ** client's claim.
      */
      if (GetNamedPipeClientProcessId(job->pipe, &pid) && pid != 0 &&
          pid == (ULONG)get_le(hello, 4)) {
        hand_over(job, (DWORD)pid);
        break;
      }
    }
    DisconnectNamedPipe(job->pipe);  /* not the receiver: wait again */
  }
  free_job(job);
  FreeLibraryAndExitThread(module, 0);
  return 0;
}


/*
** The thread runs code of this DLL after the Lua state that loaded it may
** have closed and unloaded it: it holds a reference of its own, dropped
** by FreeLibraryAndExitThread.
*/
static int start_serving (sendjob *job) {
  HANDLE thread;
  int err;
  if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
                          (LPCWSTR)(void *)serve, &job->module))
    return hpw_lasterr();
  thread = CreateThread(NULL, 0, serve, job, 0, NULL);
  if (thread == NULL) {
    err = hpw_lasterr();
    FreeLibrary(job->module);
    return err;
  }
  CloseHandle(thread);
  return 0;
}


/* A security descriptor whose DACL admits this process's user alone. */
typedef struct useronly {
  SECURITY_ATTRIBUTES sa;
  SECURITY_DESCRIPTOR sd;
  union { TOKEN_USER user; unsigned char b[128]; } tok;
  union { ACL acl; unsigned char b[128]; } dacl;
} useronly;

static int user_only (useronly *u) {
  HANDLE token;
  DWORD len;
  BOOL ok;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
    return hpw_lasterr();
  ok = GetTokenInformation(token, TokenUser, &u->tok, sizeof(u->tok), &len);
  CloseHandle(token);
  if (!ok ||
      !InitializeAcl(&u->dacl.acl, sizeof(u->dacl), ACL_REVISION) ||
      !AddAccessAllowedAce(&u->dacl.acl, ACL_REVISION, GENERIC_ALL,
                           u->tok.user.User.Sid) ||
      !InitializeSecurityDescriptor(&u->sd, SECURITY_DESCRIPTOR_REVISION) ||
      !SetSecurityDescriptorDacl(&u->sd, TRUE, &u->dacl.acl, FALSE))
    return hpw_lasterr();
  u->sa.nLength = sizeof(u->sa);
  u->sa.lpSecurityDescriptor = &u->sd;
  u->sa.bInheritHandle = FALSE;
  return 0;
}

/* A job with its pipe; the message's name and secret go to msg. */
static int new_job (sendjob **out, unsigned char *msg) {
  sendjob *job = (sendjob *)HeapAlloc(GetProcessHeap(), 0, sizeof(*job));
  wchar_t name[PIPENAME];
  useronly u;
  int err;
  if (job == NULL)
    return ERROR_NOT_ENOUGH_MEMORY;
  job->n = 0;
  job->pipe = INVALID_HANDLE_VALUE;
  job->event = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (job->event == NULL) err = hpw_lasterr();
  else if ((err = random_bytes(msg + 12, NONCE)) == 0 &&
           (err = random_bytes(job->secret, NONCE)) == 0 &&
           (err = user_only(&u)) == 0) {
    memcpy(msg + 12 + NONCE, job->secret, NONCE);
    pipe_name(name, GetCurrentProcessId(), msg + 12);
    /* FIRST_PIPE_INSTANCE: fail rather than join a pipe someone made */
    job->pipe = CreateNamedPipeW(name,
        PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE |
        FILE_FLAG_OVERLAPPED,
        PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
        PIPE_REJECT_REMOTE_CLIENTS, 1, 4096, 4096, 0, &u.sa);
    if (job->pipe == INVALID_HANDLE_VALUE)
      err = hpw_lasterr();
  }
  if (err != 0) {
    free_job(job);
    return err;
  }
  *out = job;
  return 0;
}


int hp_sendfds (hp_os chan, const hp_os *h, size_t n) {
  unsigned char msg[MSGHEAD];
  size_t sent = 0;
  sendjob *job;
  int err;
  if (n == 0 || n > HP_MAXFDS)
    return hp_err_inval();
  if ((err = new_job(&job, msg)) != 0)
    return err;
  for (job->n = 0; job->n < n; job->n++) {
    HANDLE x;
    if ((err = hpw_tohandle(h[job->n], &x)) != 0 ||
        (err = hpw_dup_local(x, 0, &job->copy[job->n])) != 0) {
      free_job(job);
      return err;
    }
  }
  memcpy(msg, "hpH2", 4);
  put_le(msg + 4, GetCurrentProcessId(), 4);
  put_le(msg + 8, n, 4);
  while (sent < MSGHEAD && err == 0) {
    size_t done;
    err = hp_write(chan, msg + sent, MSGHEAD - sent, &done);
    sent += done;
  }
  /*
  ** Only a message that went out whole gets its thread.  Otherwise, and
  ** if the thread cannot start, closing the pipe makes a receiver fail
  ** at once instead of waiting for handles that never come.
  */
  if (err == 0)
    err = start_serving(job);
  if (err != 0)
    free_job(job);
  return err;
}


/*
** {------------------------------------------------------
** Messages cut by a deadline
**
** A message is 44 bytes and a rendezvous, not one system call, so a
** deadline can pass partway: after some of its bytes, or while another
** client holds the sender's pipe.  What was taken of it is kept, per
** channel, and the next hp_recvfds on that channel goes on from there.
** A kept message goes when hp_close closes its channel, and is not used
** for a socket whose two addresses changed: a channel closed by someone
** else, whose value now names another socket.
** -------------------------------------------------------
*/

typedef struct cutmsg {
  struct cutmsg *next;
  HANDLE chan;
  struct sockaddr_storage ends[2];  /* this end and the peer, if told */
  int nends;
  size_t got;
  unsigned char msg[MSGHEAD];
} cutmsg;

static SRWLOCK cut_lock = SRWLOCK_INIT;
static cutmsg *cuts;

/* The socket's two addresses in c->ends, when the system tells them. */
static void ends_of (HANDLE chan, cutmsg *c) {
  int len0 = (int)sizeof(c->ends[0]), len1 = (int)sizeof(c->ends[1]);
  memset(c->ends, 0, sizeof(c->ends));
  c->nends = getsockname((SOCKET)chan, (struct sockaddr *)&c->ends[0],
                         &len0) == 0 &&
             getpeername((SOCKET)chan, (struct sockaddr *)&c->ends[1],
                         &len1) == 0 ? 2 : 0;
}

/* Unlink and return the message kept for chan, or NULL. */
static cutmsg *unlink_cut (HANDLE chan) {
  cutmsg **pp, *c = NULL;
  AcquireSRWLockExclusive(&cut_lock);
  for (pp = &cuts; *pp != NULL; pp = &(*pp)->next) {
    if ((*pp)->chan == chan) {
      c = *pp;
      *pp = c->next;
      break;
    }
  }
  ReleaseSRWLockExclusive(&cut_lock);
  return c;
}

static void forget_channel (HANDLE chan) {
  cutmsg *c = unlink_cut(chan);
  if (c != NULL) HeapFree(GetProcessHeap(), 0, c);
}

/* What was kept for chan (into msg, *got bytes): 0 bytes when nothing. */
static void take_cut (HANDLE chan, unsigned char *msg, size_t *got) {
  cutmsg *c = unlink_cut(chan), now;
  *got = 0;
  if (c == NULL) return;
  ends_of(chan, &now);
  if (c->nends == now.nends &&
      memcmp(c->ends, now.ends, sizeof(now.ends)) == 0) {
    memcpy(msg, c->msg, c->got);
    *got = c->got;
  }
  HeapFree(GetProcessHeap(), 0, c);
}

/* Keep got bytes of msg for the next call on chan (lost without memory). */
static void keep_cut (HANDLE chan, const unsigned char *msg, size_t got) {
  cutmsg *c = (cutmsg *)HeapAlloc(GetProcessHeap(), 0, sizeof(cutmsg));
  if (c == NULL) return;
  c->chan = chan;
  ends_of(chan, c);
  c->got = got;
  memcpy(c->msg, msg, got);
  hpw_on_close(forget_channel);
  AcquireSRWLockExclusive(&cut_lock);
  c->next = cuts;
  cuts = c;
  ReleaseSRWLockExclusive(&cut_lock);
}

/* }------------------------------------------------------ */


/*
** The rest of the message's bytes (from *got up to MSGHEAD): 0, or
** ERROR_INVALID_DATA if the stream ends first, or the deadline's timeout.
*/
static int read_msg (hp_os chan, unsigned char *b, size_t *got,
                     hp_time deadline) {
  while (*got < MSGHEAD) {
    size_t done;
    int err;
    if (deadline != HP_NEVER &&
        (err = hp_ready(chan, HP_READABLE, deadline)) != 0)
      return err;
    if ((err = hp_read(chan, b + *got, MSGHEAD - *got, &done)) != 0)
      return err;
    if (done == 0) return ERROR_INVALID_DATA;
    *got += done;
  }
  return 0;
}


/*
** The receiver's side of the pipe is overlapped, so that each read and
** write waits no longer than the deadline.  All n bytes move, or the
** error (ERROR_BROKEN_PIPE when the sender hung up, ERROR_TIMEOUT).
*/
static int pipe_move (HANDLE f, HANDLE ev, int writing, void *b, DWORD n,
                      hp_time deadline) {
  DWORD done = 0;
  while (done < n) {
    OVERLAPPED o;
    DWORD k = 0;
    BOOL ok;
    memset(&o, 0, sizeof(o));
    o.hEvent = ev;
    ResetEvent(ev);
    ok = writing ? WriteFile(f, (char *)b + done, n - done, NULL, &o)
                 : ReadFile(f, (char *)b + done, n - done, NULL, &o);
    if (!ok && GetLastError() != ERROR_IO_PENDING)
      return hpw_lasterr();
    if (WaitForSingleObject(ev, hpw_left(deadline)) != WAIT_OBJECT_0) {
      CancelIoEx(f, &o);
      GetOverlappedResult(f, &o, &k, TRUE);
      return ERROR_TIMEOUT;
    }
    if (!GetOverlappedResult(f, &o, &k, FALSE))
      return hpw_lasterr();
    if (k == 0)
      return ERROR_BROKEN_PIPE;
    done += k;
  }
  return 0;
}

/*
** Open the sender's pipe.  It has one instance, busy while some other
** client holds it (for at most HELLO_MS, unless that client is the
** receiver of the message): wait for it until the deadline, or without
** one a few times.
*/
static int open_pipe (const wchar_t *name, hp_time deadline, HANDLE *out) {
  int tries;
  for (tries = 0; ; tries++) {
    DWORD ms = deadline == HP_NEVER ? 2 * HELLO_MS : hpw_left(deadline);
    *out = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                       OPEN_EXISTING, FILE_FLAG_OVERLAPPED |
                       SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    if (*out != INVALID_HANDLE_VALUE)
      return 0;
    if (GetLastError() != ERROR_PIPE_BUSY ||
        (deadline == HP_NEVER && tries == BUSY_TRIES))
      return hpw_lasterr();
    if (ms == 0)
      return ERROR_TIMEOUT;
    WaitNamedPipeW(name, ms);  /* ms > 0: 0 would mean the pipe's default */
  }
}

/* ERROR_ACCESS_DENIED unless the pipe is served by process pid. */
static int check_server (HANDLE pipe, ULONG pid) {
  ULONG server = 0;
  if (!GetNamedPipeServerProcessId(pipe, &server))
    return hpw_lasterr();
  return server == pid ? 0 : ERROR_ACCESS_DENIED;
}

/*
** One record: its kind in rec[0] and its body after it.  0, or an error:
** the sender's, from an 'E' record, or the pipe's.
*/
static int read_record (HANDLE pipe, HANDLE ev, unsigned char *rec,
                        hp_time deadline) {
  DWORD body;
  int err = pipe_move(pipe, ev, 0, rec, 1, deadline);
  if (err != 0)
    return err;
  body = rec[0] == 'S' ? sizeof(WSAPROTOCOL_INFOW) : rec[0] == 'H' ? 8 :
         rec[0] == 'E' ? 4 : 0;
  if (body == 0)
    return ERROR_INVALID_DATA;
  if ((err = pipe_move(pipe, ev, 0, rec + 1, body, deadline)) != 0)
    return err;
  if (rec[0] == 'E')
    return (err = (int)get_le(rec + 1, 4)) != 0 ? err : ERROR_GEN_FAILURE;
  return 0;
}

/*
** Take the records from the sender's pipe.  Every handle a record brings
** is already ours, so each is kept (up to max) or closed, whatever fails
** on the way: the first error is the result.
*/
static int take_records (HANDLE pipe, HANDLE ev, size_t count, hp_os *h,
                         size_t max, size_t *kept, hp_time deadline) {
  unsigned char rec[1 + sizeof(WSAPROTOCOL_INFOW)];
  size_t i;
  int err = 0;
  for (i = 0; i < count; i++) {
    WSAPROTOCOL_INFOW info;
    HANDLE x;
    int e = read_record(pipe, ev, rec, deadline);
    if (e != 0)  /* no more records come */
      return err != 0 ? err : e;
    if (rec[0] == 'H')
      x = (HANDLE)(uintptr_t)get_le(rec + 1, 8);
    else {
      memcpy(&info, rec + 1, sizeof(info));  /* rec + 1 is not aligned */
      if ((e = hpw_take_socket(&info, 0, &x)) != 0) {
        if (err == 0) err = e;
        continue;  /* the next records still bring handles */
      }
    }
    if (*kept < max)
      h[(*kept)++] = hpw_fromhandle(x);
    else
      hp_close(hpw_fromhandle(x));
  }
  return err;
}


/*
** The rendezvous for a whole message: open the pipe it names, make sure
** the sender serves it, say who we are, take the records.  ERROR_TIMEOUT
** before the pipe was opened leaves the message untouched (*opened 0).
*/
static int rendezvous (const unsigned char *msg, hp_os *h, size_t max,
                       size_t *kept, hp_time deadline, int *opened) {
  unsigned char hello[HELLO];
  wchar_t name[PIPENAME];
  HANDLE pipe, ev;
  ULONG pid = (ULONG)get_le(msg + 4, 4);
  int err;
  *opened = 0;
  pipe_name(name, pid, msg + 12);
  if ((err = open_pipe(name, deadline, &pipe)) != 0)
    return err;
  *opened = 1;
  if ((ev = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL) {
    err = hpw_lasterr();
    CloseHandle(pipe);
    return err;
  }
  /*
  ** Once the sender has exited, any local process can create a pipe of
  ** that name: the secret goes only to the process the message names.
  */
  put_le(hello, GetCurrentProcessId(), 4);
  memcpy(hello + 4, msg + 12 + NONCE, NONCE);
  if ((err = check_server(pipe, pid)) == 0 &&
      (err = pipe_move(pipe, ev, 1, hello, HELLO, deadline)) == 0)
    err = take_records(pipe, ev, (size_t)get_le(msg + 8, 4), h, max, kept,
                       deadline);
  CloseHandle(pipe);
  CloseHandle(ev);
  return err;
}


int hp_recvfds (hp_os chan, hp_os *h, size_t max, size_t *n,
                hp_time deadline) {
  unsigned char msg[MSGHEAD];
  size_t count, got, i, kept = 0;
  HANDLE x;
  int err, opened;
  *n = 0;
  if ((err = hpw_tohandle(chan, &x)) != 0)
    return err;
  take_cut(x, msg, &got);
  err = read_msg(chan, msg, &got, deadline);
  if (err == ERROR_INVALID_DATA && got == 0)
    return 0;  /* the peer closed between messages */
  if (err == ERROR_TIMEOUT && got > 0)
    keep_cut(x, msg, got);
  if (err != 0)
    return err;
  count = (size_t)get_le(msg + 8, 4);
  if (memcmp(msg, "hpH2", 4) != 0 || count == 0 || count > HP_MAXFDS)
    return ERROR_INVALID_DATA;
  err = rendezvous(msg, h, max, &kept, deadline, &opened);
  if (err == ERROR_TIMEOUT && !opened)
    keep_cut(x, msg, MSGHEAD);
  if (err == 0 && count > max)
    err = WSAEMSGSIZE;
  if (err != 0) {
    for (i = 0; i < kept; i++) hp_close(h[i]);
    return err;
  }
  *n = kept;
  return 0;
}

/* }====================================================== */

#endif
