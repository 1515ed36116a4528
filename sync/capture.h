/* capture.h - the triggers that record every local change as column-level operations.
 *
 * For each synced table stemma installs three AFTER triggers, in plain SQL so that
 * any writer (the application, the sqlite3 shell) is captured without linking
 * anything. Each row change ticks the hybrid logical clock once and takes one
 * sequence number per operation, in the writer's transaction:
 *
 *   INSERT   one operation per column (the key column too, so that the row exists
 *            wherever it arrives)
 *   UPDATE   one operation per column whose value changed (IS NOT); nothing when
 *            no value changed. A change of the primary key is a delete of the old
 *            key and an insert of the new one.
 *   DELETE   one row-delete operation (column NULL)
 *
 * The clock is max(previous + 1, wall-clock milliseconds << 16): 48 bits of
 * milliseconds and a 16-bit counter, increasing even when the wall clock steps back.
 * Triggers do nothing while stemma_local.applying is 1, so operations stemma applies
 * are not recorded twice.
 *
 * A table is synced when it has a primary key, is not one of stemma's own tables
 * (stemma_*, schema_version) and is not in stemma_exclude. A table whose primary key
 * has more than one column is refused (STM_EINPUT naming it) unless excluded: syncing
 * it by a partial key would mix rows up. Tables with no declared primary key (rowid
 * only) are not synced: their rowids are not stable across devices. Generated
 * columns are not captured; they are computed wherever the row lands. */
#ifndef STM_CAPTURE_H
#define STM_CAPTURE_H

#include "lineage/catalog.h"
#include "store.h"

/* Removes every capture trigger. Migrations run without them: ALTER TABLE cannot
 * drop a column a trigger names, and a migration's own data changes happen on every
 * device alike, so they are not operations to send. Runs in the caller's transaction. */
stm_err capture_uninstall(store_t *store, stm_error *err);

/* Installs the triggers for every synced table of the database's current schema,
 * replacing any there. Runs in the caller's transaction; store_prepare must have run. */
stm_err capture_install(store_t *store, stm_error *err);

/* Why a table is or is not synced. */
typedef enum {
    CAPTURE_SYNCED,       /* captured and applied */
    CAPTURE_OWN_TABLE,    /* one of stemma's tables */
    CAPTURE_EXCLUDED,     /* listed in stemma_exclude */
    CAPTURE_NO_KEY,       /* no declared primary key */
    CAPTURE_COMPOSITE_KEY /* a primary key of several columns: refused */
} capture_status;

/* How stemma treats table t (read from the catalog); excluded: it is in the
 * exclude list. */
capture_status capture_classify(const catalog_table *t, bool excluded);
/* The synced table's key column, lent (NULL unless CAPTURE_SYNCED). */
const catalog_column *capture_key_column(const catalog_table *t);
/* The one-letter affinity code operations carry: T, N, I, R or B. */
char capture_affinity_code(catalog_affinity a);
/* True when name is one of stemma's own tables. */
bool capture_is_own_table(const char *name);

/* Adds or removes tbl from the exclude list (stemma_exclude). Takes effect at the
 * next capture_install. */
stm_err capture_exclude(store_t *store, const char *tbl, bool exclude, stm_error *err);

#endif
