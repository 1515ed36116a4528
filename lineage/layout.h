/* layout.h - the directory layouts of the migration tools people already use, read as
 * they are: which files hold a migration, its rollback or both, and in what order.
 *
 * A layout names files; schemaset.c reads them. Whatever the layout, the migrations
 * are numbered 1..N in the layout's order of versions, and a migration's text is the
 * SQL it runs, so the same history gives the same version ids (lineage.h) in every
 * layout: a team that moves from its old tool's layout to stemma's keeps its lineage.
 *
 *   stemma          NNN_words.sql, NNN_words.down.sql; numbers 1..N without gaps
 *   flyway          V<version>__words.sql, U<version>__words.sql (its undo); a version
 *                   is numbers joined by '.' or '_' (1, 1.2, 2_1), compared part by
 *                   part; sub-directories are read too, as Flyway does
 *   diesel          directories <version>_words/ holding up.sql and down.sql; the
 *                   version is digits and '-' (2024-01-15-120000), ordered as Diesel
 *                   orders them: the digits, '-' dropped, compared as text
 *   sqlx            <version>_words.sql, or <version>_words.up.sql and .down.sql
 *   dbmate          <version>_words.sql holding "-- migrate:up" and "-- migrate:down"
 *                   sections (sections.h)
 *   goose           <version>_words.sql holding "-- +goose Up" and "-- +goose Down"
 *                   sections (sections.h)
 *   golang-migrate  <version>_words.up.sql and <version>_words.down.sql
 *
 * Outside Diesel and Flyway a version is a decimal number of any length (a counter or
 * a timestamp), compared as a number: leading zeros do not count, 0 is allowed, gaps
 * are normal. Two migrations of one version are an error naming both. Hidden files and
 * files not ending in .sql are ignored, as the tools ignore them, except a migration
 * written in another language (Flyway's V2__x.java, goose's 2_x.go), which is refused:
 * ignoring it would silently shorten the history. So is any .sql file that fits none
 * of the layout's names.
 *
 * Detection (stm_layout_detect) goes by what only one tool writes: a V/U/R__ .sql file,
 * in the directory or below it (flyway), a <version>_words/ directory holding up.sql
 * (diesel), a .up.sql file (golang-migrate; sqlx when plain <version>_words.sql files
 * sit beside them), a "-- +goose" Up or Down line (goose), a "-- migrate:" up or down
 * line (dbmate). None of these:
 * stemma, with its rules unchanged; sqlx's plain layout is stemma's with looser
 * numbering, so it is never guessed and is named instead. Two of them: an error naming
 * both, and a file of each. */
#ifndef STM_LAYOUT_H
#define STM_LAYOUT_H

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    LAYOUT_AUTO = 0, /* not a layout: detect it from the files present */
    LAYOUT_STEMMA,
    LAYOUT_FLYWAY,
    LAYOUT_DIESEL,
    LAYOUT_SQLX,
    LAYOUT_DBMATE,
    LAYOUT_GOOSE,
    LAYOUT_GOLANG_MIGRATE,
} schemaset_layout;

#define LAYOUT_COUNT 8 /* the values above, LAYOUT_AUTO included */
/* The names a user gives, for help texts and messages. */
#define LAYOUT_NAMES "stemma, flyway, diesel, sqlx, dbmate, goose, golang-migrate"

/* Flyway's sub-directories are read this deep, no deeper (a link looping back). */
#define LAYOUT_MAX_DEPTH 16

/* What one file holds. */
typedef enum {
    LAYOUT_PART_UP,   /* a migration */
    LAYOUT_PART_BOTH, /* a migration and, in a section of its own, its rollback */
    LAYOUT_PART_DOWN, /* a rollback */
} layout_part;

/* One file of a migration directory, named as its layout names them. Owned by the array
 * stm_layout_list returns. */
typedef struct {
    char *file;    /* its path under the directory: "V2__add.sql", "2024-01-15-120000_add/up.sql" */
    char *version; /* the version as the name writes it, for messages: "002", "1.2" */
    char *key;     /* what versions are ordered by (stm_layout_compare) */
    char *words;   /* the name's words, for the description: "add_priority" */
    char *down_where; /* UP and BOTH: where its rollback is or would be, for messages:
                         "002_add.down.sql", "V2__add.sql's '-- +goose Down' section" */
    layout_part part;
    schemaset_layout layout; /* the layout that named it: how its key compares */
} layout_entry;

/* The layout's name ("golang-migrate"; "auto" for LAYOUT_AUTO), static. */
const char *stm_layout_name(schemaset_layout layout);
/* The layout named name (one of LAYOUT_NAMES, or "auto"); false when there is none. */
bool stm_layout_from_name(const char *name, schemaset_layout *out);

/* Which layout the directory dir is in, as the header says; never LAYOUT_AUTO.
 * STM_EINPUT when it cannot be opened, or when it fits two layouts (the message names
 * both, a file of each, and says to name the layout). A file that cannot be read is
 * passed over here: reading the set says what is wrong with it. */
STM_NODISCARD stm_err stm_layout_detect(const char *dir, schemaset_layout *out, stm_error *err);

/* Every file of dir that holds a migration or a rollback under layout (not
 * LAYOUT_AUTO), sorted: by version (stm_layout_compare), a migration before its
 * rollback, then by file. *entries (count in *count) is the caller's, to free with
 * stm_layout_entries_free, also on failure. STM_EINPUT, naming the file, for a .sql file
 * that fits none of the layout's names, a migration in another language, a Flyway
 * repeatable migration, a Diesel directory without up.sql, more migrations than
 * SCHEMASET_MAX_VERSIONS. For the stemma layout the messages are stemma's own. */
STM_NODISCARD stm_err stm_layout_list(const char *dir, schemaset_layout layout,
                                      layout_entry **entries, size_t *count, stm_error *err);
void stm_layout_entries_free(layout_entry *entries, size_t count);

/* Orders two keys of layout's entries: < 0, 0 (the same version) or > 0. */
int stm_layout_compare(schemaset_layout layout, const char *a, const char *b);

#endif
