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

#endif
