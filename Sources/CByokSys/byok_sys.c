#define _GNU_SOURCE
#include <stddef.h>
#include <sys/socket.h>
#include <malloc.h>
#include "byok_sys.h"

void byok_limit_malloc_arenas(int n) { mallopt(M_ARENA_MAX, n); }

int byok_peercred(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred c;
    socklen_t len = sizeof c;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0) return -1;
    *pid = c.pid; *uid = c.uid; *gid = c.gid;
    return 0;
}

int byok_accept_cloexec(int fd) {
    return accept4(fd, NULL, NULL, SOCK_CLOEXEC);
}
