/*
** hpass_spawn_win32.c - starting a child on Windows: hp_spawn of
** hpass_sys.h.  The command line as the C runtime splits it, the
** environment block, the program found without CreateProcessW's own
** search, the job object (made here, and killed and ended here too:
** hp_killgroup, hp_endgroup), and CreateProcessW with a list of the
** handles the child may inherit.  Waiting for the child and killing it
** alone are in hpass_io_win32.c.
**
** The whole file is empty on other platforms, so a build that lists every
** source file still works there.
*/
#ifdef _WIN32

#include "hpass_win32.h"


/*
** {======================================================
** The command line
** =======================================================
*/

/*
** Length of one argument on the command line, written to out unless it is
** NULL, quoted the way the MSVC C runtime and CommandLineToArgvW split a
** command line: inside quotes, backslashes are literal except in front of
** a quote, where 2n backslashes + quote mean n backslashes and the end of
** the quoted part, and 2n+1 mean n backslashes and a literal quote.  So a
** run of backslashes is doubled before a quote (ours or a literal one)
** and kept as it is elsewhere.  The bytes are UTF-8: quoting only looks at
** ASCII, which never occurs inside a multi-byte sequence.
*/
static size_t quote_arg (char *out, const char *a) {
  size_t len = 0, bs = 0, i;
  const char *s;
  if (*a != '\0' && strpbrk(a, " \t\n\v\"") == NULL) {
    len = strlen(a);
    if (out) memcpy(out, a, len);
    return len;
  }
#define PUT(c) do { if (out) out[len] = (c); len++; } while (0)
  PUT('"');
  for (s = a; ; s++) {
    if (*s == '\\') {
      bs++;
      continue;
    }
    if (*s == '\0' || *s == '"') {
      for (i = 0; i < 2 * bs + (*s == '"'); i++) PUT('\\');
      if (*s == '\0') break;
      PUT('"');
    }
    else {
      for (i = 0; i < bs; i++) PUT('\\');
      PUT(*s);
    }
    bs = 0;
  }
  PUT('"');
#undef PUT
  return len;
}

/*
** The program name is read by different rules: up to the next quote when
** it starts with one, else up to white space, with backslashes always
** literal.  File names cannot hold quotes, so it is quoted whole, as is,
** when it has white space (the caller has already rejected quotes).
*/
static size_t quote_prog (char *out, const char *a) {
  size_t len = strlen(a);
  if (*a != '\0' && strpbrk(a, " \t") == NULL) {
    if (out) memcpy(out, a, len);
    return len;
  }
  if (out) {
    out[0] = '"';
    memcpy(out + 1, a, len);
    out[len + 1] = '"';
  }
  return len + 2;
}


/* UTF-8 (NUL-terminated) to UTF-16 in out, or just the length with out NULL. */
static int widen (const char *s, wchar_t *out, int cap, int *len) {
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, out, cap);
  *len = 0;
  if (n == 0)
    return hpw_lasterr();
  *len = n;  /* counts the terminating NUL */
  return 0;
}


/*
** {------------------------------------------------------
** The environment block
** -------------------------------------------------------
*/

/*
** A given environment keeps these of the parent's entries unless it sets
** them itself: SystemRoot (Winsock and other system DLLs fail without it,
** WSAStartup with error 10106) and the per-drive current directories
** "=A:" .. "=Z:" that cmd.exe and drive-relative paths use.
*/
#define NCARRY 27

static void carry_name (int i, wchar_t name[11]) {
  if (i == 0) {
    wcscpy(name, L"SystemRoot");
    return;
  }
  name[0] = L'=';
  name[1] = (wchar_t)(L'A' + i - 1);
  name[2] = L':';
  name[3] = L'\0';
}

/* Length of an entry's name: up to the first '=' after the first unit. */
static int env_namelen (const wchar_t *e) {
  const wchar_t *eq = e[0] != L'\0' ? wcschr(e + 1, L'=') : NULL;
  return eq != NULL ? (int)(eq - e) : (int)wcslen(e);
}

