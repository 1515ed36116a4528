/* testutil.h - helpers the test programs share: scratch directories and files. */
#ifndef STM_TESTUTIL_H
#define STM_TESTUTIL_H

#include "lineage/lineage.h"

#include <stddef.h>

/* Makes a new empty directory under $TMPDIR (or /tmp); returns its path, which the
 * caller frees after tu_remove_tree. Aborts the test program on failure. */
char *tu_tmpdir(void);
/* Writes text to dir/name, creating or replacing it. */
void tu_write(const char *dir, const char *name, const char *text);
/* Writes len bytes. */
void tu_write_bytes(const char *dir, const char *name, const void *data, size_t len);
/* Removes path and everything below it. */
void tu_remove_tree(const char *path);
/* Reads a whole file into a NUL-terminated string the caller frees; NULL on failure. */
char *tu_read(const char *path, size_t *len);

/* The lineage of a schema directory; fails the test (cmocka) when it cannot be built. */
lineage_t *tu_lineage_dir(const char *dir);
/* The lineage of a scratch directory made of (file name, text) pairs ending in NULL,
 * removed again; NULL with err filled when it cannot be built. */
lineage_t *tu_lineage_files(const char *const *files, stm_error *err);
/* The same, failing the test when it cannot be built. */
lineage_t *tu_lineage_files_ok(const char *const *files);

#endif
