/* safefile.c - whole-or-nothing writes of the node's small files (safefile.h). */
#include "base/safefile.h"

#include "base/buf.h"
#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes all of data, going on after a signal or a short write. */
static bool s_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            errno = EIO;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

void stm_safefile_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir =
        slash ? stm_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : stm_strdup(".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/* Puts tmp in place as path without ever replacing an existing path. link() fails
 * with EEXIST atomically, which a check before rename() cannot promise; on a file
 * system without hard links the check and rename are the best there is. */
static int s_link_new(const char *tmp, const char *path)
{
    if (link(tmp, path) == 0) {
        unlink(tmp);
        return 0;
    }
    if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP && errno != ENOSYS &&
        errno != EMLINK)
        return -1;
    if (access(path, F_OK) == 0) {
        errno = EEXIST;
        return -1;
    }
    return rename(tmp, path);
}

stm_err stm_safefile_write(const char *path, const void *data, size_t len, mode_t mode,
                           bool keep_existing, stm_error *err)
{
    buf_t tmp = BUF_INIT;
    stm_buf_printf(&tmp, "%s.tmp%ld", path, (long)getpid());
    /* Created private and exclusive, so nobody else can open the half-written file;
     * a leftover of an earlier run that had the same pid (containers reuse them) is
     * removed once. */
    int fd = open(stm_buf_str(&tmp), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST && unlink(stm_buf_str(&tmp)) == 0)
        fd = open(stm_buf_str(&tmp), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        stm_err rc = stm_error_set(err, STM_ESYS, "%s: cannot write: %s", path, strerror(errno));
        stm_buf_free(&tmp);
        return rc;
    }
    /* fchmod after creating: the mode is exact, whatever the umask. */
    bool ok = s_write_all(fd, data, len) && fchmod(fd, mode) == 0 && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (ok) {
        if ((keep_existing ? s_link_new(stm_buf_str(&tmp), path)
                           : rename(stm_buf_str(&tmp), path)) != 0) {
            ok = false;
            saved = errno;
        }
    }
    stm_err rc = STM_OK;
    if (!ok) {
        unlink(stm_buf_str(&tmp));
        if (saved == EEXIST && keep_existing)
            rc = stm_error_set(err, STM_EINPUT, "%s: already exists", path);
        else
            rc = stm_error_set(err, STM_ESYS, "%s: cannot write: %s", path, strerror(saved));
    } else {
        stm_safefile_sync_dir(path);
    }
    stm_buf_free(&tmp);
    return rc;
}

stm_err stm_safefile_append_line(const char *path, const char *line, size_t len, mode_t mode,
                                 const char *header, stm_error *err)
{
    bool created = true;
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST) {
        created = false;
        fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
    }
    if (fd < 0)
        return stm_error_set(err, STM_ESYS, "%s: cannot write: %s", path, strerror(errno));
    buf_t b = BUF_INIT;
    struct stat st;
    bool ok = fstat(fd, &st) == 0;
    if (ok && created && header)
        stm_buf_puts(&b, header);
    else if (ok && st.st_size > 0) {
        char last = '\n';
        if (pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n')
            stm_buf_putc(&b, '\n');
    }
    stm_buf_append(&b, line, len);
    stm_buf_putc(&b, '\n');
    /* One write() of the whole line: with O_APPEND it lands whole at the end. */
    ok = ok && s_write_all(fd, b.data, b.len) && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    stm_buf_free(&b);
    if (!ok)
        return stm_error_set(err, STM_ESYS, "%s: cannot write: %s", path, strerror(saved));
    if (created)
        stm_safefile_sync_dir(path);
    return STM_OK;
}
