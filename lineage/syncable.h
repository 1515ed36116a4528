/* syncable.h - which tables of a schema stemma syncs, and why it does not sync the rest.
 *
 * The one rule, for a database (sync/capture.c installs triggers by it, sync/txn.c
 * applies by it) and for a schema history alike (migrate's plan, status, compare).
 * Asked in this order, the first answer holds:
 *
 *   1. own table   stemma_* and schema_version are stemma's, never synced, never listed
 *   2. excluded    the user keeps it local (migrate --exclude, kept in stemma_exclude)
 *   3. virtual     CREATE VIRTUAL TABLE (FTS5, R*Tree, ...): no trigger can be put on
 *                  it, so its rows cannot be captured; its module's shadow tables are
 *                  not the user's tables (catalog.h leaves them out)
 *   4. no key      no declared PRIMARY KEY: its rows have only rowids, which each device
 *                  picks for itself, so a row cannot be named across devices
 *   5. wide key    a key of more columns than SYNCABLE_MAX_KEY_COLUMNS (sync/key.h packs
 *                  at most that many)
 *   5b. collation  a key column compared by a collation other than BINARY, NOCASE and
 *                  RTRIM: stemma compares keys as the table does (sync/key.h), and knows
 *                  only SQLite's own collations (the application registers the others
 *                  on its own connection; stemma's has none of them)
 *   6. synced      every other table: a key of 1 .. SYNCABLE_MAX_KEY_COLUMNS columns, in
 *                  a rowid or a WITHOUT ROWID table
 *
 * 3 to 5 are the schema's own (structural): compare, which has no database, names
 * those. 2 needs the database's exclude list, which callers pass in as names.
 *
 * A database may also hold tables the schema set never had (made by the application
 * outside its migrations). Capture treats them by the same rule, from the database's
 * own catalog; one that the rule syncs is captured only once stemma sets capture up
 * after it was made (a migration step does), and until then it is *uncaptured*: sync/
 * capture.h tells, status and migrate name it (stm_syncable_add_outside). */
#ifndef STM_SYNCABLE_H
#define STM_SYNCABLE_H

#include "catalog.h"
#include "lineage.h"

#include <stdbool.h>
#include <stddef.h>

/* The most columns a synced table's key may have. A plain int, so that messages can
 * spell it (sync/key.h's KEY_MAX_COLUMNS is this). */
#define SYNCABLE_MAX_KEY_COLUMNS 32

/* Why a table is, or is not, synced (the numbered rule above). */
typedef enum {
    SYNCABLE_SYNCED,   /* captured and applied */
    SYNCABLE_OWN,      /* one of stemma's own tables */
    SYNCABLE_EXCLUDED, /* the user excluded it */
    SYNCABLE_VIRTUAL,  /* a virtual table */
    SYNCABLE_NO_KEY,   /* no declared primary key */
    SYNCABLE_WIDE_KEY, /* a primary key of more than SYNCABLE_MAX_KEY_COLUMNS columns */
    SYNCABLE_COLLATION, /* a key column's collation is not one of SQLite's own */
    SYNCABLE_UNCAPTURED, /* a table outside the schema set the rule syncs, without its
                            capture triggers yet (a database's state, not the schema's) */
} syncable_reason;

/* One table that is not synced, and why. Its name is owned by the array holding it. */
typedef struct {
    char *name;             /* as created */
    syncable_reason reason; /* never SYNCABLE_SYNCED or SYNCABLE_OWN */
    bool outside;           /* a table of the database the schema set never had (made by
                               the application outside its migrations) */
} syncable_table;

/* How stemma treats the ordinary table t (virtual tables are not catalog tables);
 * excluded: the user excluded it. */
syncable_reason stm_syncable_classify(const catalog_table *t, bool excluded);
/* True when stemma compares keys by the collation name (NULL: BINARY) as SQLite does:
 * BINARY, NOCASE, RTRIM. */
bool stm_syncable_known_collation(const char *name);
/* True when name is one of stemma's own tables (any case). */
bool stm_syncable_is_own(const char *name);

/* For programs: "synced", "own", "excluded", "virtual", "no_key", "wide_key",
 * "collation", "uncaptured". Static. */
