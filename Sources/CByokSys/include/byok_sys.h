#ifndef BYOK_SYS_H
#define BYOK_SYS_H
#include <sys/types.h>
// Linux calls that glibc hides behind _GNU_SOURCE.
int byok_peercred(int fd, pid_t *pid, uid_t *uid, gid_t *gid);
int byok_accept_cloexec(int fd);
#endif