/* Names compare as Windows compares them: ordinal, ignoring case. */
static int env_cmp (const wchar_t *a, int la, const wchar_t *b, int lb) {
  return CompareStringOrdinal(a, la, b, lb, TRUE) - CSTR_EQUAL;
}

static int env_order (const void *x, const void *y) {
  const wchar_t *a = *(const wchar_t *const *)x;
  const wchar_t *b = *(const wchar_t *const *)y;
  return env_cmp(a, env_namelen(a), b, env_namelen(b));
}

/* The value of name among the n entries of e, or NULL. */
static const wchar_t *env_find (wchar_t *const *e, size_t n,
                                const wchar_t *name) {
  int ln = (int)wcslen(name);
  size_t i;
  for (i = 0; i < n; i++)
    if (env_namelen(e[i]) == ln && env_cmp(e[i], ln, name, ln) == 0)
      return e[i] + ln + 1;
  return NULL;
}

/* }------------------------------------------------------ */


/*
** Everything hp_spawn allocates, all of it before any OS resource, so that
** running out of memory leaves nothing to undo.
*/
typedef struct spawn_mem {
  char *cmd8;                /* UTF-8 command line */
  size_t cmd8cap;
  wchar_t *cmd;              /* UTF-16 command line (CreateProcessW
                                writes to it) */
  wchar_t *envs;             /* the entries of a given environment */
  wchar_t **envp;            /* pointers to them, sorted */
  size_t nenv;
  wchar_t *env;              /* UTF-16 environment block, or NULL */
  const wchar_t *path;       /* the PATH programs are looked up in */
  wchar_t *name;             /* the program as given */
  wchar_t *cand;             /* a candidate file (cap units) */
  wchar_t *prog;             /* the program found (cap units) */
  size_t cap;
  wchar_t *cwd;              /* UTF-16 directory, or NULL */
  HANDLE *orig;              /* distinct handles to pass on */
  HANDLE *dup;               /* their inheritable duplicates (NULL: none) */
  HANDLE *list;              /* the duplicates that exist, for the list */
  LPPROC_THREAD_ATTRIBUTE_LIST attrs;
  size_t n;                  /* handles in orig (and dup) */
  size_t nreq;               /* of them, those the caller named */
  size_t nlist;              /* duplicates in list */
  int listed;                /* attrs was initialized */
  HANDLE stdh[3];            /* the child's standard handles (ours) */
} spawn_mem;

/* Room for a handle value in decimal. */
#define NUMLEN 24

/* The longest path Windows takes, in UTF-16 units. */
#define LONGPATH 32768

/* alloc never returns 0 bytes; a NULL means out of memory */
#define ALLOC(p, size)  ((p) = alloc(ud, (size) > 0 ? (size) : 1), (p) == NULL)

/* A widened copy of s in memory from alloc. */
static int walloc (const char *s, wchar_t **out, hp_alloc alloc, void *ud) {
  int err, len;
  if ((err = widen(s, NULL, 0, &len)) != 0)
    return err;
  if (ALLOC(*out, (size_t)len * sizeof(wchar_t)))
    return ERROR_NOT_ENOUGH_MEMORY;
  return widen(s, *out, len, &len);
}

