/* dirlock.c - NODE_DIR/node.lock, held while a node runs (dirlock.h). */
#include "dirlock.h"

#include "config.h"
#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct dirlock {
    int fd; /* node.lock, flock'd exclusively */
};

/* The pid the holder wrote, or 0 when it has not written it yet (it locks first). */
static long s_holder_pid(int fd)
{
    char text[32];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    char *end;
    long pid = strtol(text, &end, 10);
    return end != text && pid > 0 ? pid : 0;
}

stm_err stm_dirlock_acquire(const char *dir, dirlock_t **out, stm_error *err)
{
    *out = NULL;
    char *path = stm_config_path(dir, DIRLOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        stm_err rc = stm_error_set(err, STM_ESYS, "%s: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    free(path);
    int locked;
    while ((locked = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
        ;
    if (locked != 0) {
        int why = errno;
        long pid = why == EWOULDBLOCK ? s_holder_pid(fd) : 0;
        close(fd);
        if (why != EWOULDBLOCK)
            return stm_error_set(err, STM_ESYS, "%s/%s: cannot lock it: %s", dir, DIRLOCK_FILE,
                                 strerror(why));
        if (pid)
            return stm_error_set(err, STM_ESYS, "%s: already running (pid %ld)", dir, pid);
        return stm_error_set(err, STM_ESYS, "%s: already running (a node is starting there)", dir);
    }
    /* Ours now: whatever the file held was written by a node that has ended. */
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) {
        int why = errno;
        close(fd);
        return stm_error_set(err, STM_ESYS, "%s/%s: cannot write the pid: %s", dir, DIRLOCK_FILE,
                             strerror(why));
    }
    dirlock_t *l = stm_calloc(1, sizeof *l);
    l->fd = fd;
    *out = l;
    return STM_OK;
}

void stm_dirlock_release(dirlock_t **self_p)
{
    dirlock_t *l = *self_p;
    if (!l)
        return;
    /* Emptied while still held: a pid left behind would name a process that ended. */
    if (ftruncate(l->fd, 0) != 0) {
        /* Nothing to do about it: the next holder truncates it again. */
    }
    close(l->fd); /* lets go of the flock */
    free(l);
    *self_p = NULL;
}
