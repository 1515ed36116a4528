/* lens.h - what each migration does to the data already there: which column of version
 * n holds the values of which column of version n - 1, which columns it computes,
 * fills, adds or drops. The groundwork of lenses (operations translated between
 * versions); derived by SQLite, never by reading the SQL.
 *
 * How: each migration is run twice. Once on a clean in-memory database, to move it
 * along as the lineage does (lineage.h); once on a copy of it (a probe) holding marked
 * rows in every table: every cell a value that names its table, its column and its row
 * (sqlite3_backup makes the copy). After the migration the probe's tables are read back
 * and each marker is looked for: a marker found unchanged under another column (or in a
 * table of another name) is a rename; found converted (an integer marker as text, say)
 * a cast; not found a drop; a column whose values are no marker was computed by the
 * migration, or added with its default. Three rows a table, so that casts and filled
 * NULLs show: text markers, then integer markers where the column is numeric, then
 * NULL in every column that may hold it.
 *
 * Invariants:
 *
 *  1. Only what a migration changes is listed: a column carried unchanged, under its
 *     own name in its own table, is not. A table the migration creates empty has no
 *     changes (it is new, not derived).
 *  2. The probe never touches the clean database: a migration that fails on marked rows
 *     (a constraint the markers break that CHECK cannot be told to ignore) leaves its
 *     step unprobed, said by stm_lens_probed, and the derivation goes on.
 *  3. The same schema set gives the same lenses, whatever the machine: markers are made
 *     from positions in catalogs ordered by name, and nothing else. */
#ifndef STM_LENS_H
#define STM_LENS_H

#include "base/buf.h"
#include "base/error.h"
#include "schemaset.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    LENS_RENAMED,    /* the values of another column of n - 1: renamed, rebuilt under
                        another name, or its table renamed */
    LENS_CAST,       /* the values of a column of n - 1, converted to another type */
    LENS_FILLED,     /* its own values kept, and NULLs filled by the migration (a backfill) */
    LENS_COMPUTED,   /* values the migration wrote, no one column's of n - 1 */
    LENS_ADDED,      /* a column added to a table that had rows: its default everywhere */
    LENS_COPIED,     /* the values of a column of n - 1 that is still there too (a new
                        table filled from an old one), or that another column of n holds
                        as its rename (one column put into two: the first listed is the
                        rename, lens.c s_one_heir) */
    LENS_DROPPED,    /* a column of n - 1 whose values no column of n carries; table and
                        column are n - 1's (column NULL: the whole table) */
    LENS_EMPTIED,    /* a table (column NULL) whose rows the migration deleted: it is
                        still there, and holds none of the rows it had */
    LENS_REPLACED,   /* a table (column NULL) the migration dropped, none of its values
                        carried anywhere, and created anew under its name: the table of
                        version n is another table, its columns new (wildebeest 008
                        re-keys subscriptions this way). Unlike EMPTIED, a fact, not a
                        reading of the markers: SQLite's authorizer saw the DROP TABLE. */
} lens_kind;
#define LENS_KINDS 9

/* One change of one migration. Strings owned by the lens set. */
typedef struct {
    lens_kind kind;
    const char *table;       /* version n's (n - 1's for DROPPED) */
    const char *column;      /* likewise; NULL for a whole table dropped */
    const char *from_table;  /* n - 1's: RENAMED, CAST, FILLED, COPIED; NULL otherwise */
    const char *from_column;
} lens_change;

typedef struct lens_set lens_set_t;

/* A copy of c whose strings are the caller's (stm_lens_change_free). */
lens_change stm_lens_change_copy(const lens_change *c);
/* Frees the strings of a change made by stm_lens_change_copy. */
void stm_lens_change_free(lens_change *c);

/* "renamed", "cast", "filled", "computed", "added", "copied", "dropped", "emptied",
 * "replaced": static. */
const char *stm_lens_kind_name(lens_kind k);

/* Derives the changes of every migration of set. *out is the caller's
 * (stm_lens_destroy). STM_EINPUT naming the file and line when a migration fails on
 * the clean database (as stm_lineage_build would); STM_EDB when SQLite fails otherwise. */
STM_NODISCARD stm_err stm_lens_derive(const schemaset_t *set, lens_set_t **out, stm_error *err);
void stm_lens_destroy(lens_set_t **self_p);