const char *stm_syncable_reason_name(syncable_reason r);
/* For people, saying what to do where something can be done: "no primary key (rowids
 * differ between devices); add one in a migration, or keep it local with --exclude".
 * Static. */
const char *stm_syncable_reason_text(syncable_reason r);

/* The tables of l at version `version` (0 .. its count) that are not synced, each with
 * why, in order of name (ASCII case folded): every table then, virtual or not, but
 * stemma's own, that the rule refuses. excluded[0 .. nexcluded) are the names (any
 * case) the user excluded; none for the schema's own reasons alone. Returns how many;
 * *out is the caller's (stm_syncable_tables_free), NULL when there are none. */
size_t stm_syncable_unsynced(const lineage_t *l, int version, const char *const *excluded,
                             size_t nexcluded, syncable_table **out);

/* A database's tables that the schema set of l never had at any version (the
 * application's own, made outside its migrations), which capture treats by the same
 * rule: c is the database's catalog (lent), excluded as for stm_syncable_unsynced.
 * Those the rule refuses are added to *tables (*n entries, in order of name, as
 * stm_syncable_unsynced made them), marked outside; those it syncs to *names (*nnames,
 * as stm_syncable_synced made them; names NULL: not wanted). Both stay in order of
 * name; the caller owns them as before. */
void stm_syncable_add_outside(const catalog_t *c, const lineage_t *l, const char *const *excluded,
                              size_t nexcluded, syncable_table **tables, size_t *n, char ***names,
                              size_t *nnames);

/* Moves the entries of names[0 .. *nnames) for which captured(table, ctx) is false to
 * *tables (*n, in order of name, as above) as SYNCABLE_UNCAPTURED, outside; keeps the
 * others in order. */
void stm_syncable_move_uncaptured(bool (*captured)(const char *table, void *ctx), void *ctx,
                                  char **names, size_t *nnames, syncable_table **tables,
                                  size_t *n);

/* True when t's key is a rowid alias: INTEGER PRIMARY KEY (one column declared exactly
 * INTEGER, in a table with rowids), the key SQLite picks for a row inserted without. */
bool stm_syncable_rowid_alias(const catalog_table *t);

/* True when t's keys are chosen per device, so that its rows are never merged by key
 * (sync/identity.h): its CREATE TABLE says `-- stemma: keys per-device`
 * (directive.h), or it says nothing and its key is a rowid alias, which each device
 * picks for itself. `-- stemma: keys shared` makes any table merge by key. */
bool stm_syncable_keys_per_device(const catalog_table *t);

/* The tables of l at version that are synced (rule 6), by name (ASCII case folded);
 * excluded as for stm_syncable_unsynced. Returns how many; *out is the caller's
 * (stm_syncable_names_free), NULL when none. */
size_t stm_syncable_synced(const lineage_t *l, int version, const char *const *excluded,
                           size_t nexcluded, char ***out);

/* The synced tables of l at version whose keys are chosen per device, by name (ASCII
 * case folded); excluded as for stm_syncable_unsynced. Returns how many; *out is the
 * caller's (stm_syncable_names_free), NULL when none. */
size_t stm_syncable_per_device(const lineage_t *l, int version, const char *const *excluded,
                               size_t nexcluded, char ***out);
void stm_syncable_names_free(char **names, size_t n);

/* The tables synced at both versions `from` and `to` of l whose keys are chosen per
 * device at one and merge at the other (a rebuild that changed the key, or a
 * `-- stemma: keys` setting added or dropped), by name (ASCII case folded); excluded
 * as above. Rows synced under one rule are not redone under the other. Returns how
 * many; *out is the caller's (stm_syncable_names_free), NULL when none. */
size_t stm_syncable_keys_changed(const lineage_t *l, int from, int to,
                                 const char *const *excluded, size_t nexcluded, char ***out);

/* The entry of that name (any case) in tables, sorted as above, lent; NULL when the
 * table is not among them. */
const syncable_table *stm_syncable_find(const syncable_table *tables, size_t n, const char *name);

/* Frees the n tables and the array; safe on NULL. */
void stm_syncable_tables_free(syncable_table *tables, size_t n);

#endif
