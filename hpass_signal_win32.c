/*
** hpass_signal_win32.c - signals as a handle, for Windows: the console's
** control events (hpass.signals).
**
** Windows has no signals to catch; what a console program gets instead
** are control events, delivered by calling the handlers registered with
** SetConsoleCtrlHandler, each time on a new thread.  Three of them are
** signals here: Ctrl+C is "INT", Ctrl+Break "BREAK", and the console
** closing "TERM".  hpass registers one handler while any set is open and
** removes it when the last one closes, so the process's handling is then
** what it was.
**
** The handler runs on its own thread and may take a lock: it queues the
** event in the set that catches it (a count past QMAX entries) and, when
** the queue was empty, writes one byte to the set's pipe, so that the
** pipe's read end, which hpass waits on like any pipe, is readable exactly
** while something waits.  hp_sigtake takes that byte back with the last
** entry.
**
** A console that closes ends the process as soon as the handler returns
** (or after a few seconds, whatever the handler does), so for "TERM" the
** handler waits until the set is closed: the script has that long to
** finish.
*/
#ifdef _WIN32

#include "hpass_win32.h"

/* Entries one set queues in order; more are counted per event. */
#define QMAX    256
#define NEVENTS 3

/* The numbers the names have (MSVC's signal.h: SIGBREAK is 21). */
#define S_INT   2
#define S_BREAK 21
#define S_TERM  15

const hp_signame hp_catchable[] = {
  {"INT", S_INT}, {"BREAK", S_BREAK}, {"TERM", S_TERM}, {NULL, 0}
};

static const int evsig[NEVENTS] = {S_INT, S_BREAK, S_TERM};

typedef struct wset {
  int used;
  HANDLE r, w;                /* the pipe: r is the set's handle */
  unsigned char q[QMAX];      /* event numbers, oldest first */
  size_t head, n;
  unsigned long missed[NEVENTS];  /* past a full queue */
  int woke;                   /* the byte is in the pipe */
} wset;

/* At most one set per event, so NEVENTS sets at most. */
static wset sets[NEVENTS];
static int owner[NEVENTS] = {-1, -1, -1};
static SRWLOCK lock = SRWLOCK_INIT;
static int registered;
static HANDLE termdone;       /* set when the set holding TERM closes */


int hp_err_busy (void) { return ERROR_BUSY; }


static int eventof (int sig) {
  int e;
  for (e = 0; e < NEVENTS; e++)
    if (evsig[e] == sig) return e;
  return -1;
}


/* Whether the set has anything waiting, queued or counted. */
static int waiting (const wset *s) {
  int e;
  if (s->n > 0) return 1;
  for (e = 0; e < NEVENTS; e++)
    if (s->missed[e] > 0) return 1;
  return 0;
}


/* Queue event e in s (under the lock); the byte when it was empty. */
static void push (wset *s, int e) {
  if (s->n < QMAX) s->q[(s->head + s->n++) % QMAX] = (unsigned char)e;
  else s->missed[e]++;
  if (!s->woke) {
    DWORD done;
    unsigned char b = 1;
    if (WriteFile(s->w, &b, 1, &done, NULL) && done == 1) s->woke = 1;
  }
}


static BOOL WINAPI onctrl (DWORD type) {
  int e = type == CTRL_C_EVENT ? 0 : type == CTRL_BREAK_EVENT ? 1 :
          type == CTRL_CLOSE_EVENT ? 2 : -1;
  int hold = 0;
  if (e < 0) return FALSE;
  AcquireSRWLockExclusive(&lock);
  if (owner[e] < 0) {
    ReleaseSRWLockExclusive(&lock);
    return FALSE;  /* not ours: the next handler, or the default */
  }
  push(&sets[owner[e]], e);
  hold = (e == 2 && termdone != NULL);
  ReleaseSRWLockExclusive(&lock);
  if (hold) WaitForSingleObject(termdone, INFINITE);
  return TRUE;
}


