/* bench_apply - how fast operations apply, against SQLite doing the same writes.
 *
 * A table of 100,000 rows (id INTEGER PRIMARY KEY and five columns), inserted through
 * stemma's capture so the oplog is as it would be in use. Then 200,000 single-column
 * updates of random rows, written by another origin, go into a bundle, and
 *   ours:     the bundle is read, checked, decoded and applied (last writer wins,
 *             oplog, clocks, vector) in one transaction, as `stemma apply` does;
 *   baseline: plain SQLite runs `UPDATE t SET c = ? WHERE id = ?` for the same cells
 *             in one transaction, on a copy of the table without stemma.
 * Both on files in WAL mode with synchronous=NORMAL. Each figure is the median of
 * three runs (STEMMA_BENCH_RUNS to change); the ratio is ours / baseline. Not a test: figures go to stdout. */
#include "lineage/sqlscript.h"
#include "sync/apply.h"
#include "sync/bundle.h"
#include "sync/capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ROWS 100000
#define UPDATES 200000
#define MAX_RUNS 9

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_check(stm_err rc, const stm_error *err)
{
    if (rc != STM_OK) {
        fprintf(stderr, "bench_apply: %s\n", err->msg);
        exit(1);
    }
}

static void s_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "bench_apply: %s: %s\n", sql, msg);
        exit(1);
    }
}

static const char *const TABLE =
    "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c INTEGER, d REAL, e TEXT);";

static void s_fill(sqlite3 *db)
{
    sqlite3_stmt *ins = NULL;
    s_exec(db, "BEGIN");
    sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, ?1, 'row', 0, 0.5, 'text')", -1, &ins, NULL);
    for (int i = 1; i <= ROWS; i++) {
        sqlite3_bind_int(ins, 1, i);
        sqlite3_step(ins);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    s_exec(db, "COMMIT");
}

/* The random rows and values of the updates, the same for both sides. */
static int s_rows[UPDATES], s_values[UPDATES];

static double s_baseline(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/plain.db", dir);
    unlink(path);
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    s_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    s_exec(db, TABLE);
    s_fill(db);
    sqlite3_stmt *upd = NULL;
    sqlite3_prepare_v2(db, "UPDATE t SET c = ?1 WHERE id = ?2", -1, &upd, NULL);
    double t0 = s_now();
    s_exec(db, "BEGIN");
    for (int i = 0; i < UPDATES; i++) {
        sqlite3_bind_int(upd, 1, s_values[i]);
        sqlite3_bind_int(upd, 2, s_rows[i]);
        sqlite3_step(upd);
        sqlite3_reset(upd);
    }
    s_exec(db, "COMMIT");
    double t = s_now() - t0;
    sqlite3_finalize(upd);
    sqlite3_close(db);
    return t;
}

/* Writes the bundle of updates once (from a database of the writing origin). */
static void s_make_bundle(const char *dir, const char *bundle)
{
    char path[512];
    snprintf(path, sizeof path, "%s/writer.db", dir);
    unlink(path);
    store_t *store = NULL;
    stm_error err = {0};
    s_check(store_open(path, STORE_OPEN_CREATE, &store, &err), &err);
    s_check(store_exec(store, TABLE, &err), &err);
    s_check(store_exec(store, "BEGIN", &err), &err);
    s_check(store_prepare(store, &err), &err);
    s_check(capture_install(store, &err), &err);
    s_check(store_exec(store, "COMMIT", &err), &err);
    sqlite3 *db = store_db(store);
    /* The writer has the rows too (not captured: they are the reader's already). */
    s_exec(db, "UPDATE stemma_local SET applying = 1");
    s_fill(db);
    s_exec(db, "UPDATE stemma_local SET applying = 0");
    sqlite3_stmt *upd = NULL;
    sqlite3_prepare_v2(db, "UPDATE t SET c = ?1 WHERE id = ?2", -1, &upd, NULL);
    s_exec(db, "BEGIN");
    for (int i = 0; i < UPDATES; i++) {
        sqlite3_bind_int(upd, 1, s_values[i]);
        sqlite3_bind_int(upd, 2, s_rows[i]);
        sqlite3_step(upd);
        sqlite3_reset(upd);
    }
    s_exec(db, "COMMIT");
    sqlite3_finalize(upd);
    bundle_info info;
    s_check(bundle_write(store, NULL, bundle, &info, &err), &err);
    if (info.ops != UPDATES) {
        fprintf(stderr, "bench_apply: the bundle holds %llu operations, not %d\n",
                (unsigned long long)info.ops, UPDATES);
        exit(1);
    }
    store_destroy(&store);
}