/*
** The block CreateProcessW wants: the given entries plus the carried ones,
** sorted by name ignoring case, as Windows keeps its own (some programs
** search it by bisection), then one more NUL.  Two names that differ only
** in case would leave it to chance which one the child reads, so such an
** environment is refused.
*/
static int env_block (const char *const *envp, spawn_mem *m,
                      hp_alloc alloc, void *ud) {
  size_t units = 1, ne, i, used = 0;
  wchar_t name[11], *w;
  int err, len;
  for (ne = 0; envp[ne] != NULL; ne++) {
    /* an empty string would end the block early */
    if (envp[ne][0] == '\0')
      return hp_err_inval();
    if ((err = widen(envp[ne], NULL, 0, &len)) != 0)
      return err;
    units += (size_t)len;
  }
  for (i = 0; i < NCARRY; i++) {
    DWORD k;
    carry_name((int)i, name);
    if ((k = GetEnvironmentVariableW(name, NULL, 0)) > 0)
      units += wcslen(name) + 1 + k;
  }
  if (ALLOC(m->envs, units * sizeof(wchar_t)) ||
      ALLOC(m->envp, (ne + NCARRY) * sizeof(wchar_t *)) ||
      ALLOC(m->env, (units + 1) * sizeof(wchar_t)))
    return ERROR_NOT_ENOUGH_MEMORY;
  for (i = 0; i < ne; i++) {
    w = m->envs + used;
    if ((err = widen(envp[i], w, (int)(units - used), &len)) != 0)
      return err;
    m->envp[m->nenv++] = w;
    used += (size_t)len;
  }
  for (i = 0; i < NCARRY; i++) {
    size_t ln;
    DWORD k;
    carry_name((int)i, name);
    ln = wcslen(name);
    if (env_find(m->envp, ne, name) != NULL || used + ln + 2 > units)
      continue;
    w = m->envs + used;
    wmemcpy(w, name, ln);
    w[ln] = L'=';
    k = GetEnvironmentVariableW(name, w + ln + 1,
                                (DWORD)(units - used - ln - 1));
    /* 0: not set (or empty); too big: it grew since it was measured */
    if (k == 0 || k >= units - used - ln - 1)
      continue;
    m->envp[m->nenv++] = w;
    used += ln + 1 + k + 1;
  }
  qsort(m->envp, m->nenv, sizeof(wchar_t *), env_order);
  for (i = 1; i < m->nenv; i++)
    if (env_order(&m->envp[i - 1], &m->envp[i]) == 0)
      return HPW_ERR_ENVCASE;
  w = m->env;
  for (i = 0; i < m->nenv; i++) {
    size_t k = wcslen(m->envp[i]) + 1;
    wmemcpy(w, m->envp[i], k);
    w += k;
  }
  w[0] = L'\0';
  if (w == m->env) w[1] = L'\0';  /* an empty block is two NULs */
  m->path = env_find(m->envp, m->nenv, L"PATH");
  return 0;
}

/* The parent's PATH, when no environment is given. */
static int parent_path (spawn_mem *m, hp_alloc alloc, void *ud) {
  wchar_t *p;
  DWORD k = GetEnvironmentVariableW(L"PATH", NULL, 0);
  if (k == 0)
    return 0;  /* no PATH: bare names are found nowhere */
  if (ALLOC(p, ((size_t)k + 1) * sizeof(wchar_t)))
    return ERROR_NOT_ENOUGH_MEMORY;
  /* it may have changed since: a PATH that grew is taken as missing */
  if (GetEnvironmentVariableW(L"PATH", p, k + 1) <= k)
    m->path = p;
  return 0;
}


/* The program to find: the executable option's, else argv[0]. */
static const char *program (const hp_spawn_req *req) {
  return req->executable != NULL ? req->executable : req->argv[0];
}

