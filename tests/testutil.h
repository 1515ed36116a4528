/* testutil.h - helpers the test programs share: scratch directories and files, the
 * messages about them, and lineages built from them. */
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
/* "dir/name", which the caller frees. */
char *tu_path(const char *dir, const char *name);
/* The text of dir/name, which the caller frees; fails the test when it cannot be read. */
char *tu_read_file(const char *dir, const char *name);
/* dir/name's permission bits; fails the test when it cannot be stat'ed. */
unsigned tu_mode(const char *dir, const char *name);
/* Fails the test when a NAME.tmpPID file (a safe write's temporary) is left in dir. */
void tu_no_temporaries(const char *dir);
/* Fails the test unless err's message is one line that starts with "DIR/NAME" + rest
 * (rest may be NULL) and contains contains (may be NULL). */
void tu_expect_msg(const stm_error *err, const char *dir, const char *name, const char *rest,
                   const char *contains);

/* The lineage of a schema directory; fails the test (cmocka) when it cannot be built. */
lineage_t *tu_lineage_dir(const char *dir);
/* The lineage of a scratch directory made of (file name, text) pairs ending in NULL,
 * removed again; NULL with err filled when it cannot be built. */
lineage_t *tu_lineage_files(const char *const *files, stm_error *err);
/* The same, failing the test when it cannot be built. */
lineage_t *tu_lineage_files_ok(const char *const *files);

#endif