/* The versions derived: the schema set's migrations. */
size_t stm_lens_count(const lens_set_t *s);
/* The changes made by the migration to version (1 .. count; version 1's are none): of
 * the tables after it in order of name, each column's in declaration order, then the
 * drops and the emptied tables; lent, *count set. */
const lens_change *stm_lens_changes(const lens_set_t *s, int version, size_t *count);
/* False when the migration to version could not be run on marked rows: its changes
 * are not known (none are listed). *why is the reason then (lent), else NULL. */
bool stm_lens_probed(const lens_set_t *s, int version, const char **why);

/* Where the values column (table, column) holds at version from are held at version to
 * (before or after it): *to_table and *to_column (lent by the set) name that column,
 * under whatever names renames, rebuilds and moved tables gave it (a cast or a fill on
 * the way keeps it the same column). False when no column of version to holds them:
 * the column is not at from, or was added after or dropped before, or its values were
 * replaced by computed ones on the way. */
bool stm_lens_translate(const lens_set_t *s, int from, const char *table, const char *column,
                        int to, const char **to_table, const char **to_column);
/* The same for a table: where the rows of table at version from are at version to (the
 * table holding any of its columns' values there); false when none does. */
bool stm_lens_translate_table(const lens_set_t *s, int from, const char *table, int to,
                              const char **to_table);
/* True when the migration to version replaced table (LENS_REPLACED): the table of that
 * name after it is another table than the one before. */
bool stm_lens_replaced(const lens_set_t *s, int version, const char *table);
/* The columns of version (1 .. count), by table then column name: column i's names,
 * lent by the set. */
size_t stm_lens_column_count(const lens_set_t *s, int version);
void stm_lens_column_at(const lens_set_t *s, int version, size_t i, const char **table,
                        const char **column);

/* Another branch of the schema set, as a peer on it describes it (its HELLO): its
 * versions after the last one it shares with this set (base, a version of this set),
 * each with its changes. Only changes: a branch's catalogs between base and its head
 * are not known here, so names are followed step by step (stm_lens_walk_back). */
typedef struct {
    int base;                    /* the last version shared with the set (1 ..) */
    size_t count;                /* the branch's versions after base */
    const lens_change *const *changes; /* changes[i]: those of version base + 1 + i */
    const size_t *nchanges;      /* ... and how many */
    const bool *probed;          /* probed[i]: false when version base + 1 + i's are not
                                    known (a walk does not cross it) */
} lens_branch;

/* Where the values column (table, column; column NULL: the table's rows) of version
 * base + upto of branch b were at base: *to_table (and *to_column) name them there,
 * lent by b or the arguments. False when no column of base holds them: the branch
 * computed, added or copied the column, replaced its table, or a version on the way
 * could not be probed. */
bool stm_lens_walk_back(const lens_branch *b, size_t upto, const char *table, const char *column,
                        const char **to_table, const char **to_column);

/* Appends s to out as bytes stm_lens_decode reads back (lens_codec.c has the layout),
 * for the cache of derived lineages (cache.h). */
void stm_lens_encode(const lens_set_t *s, buf_t *out);
/* Reads a lens set of count migrations from what stm_lens_encode wrote; *out is the
 * caller's (stm_lens_destroy). STM_ECORRUPT when the bytes are not such a set (cut,
 * damaged, of another count): everything a question relies on is checked. */
STM_NODISCARD stm_err stm_lens_decode(const void *data, size_t len, size_t count,
                                      lens_set_t **out, stm_error *err);

/* A lens set read back (an exported file, export.h) rather than derived: made with
 * the number of migrations (the caller's, stm_lens_destroy), given each version's
 * changes (copied) and the versions whose migration could not be probed, then
 * finished with the lineage, whose families give each version's columns (the
 * identities that stm_lens_translate follows are computed from them as a derivation
 * computes them from the catalogs). Versions out of range are ignored. */
lens_set_t *stm_lens_assemble_new(size_t count);
void stm_lens_assemble_change(lens_set_t *s, int version, const lens_change *c);
void stm_lens_assemble_unprobed(lens_set_t *s, int version, const char *why);
struct lineage;
void stm_lens_assemble_finish(lens_set_t *s, const struct lineage *l);

#endif
