/* dbutil.h - helpers for tests of the sync layer: databases set up for stemma from
 * SQL text, writes made the way an application makes them (its own connection), and
 * a content hash of what replicas hold. */
#ifndef STM_DBUTIL_H
#define STM_DBUTIL_H

#include "sync/apply.h"
#include "sync/migrate.h"
#include "sync/op.h"
#include "sync/store.h"

/* Creates (or opens) path, runs schema_sql, prepares stemma's tables, stamps version
 * (may be NULL: zero) and installs capture, in one transaction, as the migrator does.
 * Returns the open store (the caller's). Fails the test on error. */
store_t *du_setup(const char *path, const char *schema_sql, const stm_id *version);
/* Runs more schema SQL on an open store the way the migrator does: capture off, the
 * SQL, capture on again. */
void du_migrate(store_t *store, const char *schema_sql);
/* Runs sql on path through a connection of its own, as an application would. Fails the
 * test on error. */
void du_exec(const char *path, const char *sql);
/* Collects the store's queued changes (stm_applier_catch_up) and lists every operation it
 * holds, one a row, in the temporary table temp.ops (origin, seq, hlc, version_id,
 * tbl, pk, col, aff, val, parked: NULL, 1 for schema, 2 for constraint), so that tests
 * can ask about operations in SQL whatever the oplog's storage format. */
void du_ops(store_t *store);
/* Sets origin's entry in stemma_vector to seq, as apply does for a remote origin whose
 * operations it records. */
void du_vector_set(store_t *store, const stm_id *origin, uint64_t seq);
/* Every operation from holds (its queued changes collected first) that to lacks (by
 * to's vector), encoded and decoded again as a bundle or a peer carries them. The
 * caller frees the batch. */
opbatch_t *du_lacking(store_t *from, store_t *to);
/* Applies batch to store as a peer's operations, in a transaction of its own; returns
 * the counts. Fails the test on error. */
apply_stats du_apply(store_t *store, const opbatch_t *batch);
/* The conflicts store keeps aside (stm_conflicts_rows) as text, one line per cell:
 * table, key, incarnation, column=value; what every replica must agree on. The caller
 * frees it. */
char *du_conflicts(store_t *store);
/* The number sql (a SELECT of one integer) returns on store's connection; a query
 * naming temp.ops runs after du_ops. */
long long du_int(store_t *store, const char *sql);
/* Opens an existing database as stemma does; the caller's (stm_store_destroy). Fails the
 * test on error. */
store_t *du_open(const char *path);
/* Every operation from holds that to lacks (du_lacking), applied to to as a peer's;
 * returns the counts. Both are databases on disk, opened and closed here. */
apply_stats du_sync(const char *from, const char *to);
/* Migrates (dir MIGRATE_UP) or rolls back (MIGRATE_DOWN) the database at path to
 * version `to` of the schema set at set, as `stemma migrate` / `rollback` does without a
 * backup; *res (may be NULL) is the run's result, the caller's to free. Fails the test
 * on error. */
void du_migrate_to(const char *path, const char *set, migrate_direction dir, int to,
                   migrate_result *res);

/* Takes the stemma tables of the database at path (closed) back to format 6, as a
 * stemma of that format left them (no counters, no stemma_peers), for upgrade tests. */
void du_format_6(const char *path);

/* A hex digest of the rows of query (every column, in the query's order), run on
 * store's connection; the caller frees it. */
char *du_hash(store_t *store, const char *query);

#endif
