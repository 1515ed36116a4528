/* benchstore.c - benchstore.h. */
#include "benchstore.h"
#include "sync/apply.h"
#include "sync/capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void bench_check(stm_err rc, const stm_error *err)
{
    if (rc != STM_OK) {
        fprintf(stderr, "benchmark: %s\n", err->msg);
        exit(1);
    }
}

void bench_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "benchmark: %s: %s\n", sql, msg);
        exit(1);
    }
}

store_t *bench_fresh_store(const char *path, const char *schema_sql)
{
    unlink(path);
    store_t *store = NULL;
    stm_error err = {0};
    bench_check(stm_store_open(path, STORE_OPEN_CREATE, &store, &err), &err);
    bench_check(stm_store_exec(store, schema_sql, &err), &err);
    bench_check(stm_store_exec(store, "BEGIN", &err), &err);
    bench_check(stm_store_prepare(store, &err), &err);
    bench_check(stm_capture_install(store, &err), &err);
    bench_check(stm_store_exec(store, "COMMIT", &err), &err);
    return store;
}

void bench_updates_collected(store_t *store, sqlite3_stmt *stmt, int n, const int *rows,
                             int nrows, void (*update)(sqlite3_stmt *stmt, int i, void *ctx),
                             void *ctx)
{
    sqlite3 *db = stm_store_db(store);
    stm_error err = {0};
    applier_t *applier = stm_applier_new(store, NULL, NULL);
    int *chunk_of = calloc((size_t)nrows + 1, sizeof *chunk_of);
    int chunk = 1;
    bench_exec(db, "BEGIN");
    for (int i = 0; i < n; i++) {
        if (chunk_of[rows[i]] == chunk) {
            bench_exec(db, "COMMIT");
            bench_check(stm_applier_catch_up(applier, &err), &err);
            bench_exec(db, "BEGIN");
            chunk++;
        }
        chunk_of[rows[i]] = chunk;
        update(stmt, i, ctx);
    }
    bench_exec(db, "COMMIT");
    stm_applier_destroy(&applier);
    free(chunk_of);
}