static int spawn_alloc (const hp_spawn_req *req, size_t argc,
                        spawn_mem *m, hp_alloc alloc, void *ud) {
  size_t i, total = 0, nmax = req->nhandles + 6;
  int err;
  SIZE_T asize = 0;
  /* The command line, with room for the handle numbers appended. */
  for (i = 0; i < argc + req->nhandles; i++) {
    if (i >= argc)
      total += NUMLEN;
    else
      total += i == 0 ? quote_prog(NULL, req->argv[0])
                      : quote_arg(NULL, req->argv[i]);
    total += 1;  /* a space or the final NUL */
  }
  /* far past CreateProcessW's 32767, and the int of the conversions */
  if (total > 0x1000000)
    return ERROR_FILENAME_EXCED_RANGE;
  m->cmd8cap = total;
  /* UTF-16 never needs more units than UTF-8 needs bytes */
  if (ALLOC(m->cmd8, total) || ALLOC(m->cmd, total * sizeof(wchar_t)))
    return ERROR_NOT_ENOUGH_MEMORY;
  if (req->envp != NULL)
    err = env_block(req->envp, m, alloc, ud);
  else
    err = parent_path(m, alloc, ud);
  if (err != 0)
    return err;
  if ((err = walloc(program(req), &m->name, alloc, ud)) != 0 ||
      (req->cwd != NULL && (err = walloc(req->cwd, &m->cwd, alloc, ud)) != 0))
    return err;
  /*
  ** Room for the longest candidate (a PATH entry or cwd, a separator, the
  ** name, an extension) and for its full path, which may add the current
  ** directory (or a drive's); never more than Windows takes.
  */
  m->cap = wcslen(m->name) + 8 + MAX_PATH + GetCurrentDirectoryW(0, NULL) +
           (m->cwd != NULL ? wcslen(m->cwd) : 0) +
           (m->path != NULL ? wcslen(m->path) : 0);
  if (m->cap > LONGPATH)
    m->cap = LONGPATH;
  if (ALLOC(m->cand, m->cap * sizeof(wchar_t)) ||
      ALLOC(m->prog, m->cap * sizeof(wchar_t)))
    return ERROR_NOT_ENOUGH_MEMORY;
  /* at most: every handle, three given std handles, three of our own */
  if (ALLOC(m->orig, nmax * sizeof(HANDLE)) ||
      ALLOC(m->dup, nmax * sizeof(HANDLE)) ||
      ALLOC(m->list, nmax * sizeof(HANDLE)))
    return ERROR_NOT_ENOUGH_MEMORY;
  /* Asking for the size fails by design, with the size filled in. */
  InitializeProcThreadAttributeList(NULL, 1, 0, &asize);
  if (asize == 0)
    return hpw_lasterr();
  if (ALLOC(m->attrs, asize))
    return ERROR_NOT_ENOUGH_MEMORY;
  return 0;
}

#undef ALLOC


/*
** {------------------------------------------------------
** Finding the program
** -------------------------------------------------------
*/

static int is_sep (wchar_t c) { return c == L'\\' || c == L'/'; }

/* "X:" or a leading separator: not relative to the current directory */
static int is_rooted (const wchar_t *p, size_t n) {
  return (n >= 1 && is_sep(p[0])) || (n >= 2 && p[1] == L':');
}

/* The full path of cand in out, when that is a file (not a directory). */
static int is_file (const wchar_t *cand, wchar_t *out, size_t cap) {
  DWORD n = GetFullPathNameW(cand, (DWORD)cap, out, NULL), a;
  if (n == 0 || n >= cap)
    return 0;
  a = GetFileAttributesW(out);
  return a != INVALID_FILE_ATTRIBUTES && !(a & FILE_ATTRIBUTE_DIRECTORY);
}

/*
** cand holds len units of a file name.  A name with an extension is taken
** as it is; one without gets ".exe", then ".com", the two kinds of file
** CreateProcessW runs by itself.  (PATHEXT's other entries name scripts
** that need an interpreter, or batch files, which are refused.)
*/
static int try_prog (wchar_t *cand, size_t len, wchar_t *out, size_t cap) {
  static const wchar_t *const exts[] = {L".exe", L".com"};
  const wchar_t *base = cand + len;
  int i;
  cand[len] = L'\0';
  while (base > cand && !is_sep(base[-1]) && base[-1] != L':')
    base--;
  if (wcschr(base, L'.') != NULL)
    return is_file(cand, out, cap);
  for (i = 0; i < 2; i++) {
    if (len + 5 > cap)
      return 0;
    wcscpy(cand + len, exts[i]);
    if (is_file(cand, out, cap))
      return 1;
  }
  return 0;
}

/* dir (n units, may be 0) joined with m->name in m->cand, then tried. */
static int try_in (spawn_mem *m, const wchar_t *dir, size_t n) {
  size_t ln = wcslen(m->name);
  if (n + 1 + ln + 5 > m->cap)
    return 0;
  wmemcpy(m->cand, dir, n);
  if (n > 0 && !is_sep(dir[n - 1]) && dir[n - 1] != L':')
    m->cand[n++] = L'\\';
  wmemcpy(m->cand + n, m->name, ln);
  return try_prog(m->cand, n + ln, m->prog, m->cap);
}

