/* safefile.h - writing the node's small files so that a crash or a full disk never
 * leaves a half-written one where a good one was.
 *
 * A file is written whole beside its final name (NAME.tmpPID, created exclusively with
 * the final mode), flushed to disk with fsync, then moved into place, and the
 * directory is synced so the new name survives a power cut. The node's key, config
 * and known-peers files all go through here. */
#ifndef STM_SAFEFILE_H
#define STM_SAFEFILE_H

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes len bytes of data (lent; may be sodium_malloc'd memory, nothing is copied)
 * to path with exactly the given mode (umask does not apply). With keep_existing the
 * file is created only if path does not exist yet, checked atomically at the moment
 * it is put in place: STM_EINPUT "PATH: already exists" otherwise, and nothing is
 * left behind. Without it an existing file is replaced. STM_ESYS naming path when the
 * system refuses. */
STM_NODISCARD stm_err stm_safefile_write(const char *path, const void *data, size_t len,
                                         mode_t mode, bool keep_existing, stm_error *err);

/* Appends len bytes to path (creating it with mode, and first writing header when it
 * is new; header may be NULL) and fsyncs it. A file whose last byte is not a newline
 * (an edit by hand) gets one first, so the appended line stays a line of its own. */
STM_NODISCARD stm_err stm_safefile_append_line(const char *path, const char *line, size_t len,
                                               mode_t mode, const char *header, stm_error *err);

/* Syncs the directory holding path, so that a rename or a creation in it is on disk.
 * Errors are ignored: some file systems cannot sync a directory, and the file itself
 * is already safe. */
void stm_safefile_sync_dir(const char *path);

#endif
