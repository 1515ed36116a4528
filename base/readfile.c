/* readfile.c - bounded reading of whole files (readfile.h). */
#include "base/readfile.h"

#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

stm_err stm_readfile_open(const char *path, uint64_t max, int *fd, struct stat *st, stm_error *err)
{
    *fd = -1;
    /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer, and the command
     * would hang instead of saying it is not a regular file. */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (f < 0) {
        int saved = errno;
        stm_error_set(err, saved == ENOENT ? STM_EINPUT : STM_ESYS, "%s: cannot read: %s", path,
                      strerror(saved));
        errno = saved;
        return saved == ENOENT ? STM_EINPUT : STM_ESYS;
    }
    stm_err rc = STM_OK;
    if (fstat(f, st) != 0)
        rc = stm_error_set(err, STM_ESYS, "%s: cannot read: %s", path, strerror(errno));
    else if (!S_ISREG(st->st_mode))
        rc = stm_error_set(err, STM_EINPUT, "%s: not a regular file", path);
    else if ((uint64_t)st->st_size > max)
        rc = stm_error_set(err, STM_EINPUT, "%s: %lld bytes, more than the limit of %llu", path,
                           (long long)st->st_size, (unsigned long long)max);
    if (rc != STM_OK) {
        close(f);
        errno = 0; /* it exists: ENOENT is for a missing file only */
        return rc;
    }
    /* Reads block from here on: a regular file never makes them wait anyway. */
    (void)fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK);
    *fd = f;
    return STM_OK;
}

stm_err stm_readfile_all(const char *path, uint64_t max, char **data, size_t *len, stm_error *err)
{
    *data = NULL;
    *len = 0;
    int fd;
    struct stat st;
    stm_err rc = stm_readfile_open(path, max, &fd, &st, err);
    if (rc != STM_OK)
        return rc;
    /* One byte more than the size says, to see a file that grew since fstat. */
    size_t want = (size_t)st.st_size + 1, got = 0;
    char *buf = stm_malloc(want + 1);
    for (;;) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = stm_error_set(err, STM_ESYS, "%s: cannot read: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (got == want) {
            if (got > max) {
                rc = stm_error_set(err, STM_EINPUT, "%s: more than the limit of %llu bytes",
                                   path, (unsigned long long)max);
                break;
            }
            want *= 2;
            if (want > max + 1)
                want = (size_t)max + 1;
            buf = stm_realloc(buf, want + 1);
        }
    }
    close(fd);
    if (rc != STM_OK) {
        free(buf);
        return rc;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return STM_OK;
}