/*
** The program to run, as a full path in m->prog.  CreateProcessW's own
** search would look in the parent's executable directory and the current
** directory first, where anyone who can write a file there plants one.
** Here a name with a directory part is a path, and a relative one is
** relative to the cwd option when there is one (where the child starts);
** a bare name is looked for in each absolute directory of PATH -- the
** PATH of the env option when one is given -- and nowhere else.
*/
static int find_prog (spawn_mem *m) {
  const wchar_t *p = m->path;
  size_t ln = wcslen(m->name);
  if (wcspbrk(m->name, L"\\/:") != NULL) {
    if (m->cwd != NULL && !is_rooted(m->name, ln))
      return try_in(m, m->cwd, wcslen(m->cwd)) ? 0 : ERROR_FILE_NOT_FOUND;
    return try_in(m, L"", 0) ? 0 : ERROR_FILE_NOT_FOUND;
  }
  while (p != NULL && *p != L'\0') {
    const wchar_t *d = p, *e = wcschr(p, L';');
    size_t n = e != NULL ? (size_t)(e - p) : wcslen(p);
    p = e != NULL ? e + 1 : p + n;
    if (n >= 2 && d[0] == L'"' && d[n - 1] == L'"') {
      d++;
      n -= 2;
    }
    /* "" and "." and other relative entries mean the current directory */
    if (n >= 3 && (is_sep(d[0]) || (d[1] == L':' && is_sep(d[2]))) &&
        try_in(m, d, n))
      return 0;
  }
  return ERROR_FILE_NOT_FOUND;
}

/*
** cmd.exe runs a batch file, and it splits the command line by rules of
** its own (with %VAR% expansion and & | < > ^ as operators), which no
** quoting for the C runtime survives.  Windows picks cmd.exe by the
** extension, ignoring its case, the dots and spaces it drops from the end
** of a name, and a stream suffix (x.bat::$DATA).
*/
static int is_batch (const wchar_t *full) {
  const wchar_t *base = full + wcslen(full), *colon;
  size_t n;
  while (base > full && !is_sep(base[-1]))
    base--;
  colon = wcschr(base, L':');
  n = colon != NULL ? (size_t)(colon - base) : wcslen(base);
  while (n > 0 && (base[n - 1] == L'.' || base[n - 1] == L' '))
    n--;
  return n >= 4 && base[n - 4] == L'.' &&
         (CompareStringOrdinal(base + n - 3, 3, L"bat", 3, TRUE) == CSTR_EQUAL ||
          CompareStringOrdinal(base + n - 3, 3, L"cmd", 3, TRUE) == CSTR_EQUAL);
}

/* The program to run, in m->prog, or an error with req->failed set. */
static int pick_prog (hp_spawn_req *req, spawn_mem *m) {
  int err;
  /* a cwd that is not there would make a relative program look missing */
  if (m->cwd != NULL) {
    DWORD a = GetFileAttributesW(m->cwd);
    if (a == INVALID_FILE_ATTRIBUTES || !(a & FILE_ATTRIBUTE_DIRECTORY)) {
      req->failed = HP_FAIL_CWD;
      return a == INVALID_FILE_ATTRIBUTES ? hpw_lasterr() : ERROR_DIRECTORY;
    }
  }
  req->failed = HP_FAIL_EXEC;
  if ((err = find_prog(m)) != 0)
    return err;
  if (is_batch(m->prog))
    return HPW_ERR_BATCH;
  req->failed = HP_FAIL_OTHER;
  return 0;
}

/* }------------------------------------------------------ */


/* Index of x among the first n of list, or n. */
static size_t find_handle (const HANDLE *list, size_t n, HANDLE x) {
  size_t i;
  for (i = 0; i < n; i++)
    if (list[i] == x) break;
  return i;
}