static stm_err s_apply_batch(void *ctx, const opbatch_t *batch, stm_error *err)
{
    void **args = ctx;
    return applier_apply(args[0], batch, args[1], err);
}

static double s_ours(const char *dir, const char *bundle, double *catch_up)
{
    char path[512];
    snprintf(path, sizeof path, "%s/reader.db", dir);
    unlink(path);
    store_t *store = NULL;
    stm_error err = {0};
    s_check(store_open(path, STORE_OPEN_CREATE, &store, &err), &err);
    s_check(store_exec(store, TABLE, &err), &err);
    s_check(store_exec(store, "BEGIN", &err), &err);
    s_check(store_prepare(store, &err), &err);
    s_check(capture_install(store, &err), &err);
    s_check(store_exec(store, "COMMIT", &err), &err);
    s_fill(store_db(store)); /* captured: 600,000 operations in the oplog */
    applier_t *applier = applier_new(store, NULL, NULL);
    apply_stats st = {0};
    bundle_info info;
    void *args[2] = {applier, &st};
    /* The captured rows enter the clock table first; a running node does this as
     * writes happen, so it is timed on its own. */
    double c0 = s_now();
    s_check(applier_catch_up(applier, &err), &err);
    *catch_up = s_now() - c0;
    double t0 = s_now();
    s_check(applier_begin(applier, &err), &err); /* one transaction, as `stemma apply` */
    s_check(bundle_read(bundle, s_apply_batch, args, &info, &err), &err);
    s_check(applier_commit(applier, &err), &err);
    double t = s_now() - t0;
    if (st.applied != UPDATES) {
        fprintf(stderr, "bench_apply: applied %llu of %d\n", (unsigned long long)st.applied,
                UPDATES);
        exit(1);
    }
    applier_destroy(&applier);
    store_destroy(&store);
    return t;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char bundle[512];
    snprintf(bundle, sizeof bundle, "%s/bench_apply.bundle", dir);
    srand(42);
    for (int i = 0; i < UPDATES; i++) {
        s_rows[i] = 1 + rand() % ROWS;
        s_values[i] = i + 1; /* distinct: every update changes its cell */
    }
    s_make_bundle(dir, bundle);
    /* STEMMA_BENCH_RUNS=1 for a quick look (under a profiler, say). */
    const char *env = getenv("STEMMA_BENCH_RUNS");
    int RUNS = env && atoi(env) > 0 && atoi(env) <= MAX_RUNS ? atoi(env) : 3;
    double ours[MAX_RUNS], base[MAX_RUNS], catch_up[MAX_RUNS];
    for (int r = 0; r < RUNS; r++) {
        base[r] = s_baseline(dir);
        ours[r] = s_ours(dir, bundle, &catch_up[r]);
    }
    qsort(catch_up, RUNS, sizeof catch_up[0], s_cmp);
    qsort(ours, RUNS, sizeof ours[0], s_cmp);
    qsort(base, RUNS, sizeof base[0], s_cmp);
    double ours_rate = UPDATES / ours[RUNS / 2], base_rate = UPDATES / base[RUNS / 2];
    printf("stemma apply benchmark: %d single-column updates of random rows of %d, median of %d\n\n",
           UPDATES, ROWS, RUNS);
    printf("%-46s %12s\n", "figure", "ops/s");
    printf("%-46s %12.0f\n", "apply from a bundle (stemma)", ours_rate);
    printf("%-46s %12.0f\n", "UPDATE t SET c = ? WHERE id = ? (SQLite)", base_rate);
    printf("%-46s %12.2f\n", "ratio", ours_rate / base_rate);
    printf("%-46s %12.0f\n", "clock catch-up of captured ops (stemma)",
           ROWS * 6 / catch_up[RUNS / 2]);
    char path[600];
    const char *files[] = {"plain.db", "writer.db", "reader.db"};
    for (size_t i = 0; i < 3; i++) {
        const char *suffix[] = {"", "-wal", "-shm"};
        for (size_t k = 0; k < 3; k++) {
            snprintf(path, sizeof path, "%s/%s%s", dir, files[i], suffix[k]);
            unlink(path);
        }
    }
    unlink(bundle);
    return 0;
}
