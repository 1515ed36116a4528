/* migrate_ops.h - what a migration step writes into synced rows, made operations.
 *
 * A migration runs with the capture triggers off or idle (capture.h). What it does to the
 * schema every device does alike, and the lenses translate (lineage/lens.h). What it
 * does to the data does not happen alike: a backfill (UPDATE), a column computed by a
 * rebuild, rows it inserts (INSERT ... SELECT) or deletes reach the rows a database
 * holds when the step runs there, and no others. A row that arrives later, or was on
 * another device, misses it, and the replicas differ for good. So the migrator watches
 * each step and sends what it wrote to synced rows as operations of this database:
 *
 *  1. Before each statement of the step runs, every synced table of the version the
 *     step starts from that the statement writes (SQLite's authorizer names them as it
 *     prepares the statement: INSERT, UPDATE, DELETE, DROP TABLE, the statements of
 *     triggers it fires included) and that the step has not written yet is copied
 *     into a temporary table, with an index on its key: the rows as the step found
 *     them.
 *  2. After the step, each synced table of the new version whose rows come from a
 *     copied table (the lenses follow renames and rebuilds; else its own name) is
 *     compared with the copy by key: rows the step inserted, rows it deleted, and
 *     cells whose value it changed. A column with no source in the copy (added or
 *     computed) differs when it holds anything but its constant default; a column
 *     whose default is not constant (CURRENT_TIMESTAMP, a function of the time or of
 *     chance) always differs. A table with no source at all (new in the step) that
 *     holds rows: every row. A table whose key columns have no source: every row.
 *  3. Each difference becomes a row change of this database's origin at the new
 *     version, with a clock one tick above the latest clock its row has here (1 for a
 *     row with none: a row the step made): it is derived from that data, so it beats
 *     the data it was computed from and nothing written after it. Two devices that
 *     run the step on the same row write it with the same clock and the origin breaks
 *     the tie, so every replica converges; a real write made later beats both.
 *  4. A cell or a row whose latest write was made at the step's version or a later
 *     one (received while this database was older) is not the migration's to change:
 *     it is put back as the copy has it, and nothing is sent for it. So is a cell with
 *     no write of its own in a row whose latest parked write (one this database had
 *     no column for: a value a rollback dropped, sync/dropped.h) is of that version or
 *     later: the write replays after the step, and must not meet a derived one that
 *     beats it. One a constraint of the new version will not take back stays as the
 *     step left it, counted.
 *
 * The copies live in the temp schema, inside the step's transaction: a failed step
 * takes them with it, and stm_migrate_ops_destroy drops what is left. */
#ifndef STM_MIGRATE_OPS_H
#define STM_MIGRATE_OPS_H

#include "store.h"
#include "base/error.h"
#include "lineage/lens.h"
#include "lineage/lineage.h"

#include <stdint.h>

typedef struct {
    uint64_t rows;   /* row changes made operations */
    uint64_t ops;    /* operations recorded */
    uint64_t kept;   /* cells or rows written at the step's version or later, put back */
    uint64_t unkept; /* ... that could not be put back (a constraint refused) */
} migrate_ops_stats;

typedef struct migrate_ops migrate_ops_t;

/* A watcher for one step on store's database (lent; it must outlive the watcher).
 * since (lent likewise; NULL: none) is an earlier reading of the schema: the tables
 * whose text did not change since are taken from it (stm_catalog_read_since); with
 * since_is_now, it is the schema the step starts from, taken whole without asking
 * SQLite. The caller owns the result (stm_migrate_ops_destroy). */
migrate_ops_t *stm_migrate_ops_new(store_t *store, const catalog_t *since, bool since_is_now);
void stm_migrate_ops_destroy(migrate_ops_t **self_p);

/* Runs the step's SQL text (file names it in messages) in the caller's open write
 * transaction, copying what it writes first (1). Errors as stm_sqlscript_run's. */
STM_NODISCARD stm_err stm_migrate_ops_run(migrate_ops_t *m, const char *file, const char *sql,
                                          stm_error *err);

/* After the step has run, in the same transaction, once the database's version id and
 * capture marks are the new version's (stm_capture_mark_since): (2) - (4). lenses
 * (NULL: names are kept), lineage (the schema set's; NULL: nothing is put back) and
 * now (the schema as the step left it; NULL: read here) are lent; version is the
 * step's number in them. *st is filled. STM_EDB naming the database when SQLite
 * fails; the caller rolls back. */
STM_NODISCARD stm_err stm_migrate_ops_record(migrate_ops_t *m, const lens_set_t *lenses,
                                             const lineage_t *lineage, const catalog_t *now,
                                             int version, migrate_ops_stats *st, stm_error *err);

/* For a database stemma takes over with rows in it (stemma migrate --baseline): every
 * row of every synced table, in the caller's open write transaction, once stemma's
 * tables, the version id (`version` of lineage, lent) and the capture triggers are set
 * up, recorded as a row change of this database's origin with the clock (3) gives a
 * row a step made: 1, for a row with no clock here. So the first sync carries the rows
 * to a fresh peer, and any real write, made here or elsewhere, beats them. They are
 * the application's writes, not a migration's: not derived (they apply at any version,
 * through the lenses, as its later writes will), and in a table whose keys each device
 * picks each row is an incarnation of this database (identity.h): another device's row
 * under the same key is another row, kept aside, never merged into it. *st is filled.
 * Errors as stm_migrate_ops_record's. */
STM_NODISCARD stm_err stm_migrate_ops_record_rows(store_t *store, const lineage_t *lineage,
                                                  int version, migrate_ops_stats *st,
                                                  stm_error *err);

#endif