static void add_handle (HANDLE *list, size_t *n, HANDLE x) {
  if (x != NULL && find_handle(list, *n, x) == *n)
    list[(*n)++] = x;
}

static HANDLE dup_of (const spawn_mem *m, size_t n, HANDLE x) {
  size_t i = find_handle(m->orig, n, x);
  return x != NULL && i < n ? m->dup[i] : NULL;
}


/*
** The job object for group, session and die_with_parent: it holds the
** child and everything the child starts, so that TerminateJobObject ends
** the whole tree; with die_with_parent it kills them all when its last
** handle closes, which at the latest is when this process ends, however
** it ends.  Not inheritable: a copy in the child would keep it open.
*/
static int new_job (unsigned flags, HANDLE *job) {
  *job = CreateJobObjectW(NULL, NULL);
  if (*job == NULL)
    return hpw_lasterr();
  if (flags & HP_SPAWN_DIEWITHPARENT) {
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
    memset(&li, 0, sizeof(li));
    li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (!SetInformationJobObject(*job, JobObjectExtendedLimitInformation,
                                 &li, sizeof(li))) {
      int err = hpw_lasterr();
      CloseHandle(*job);
      *job = NULL;
      return err;
    }
  }
  return 0;
}


/*
** The child was started suspended: it joins the job before it runs a
** single instruction, so nothing it starts can escape the job.
*/
static int join_job (HANDLE job, PROCESS_INFORMATION *pi) {
  int err = 0;
  if (!AssignProcessToJobObject(job, pi->hProcess))
    err = hpw_lasterr();
  else if (ResumeThread(pi->hThread) == (DWORD)-1)
    err = hpw_lasterr();
  if (err != 0) {  /* no child half started */
    TerminateProcess(pi->hProcess, 1);
    WaitForSingleObject(pi->hProcess, INFINITE);
  }
  return err;
}


/* The number of processes in a job; -1 when the system does not say. */
static long job_members (HANDLE job) {
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION ai;
  if (!QueryInformationJobObject(job, JobObjectBasicAccountingInformation,
                                 &ai, sizeof(ai), NULL))
    return -1;
  return (long)ai.ActiveProcesses;
}


/*
** The whole job: the child and all it started, also once the child has
** been collected (a job handle cannot name another job, unlike a pid):
** an empty job reads as a process that has ended.  sig 0 only checks, as
** in hp_kill.
*/
int hp_killgroup (hp_proc *p, int sig, int collected) {
  HANDLE job = (HANDLE)p->group;
  (void)collected;
  if (job == NULL)
    return hp_err_srch();
  if (sig < 0)
    return hp_err_inval();
  if (job_members(job) == 0)
    return hp_err_srch();
  if (sig == 0)
    return 0;
  if (!TerminateJobObject(job, (UINT)sig))
    return hpw_lasterr();
  return 0;
}


/*
** A job that kills on close and still holds a process stays open until
** this process ends: closing it now would kill processes whose parent
** lives.  Whether it kills on close is what hp_spawn asked for
** (die_with_parent), not what QueryInformationJobObject says: wine reports
** no limits at all.  Any other job is closed (that ends nothing).
*/
void hp_endgroup (hp_proc *p) {
  HANDLE job = (HANDLE)p->group;
  if (job == NULL)
    return;
  p->group = NULL;
  if ((p->flags & HP_SPAWN_DIEWITHPARENT) && job_members(job) != 0)
    return;  /* kept on purpose: this process's end closes it */
  CloseHandle(job);
}


