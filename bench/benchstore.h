/* benchstore.h - what the benchmarks of the sync layer share: a failure said and the
 * program ended, SQL run, a fresh stemma database. Benchmarks only. */
#ifndef STM_BENCHSTORE_H
#define STM_BENCHSTORE_H

#include "base/error.h"
#include "sync/store.h"

/* Prints "benchmark: MESSAGE" (err's) and exits 1 when rc is not STM_OK. */
void bench_check(stm_err rc, const stm_error *err);
/* Runs sql on db; prints it and SQLite's message and exits 1 on failure. */
void bench_exec(sqlite3 *db, const char *sql);
/* A fresh stemma database at path (an old file removed) with schema_sql run, stemma's
 * tables made and capture installed, as the migrator leaves one. The caller's
 * (stm_store_destroy). */
store_t *bench_fresh_store(const char *path, const char *schema_sql);
/* Runs n updates on store's database (update(stmt, i, ctx) binds and steps the i-th;
 * rows[i] is the row it changes, 1 to nrows), committing and collecting them into
 * operations whenever a row comes round again: changes to one row between two
 * collections fold into one (capture.h), so this keeps every update an operation, as a
 * node collecting between the application's writes would. */
void bench_updates_collected(store_t *store, sqlite3_stmt *stmt, int n, const int *rows,
                             int nrows, void (*update)(sqlite3_stmt *stmt, int i, void *ctx),
                             void *ctx);

#endif