int hp_sigopen (hp_signals *s, int *busy) {
  int i, k = -1, err, ev[HP_MAXSIGS];
  HANDLE r, w;
  s->h = s->w = HP_NOHANDLE;
  if (s->n < 1 || s->n > NEVENTS) return ERROR_INVALID_PARAMETER;
  for (i = 0; i < s->n; i++)
    if ((ev[i] = eventof(s->sig[i])) < 0) return ERROR_INVALID_PARAMETER;
  AcquireSRWLockExclusive(&lock);
  for (i = 0; i < s->n; i++)
    if (owner[ev[i] % NEVENTS] >= 0) {
      *busy = s->sig[i];
      ReleaseSRWLockExclusive(&lock);
      return ERROR_BUSY;
    }
  for (i = 0; i < NEVENTS && k < 0; i++)
    if (!sets[i].used) k = i;
  if (k < 0) {  /* cannot be: each set holds an event of its own */
    ReleaseSRWLockExclusive(&lock);
    return ERROR_BUSY;
  }
  if (termdone == NULL &&
      (termdone = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL) {
    err = hpw_lasterr();
    ReleaseSRWLockExclusive(&lock);
    return err;
  }
  if (!CreatePipe(&r, &w, NULL, 4096)) {  /* not inheritable */
    err = hpw_lasterr();
    ReleaseSRWLockExclusive(&lock);
    return err;
  }
  if (!registered && !SetConsoleCtrlHandler(onctrl, TRUE)) {
    err = hpw_lasterr();
    ReleaseSRWLockExclusive(&lock);
    CloseHandle(r);
    CloseHandle(w);
    return err;
  }
  registered = 1;
  memset(&sets[k], 0, sizeof(sets[k]));
  sets[k].used = 1;
  sets[k].r = r;
  sets[k].w = w;
  for (i = 0; i < s->n; i++) {
    int e = ev[i] % NEVENTS;
    owner[e] = k;
    if (e == 2) ResetEvent(termdone);
    s->unblocked[i] = 0;
  }
  s->h = hpw_fromhandle(r);
  s->w = hpw_fromhandle(w);
  ReleaseSRWLockExclusive(&lock);
  return 0;
}


/* The set whose read end s->h is (under the lock). */
static wset *setof (const hp_signals *s) {
  int k;
  for (k = 0; k < NEVENTS; k++)
    if (sets[k].used && hpw_fromhandle(sets[k].r) == s->h) return &sets[k];
  return NULL;
}


int hp_sigtake (hp_signals *s, int *sig) {
  wset *x;
  int e = -1;
  *sig = 0;
  AcquireSRWLockExclusive(&lock);
  if ((x = setof(s)) == NULL) {
    ReleaseSRWLockExclusive(&lock);
    return ERROR_INVALID_HANDLE;
  }
  if (x->n > 0) {
    e = x->q[x->head];
    x->head = (x->head + 1) % QMAX;
    x->n--;
  }
  else {
    for (e = 0; e < NEVENTS && x->missed[e] == 0; e++) ;
    if (e < NEVENTS) x->missed[e]--;
    else e = -1;
  }
  if (!waiting(x) && x->woke) {  /* the byte goes with the last one */
    unsigned char b;
    DWORD done;
    if (ReadFile(x->r, &b, 1, &done, NULL)) x->woke = 0;
  }
  ReleaseSRWLockExclusive(&lock);
  if (e >= 0) *sig = evsig[e];
  return 0;
}


int hp_sigclose (hp_signals *s) {
  wset *x;
  int e, any = 0;
  if (s->h == HP_NOHANDLE) return 0;
  AcquireSRWLockExclusive(&lock);
  x = setof(s);
  for (e = 0; e < NEVENTS; e++) {
    if (x != NULL && owner[e] == (int)(x - sets)) {
      owner[e] = -1;
      if (e == 2) SetEvent(termdone);  /* a held TERM handler returns */
    }
    if (owner[e] >= 0) any = 1;
  }
  if (!any && registered) {
    SetConsoleCtrlHandler(onctrl, FALSE);
    registered = 0;
  }
  if (x != NULL) {
    CloseHandle(x->r);
    CloseHandle(x->w);
    x->used = 0;
  }
  ReleaseSRWLockExclusive(&lock);
  s->h = s->w = HP_NOHANDLE;
  return 0;
}

#endif