/*
** The request's handles as HANDLEs (stdio's in m->stdh, NULL where not
** redirected); an error names the culprit in req.
*/
static int checkreq (hp_spawn_req *req, spawn_mem *m) {
  size_t i;
  int err;
  HANDLE x;
  if (req->argv == NULL || req->argv[0] == NULL ||
      strchr(req->argv[0], '"') != NULL || req->nlisten > 0)
    return hp_err_inval();
  for (i = 0; i < req->nhandles; i++) {
    if ((err = hpw_tohandle(req->handles[i], &x)) != 0) {
      req->failed = HP_FAIL_HANDLE;
      req->failed_index = i;
      return err;
    }
  }
  for (i = 0; i < 3; i++) {
    m->stdh[i] = NULL;
    if (req->stdio[i] != HP_NOHANDLE &&
        (err = hpw_tohandle(req->stdio[i], &m->stdh[i])) != 0) {
      req->failed = HP_FAIL_STDIO;
      req->failed_index = i;
      return err;
    }
  }
  return 0;
}


/*
** Distinct handles to pass: first those the caller named, which must
** all make it, then our own standard handles for the streams the caller
** left alone.  Those may be missing (a GUI parent) or, on old systems,
** console pseudo-handles that cannot be duplicated: the child then gets
** no such stream rather than no child at all.
*/
static int duphandles (hp_spawn_req *req, spawn_mem *m) {
  static const DWORD stdids[3] = {
    STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE
  };
  size_t i;
  int err;
  for (i = 0; i < req->nhandles; i++)
    add_handle(m->orig, &m->n, (HANDLE)(uintptr_t)req->handles[i]);
  for (i = 0; i < 3; i++)
    add_handle(m->orig, &m->n, m->stdh[i]);
  m->nreq = m->n;
  for (i = 0; i < 3; i++) {
    if (m->stdh[i] != NULL)
      continue;
    m->stdh[i] = GetStdHandle(stdids[i]);
    if (m->stdh[i] == INVALID_HANDLE_VALUE)
      m->stdh[i] = NULL;
    add_handle(m->orig, &m->n, m->stdh[i]);
  }
  for (i = 0; i < m->n; i++)
    m->dup[i] = NULL;
  for (i = 0; i < m->n; i++) {
    HANDLE d;
    if ((err = hpw_dup_local(m->orig[i], 1, &d)) == 0)
      m->list[m->nlist++] = m->dup[i] = d;
    else if (i < m->nreq)
      return err;
  }
  return 0;
}


/* The command line: the arguments, then the duplicates' values. */
static int cmdline (hp_spawn_req *req, spawn_mem *m, size_t argc) {
  size_t i, pos = 0;
  int len;
  for (i = 0; i < argc + req->nhandles; i++) {
    if (i >= argc) {
      HANDLE x = (HANDLE)(uintptr_t)req->handles[i - argc];
      long long v = hpw_fromhandle(dup_of(m, m->n, x));
      pos += (size_t)snprintf(m->cmd8 + pos, NUMLEN, "%lld", v);
    }
    else if (i == 0)
      pos += quote_prog(m->cmd8 + pos, req->argv[0]);
    else
      pos += quote_arg(m->cmd8 + pos, req->argv[i]);
    m->cmd8[pos++] = i + 1 < argc + req->nhandles ? ' ' : '\0';
  }
  return widen(m->cmd8, m->cmd, (int)m->cmd8cap, &len);
}


/*
** The startup information: the standard handles, and the list of
** handles the child may inherit (m->listed once it must be deleted).
*/
static int startinfo (spawn_mem *m, STARTUPINFOEXW *si, DWORD *flags) {
  memset(si, 0, sizeof(*si));
  si->StartupInfo.cb = sizeof(*si);
  si->StartupInfo.dwFlags = STARTF_USESTDHANDLES;
  si->StartupInfo.hStdInput = dup_of(m, m->n, m->stdh[0]);
  si->StartupInfo.hStdOutput = dup_of(m, m->n, m->stdh[1]);
  si->StartupInfo.hStdError = dup_of(m, m->n, m->stdh[2]);
  if (m->nlist > 0) {
    SIZE_T asize = 0;
    InitializeProcThreadAttributeList(NULL, 1, 0, &asize);
    if (!InitializeProcThreadAttributeList(m->attrs, 1, 0, &asize))
      return hpw_lasterr();
    m->listed = 1;
    if (!UpdateProcThreadAttribute(m->attrs, 0,
                                   PROC_THREAD_ATTRIBUTE_HANDLE_LIST, m->list,
                                   m->nlist * sizeof(HANDLE), NULL, NULL))
      return hpw_lasterr();
    si->lpAttributeList = m->attrs;
    *flags |= EXTENDED_STARTUPINFO_PRESENT;
  }
  if (m->env != NULL)
    *flags |= CREATE_UNICODE_ENVIRONMENT;
  return 0;
}


