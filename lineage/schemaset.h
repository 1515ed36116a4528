/* schemaset.h - a schema set: a directory of numbered SQL migrations.
 *
 * In stemma's own layout the directory holds NNN_description.sql files (NNN a decimal
 * number, leading zeros allowed) and, optionally beside each, NNN_description.down.sql
 * to roll it back. Numbers start at 1 and run without gaps. Files that do not end in
 * .sql and sub-directories are ignored; a .sql file that does not follow the pattern is
 * an error, because ignoring it would silently shorten the history.
 *
 * Other tools' layouts (Flyway, Diesel, sqlx, dbmate, goose, golang-migrate) are read as
 * they are (layout.h): their migrations, in their order of versions, become versions
 * 1..N, each with the text it runs, so that a history keeps its version ids whichever
 * layout it is read in.
 *
 * Migration text is normalised on load: a leading UTF-8 byte-order mark is dropped and
 * CRLF and lone CR line endings become LF, so a file checked out on Windows keeps its
 * identity. Nothing else is changed. */
#ifndef STM_SCHEMASET_H
#define STM_SCHEMASET_H

#include "layout.h"
#include "base/error.h"

#include <stddef.h>

/* Limits on what a directory may hold, checked before anything is allocated. */
#define SCHEMASET_MAX_FILE_BYTES (16u * 1024u * 1024u) /* one migration file */
#define SCHEMASET_MAX_VERSIONS 100000                   /* highest migration number */

/* One migration, as read from disk. Owned by its schemaset. */
typedef struct {
    int number;        /* 1, 2, ...: its place in the layout's order of versions */
    char *file;        /* its file under the directory, e.g. "002_add_priority.sql" */
    char *description; /* from a "-- Description:" first line, else the file name's words */
    char *text;        /* normalised migration text (its Up section, in goose's or
                          dbmate's layout), NUL-terminated */
    size_t text_len;   /* bytes in text */
    char *down_file;   /* "002_add_priority.down.sql" (file itself when its rollback is a
                          section of it), or NULL when there is none */
    char *down_text;   /* its normalised text, or NULL */
    char *down_where;  /* where the rollback is or would be, for messages:
                          "002_add_priority.down.sql", "U2__add.sql" */
} schemaset_migration;

typedef struct schemaset schemaset_t;

/* Reads every migration in dir, in the layout its files show (stm_layout_detect). On
 * success *out is the caller's (stm_schemaset_destroy). Errors (STM_EINPUT or STM_ESYS)
 * name the file: a gap, a duplicate number, a file name that does not follow the
 * pattern, a down file without its migration, a file that cannot be read, is too large
 * or holds a NUL byte; a directory that fits two layouts. When a directory taken for
 * stemma's layout breaks its numbering and would read as sqlx's, the message says so. */
STM_NODISCARD stm_err stm_schemaset_load(const char *dir, schemaset_t **out, stm_error *err);
/* The same in the layout given (LAYOUT_AUTO: detected, as stm_schemaset_load). */
STM_NODISCARD stm_err stm_schemaset_load_layout(const char *dir, schemaset_layout layout,
                                                schemaset_t **out, stm_error *err);
void stm_schemaset_destroy(schemaset_t **self_p);

/* The set's name: the directory's last path component ("tasks"), lent. */
const char *stm_schemaset_name(const schemaset_t *self);
/* The directory as given, lent. */
const char *stm_schemaset_dir(const schemaset_t *self);
/* The layout it was read in (never LAYOUT_AUTO). */
schemaset_layout stm_schemaset_layout(const schemaset_t *self);
size_t stm_schemaset_count(const schemaset_t *self);
/* Migration number i + 1, lent; i < stm_schemaset_count. */
const schemaset_migration *stm_schemaset_at(const schemaset_t *self, size_t i);

/* Normalises text in place as described above; returns the new length. Exposed so
 * that the migrator checks a file against its recorded checksum the same way. */
size_t stm_schemaset_normalise(char *text, size_t len);

#endif
