/* readfile.h - reading a file that came from outside: never waiting on a FIFO, never
 * taking anything but a regular file, and never reading past a size limit, which is
 * checked before anything is allocated.
 *
 * Every file stemma reads whole goes through here: migrations, exported lineages,
 * TOML documents, the node's key files and its known_peers list. The messages name the
 * file: "PATH: not a regular file", "PATH: N bytes, more than the limit of MAX". */
#ifndef STM_READFILE_H
#define STM_READFILE_H

#include "base/error.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* Opens path for reading and checks it: a regular file (a FIFO is refused at once, not
 * waited on) of at most max bytes. On success *fd is open, close-on-exec, and the
 * caller's to close, and *st is its fstat. A file that cannot be opened is
 * "PATH: cannot read: REASON": STM_EINPUT when it does not exist (errno is
 * ENOENT then, and only then, for callers to whom a missing file means something), STM_ESYS
 * otherwise. A file that is not regular, or is larger than max, is STM_EINPUT. */
STM_NODISCARD stm_err stm_readfile_open(const char *path, uint64_t max, int *fd, struct stat *st,
                                        stm_error *err);

/* Reads the whole of path (at most max bytes, as stm_readfile_open checks) into a new
 * buffer with a NUL after its last byte: *data is the caller's to free, *len its
 * length without that NUL. A file that grows past max while it is read is refused,
 * not cut. On failure *data is NULL. */
STM_NODISCARD stm_err stm_readfile_all(const char *path, uint64_t max, char **data, size_t *len,
                                       stm_error *err);

#endif