/*
** CreateProcessW, in a job of its own for group, session and
** die_with_parent (the child starts suspended, and runs once it is in).
*/
static int create (hp_spawn_req *req, hp_proc *p, spawn_mem *m,
                   STARTUPINFOEXW *si, DWORD flags) {
  PROCESS_INFORMATION pi;
  HANDLE job = NULL;
  int err;
  if (req->flags & (HP_SPAWN_GROUP | HP_SPAWN_SESSION))
    flags |= CREATE_NEW_PROCESS_GROUP;
  if (req->flags != 0) {
    if ((err = new_job(req->flags, &job)) != 0)
      return err;
    flags |= CREATE_SUSPENDED;
  }
  /* Without a list, inheriting would pass every inheritable handle. */
  if (!CreateProcessW(m->prog, m->cmd, NULL, NULL, m->nlist > 0 ? TRUE : FALSE,
                      flags, m->env, m->cwd, &si->StartupInfo, &pi)) {
    err = hpw_lasterr();
    /* ERROR_DIRECTORY: the working directory, not the program */
    req->failed = (m->cwd != NULL && err == ERROR_DIRECTORY)
                  ? HP_FAIL_CWD : HP_FAIL_EXEC;
  }
  else if (job != NULL && (err = join_job(job, &pi)) != 0) {
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
  }
  else {
    req->failed = HP_FAIL_NONE;
    CloseHandle(pi.hThread);
    p->pid = (long long)pi.dwProcessId;
    p->sys = pi.hProcess;
    p->group = job;
    p->flags = req->flags;
    return 0;
  }
  if (job != NULL)
    CloseHandle(job);
  return err;
}


/*
** Only the listed handles reach the child, and a handle can only be listed
** when it is inheritable.  Flipping the caller's own handle to inheritable
** would let any CreateProcess running meanwhile in another thread (ours
** or some other library's, with bInheritHandles and no list) take it too,
** so the child gets inheritable duplicates instead (by Winsock for
** sockets), made here and closed again right after CreateProcessW.  The
** duplicates have other values than the caller's handles: those values
** are what hp_spawn appends to the command line.
**
** The child's standard handles are req->stdio where given, else our own
** (when they are valid), passed the same way, with STARTF_USESTDHANDLES so
** that the child uses exactly these.
**
** The program is found by find_prog, not by CreateProcessW, and passed
** to it by its full path; batch files are refused (see is_batch).
*/
int hp_spawn (hp_spawn_req *req, hp_proc *p, hp_alloc alloc, void *ud) {
  spawn_mem m;
  STARTUPINFOEXW si;
  size_t argc = 0, i;
  DWORD flags = 0;
  int err;
  req->failed = HP_FAIL_OTHER;
  memset(&m, 0, sizeof(m));
  if ((err = checkreq(req, &m)) != 0)
    return err;
  while (req->argv[argc] != NULL) argc++;
  /* all memory first: a failure from here on has only handles to close */
  if ((err = spawn_alloc(req, argc, &m, alloc, ud)) != 0 ||
      (err = pick_prog(req, &m)) != 0)
    return err;
  if ((err = duphandles(req, &m)) == 0 &&
      (err = cmdline(req, &m, argc)) == 0 &&
      (err = startinfo(&m, &si, &flags)) == 0)
    err = create(req, p, &m, &si, flags);
  if (m.listed)
    DeleteProcThreadAttributeList(m.attrs);
  for (i = 0; i < m.n; i++)
    if (m.dup[i] != NULL) hp_close(hpw_fromhandle(m.dup[i]));
  return err;
}

/* }====================================================== */

#endif
