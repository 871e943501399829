#ifndef BYOK_SYS_H
#define BYOK_SYS_H
#include <sys/types.h>
// Linux calls that glibc hides behind _GNU_SOURCE.
int byok_peercred(int fd, pid_t *pid, uid_t *uid, gid_t *gid);
int byok_accept_cloexec(int fd);
// mallopt(M_ARENA_MAX, n): fewer malloc arenas, less memory kept resident by idle threads.
void byok_limit_malloc_arenas(int n);
#endif
