/*
** apple-decls.h - the two declarations of macOS's <spawn.h> that glibc's
** lacks, so that the macOS branch of hpass_spawn_posix.c compiles on
** Linux (`make test-fallbacks`, -include'd).  Only compiled, never run:
** the resulting module does not load (the function is not in glibc).
** Values from macOS's <spawn.h>.
*/
#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE     /* before any header, as hpass_spawn_posix.c wants */
#endif
#include <spawn.h>
#define POSIX_SPAWN_CLOEXEC_DEFAULT 0x4000
int posix_spawn_file_actions_addinherit_np (posix_spawn_file_actions_t *fa,
                                            int fd);
