/* schemacmp.h - two schemas compared as SQLite reports them: what a rollback's down file
 * must restore, and whether a database still has the schema its version says.
 *
 * A snapshot holds, of a database's main schema:
 *
 *   - its ordinary tables (catalog.h): per column the name, declared type, NOT NULL,
 *     default, key role, key collation and generated kind (stm_catalog_column_equal,
 *     the lineage's own notion of an unchanged column), and per table WITHOUT ROWID
 *     and its keys setting;
 *   - its virtual tables, by name;
 *   and, when it was read from a database (not derived from a lineage, which keeps
 *   tables only):
 *   - every index: a named one by its name, with its table, UNIQUE, its columns in
 *     order with their direction and collation and, for one on expressions or a
 *     partial one, its text; an index a UNIQUE constraint makes, by what it covers;
 *   - every foreign key, by what it covers, its target and its actions;
 *   - every trigger and view, by its name, with its text.
 *
 * Texts (of triggers, views, indexes on expressions) compare with ASCII case folded,
 * comments removed and whitespace kept only where it separates two words, outside
 * quotes: `ON t(a)` is `on t (a)`. Nothing else of the SQL is read.
 *
 * Not compared, on purpose:
 *   - the order of columns. stemma names every column it touches (operations, triggers,
 *     rows it writes) and a family's definition leaves the order out (catalog.h); and
 *     ALTER TABLE ADD COLUMN only appends, so a down file that puts back a column an
 *     up file dropped from the middle of a table cannot restore the order short of
 *     rebuilding the table. (Later SQL that copies rows with `SELECT *` or inserts
 *     without a column list does depend on it: docs/user-guide.md says so.)
 *   - CHECK constraints: SQLite reports them only inside the CREATE TABLE text, whose
 *     column order differs for the reason above.
 *   - stemma's own tables (stemma_*, schema_version: syncable.h), their triggers, and
 *     SQLite's sqlite_* tables.
 *
 * Names of tables, indexes, triggers and views compare without regard to ASCII case,
 * as SQLite compares them; a column's name compares exactly, as the lineage does. */
#ifndef STM_SCHEMACMP_H
#define STM_SCHEMACMP_H

#include "base/buf.h"
#include "base/error.h"
#include "catalog.h"
#include "lineage.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct schemacmp schemacmp_t;

/* Reads everything above from db's main schema; with objects false, its tables and
 * virtual tables only (what a lineage has to compare with). *out is the caller's
 * (stm_schemacmp_destroy). STM_EDB when SQLite fails, STM_EINPUT for a keys setting
 * stemma does not know (catalog.h). */
STM_NODISCARD stm_err stm_schemacmp_read(sqlite3 *db, bool objects, schemacmp_t **out,
                                         stm_error *err);

/* The tables and virtual tables a database at version `version` (0 .. count) of l has,
 * as the lineage derived them; l is lent and must outlive the snapshot. The caller
 * owns the result. Compared with it, a table the schema set never had at any version
 * is the application's own, made outside the migrations, and not a difference. */
schemacmp_t *stm_schemacmp_of_lineage(const lineage_t *l, int version);

void stm_schemacmp_destroy(schemacmp_t **self_p);

/* How a schema differs from the one it is compared with. */
typedef enum {
    SCHEMACMP_EXTRA = 1, /* it has something the other does not */
    SCHEMACMP_MISSING,   /* it lacks something the other has */
    SCHEMACMP_DIFFERS,   /* both have it, defined otherwise */
} schemacmp_how;

/* What a difference is about. */
typedef enum {
    SCHEMACMP_TABLE = 1, /* a table: all of it, or WITHOUT ROWID or its keys setting */
    SCHEMACMP_COLUMN,    /* one of a table's columns */
    SCHEMACMP_VIRTUAL,   /* a virtual table */
    SCHEMACMP_INDEX,     /* a named index */
    SCHEMACMP_UNIQUE,    /* the index of a UNIQUE constraint */
    SCHEMACMP_FKEY,      /* a foreign key */
    SCHEMACMP_TRIGGER,   /* a trigger */
    SCHEMACMP_VIEW,      /* a view */
} schemacmp_kind;

/* One difference. Its strings belong to the array that holds it. */
typedef struct {
    schemacmp_how how;
    schemacmp_kind kind;
    char *table; /* the table it is about or belongs to (an index's, a trigger's), as
                  * named where it was found; NULL for a view */
    char *what; /* "column items.qty", "table tags", "virtual table search",
                 * "index tasks_by_list", "trigger t", "view v", "the UNIQUE constraint
                 * on tags (label)", "the foreign key tasks (list_id) REFERENCES lists
                 * (id)" */
    char *got;  /* DIFFERS: how the compared schema has it ("INTEGER NOT NULL DEFAULT
                 * 0"), or NULL when words would not help (a trigger's text) */
    char *want; /* DIFFERS: how the other has it, NULL likewise */
} schemacmp_diff;

/* Compares got with want. Indexes, foreign keys, triggers and views count only when
 * both were read from a database with them; what belongs to a table only one of the
 * two has (its indexes, its triggers) is told as part of that table, not on its own.
 * Returns how many differences there are; *out is the caller's
 * (stm_schemacmp_diffs_free), NULL when there are none. They come tables first (in
 * order of name, each table's columns with it), then virtual tables, indexes, UNIQUE
 * constraints, foreign keys, triggers and views. */
size_t stm_schemacmp_compare(const schemacmp_t *want, const schemacmp_t *got,
                             schemacmp_diff **out);
void stm_schemacmp_diffs_free(schemacmp_diff *diffs, size_t n);

/* Appends d to b in words, as what a down file did (leaves) or what a database has:
 * "leaves column items.qty that version 2 does not have" / "has column items.qty
 * that version 2 does not have"; "does not restore" / "lacks" for what is missing. */
void stm_schemacmp_describe(buf_t *b, const schemacmp_diff *d, int version, bool leaves);

/* The most differences stm_schemacmp_summary spells out. */
#define SCHEMACMP_SUMMARY_MAX 3

/* Appends the first SCHEMACMP_SUMMARY_MAX of diffs[0..n) (n >= 1) to b, joined by
 * "; ", then "(and K more)" for the rest. */
void stm_schemacmp_summary(buf_t *b, const schemacmp_diff *diffs, size_t n, int version,
                           bool leaves);

#endif
