/* bench_compact - compaction's figures (issue 14 item 4), each with its baseline
 * measured in the same run (docs/performance.md, "Compaction"):
 *
 *   sizes       a table of ROWS rows of 5 columns that barely grows while its
 *               application updates random rows (WRITES writes, one or two columns
 *               each, collected as a node collects between them): stemma's tables
 *               against the application's own, in bytes of B-tree pages (dbstat), before
 *               and after a compaction pass; and what is left after it, by part (the
 *               values the latest writes hold, which the table holds too; the rest)
 *   pass        the time of that pass, in slices as a node runs it, against SQLite
 *               joining every oplog row with its row's clocks (what any pass must read),
 *               and its longest slice (what a node's loop waits for at most)
 *   stats       the counters `stemma stats` reads (sync/store.h) at 10,000, 100,000 and
 *               1,000,000 operations, against counting the oplog as stats did before
 *               (sum(n) over stemma_oplog, count(*) over stemma_parked)
 *
 *   build/bench_compact DIR        STEMMA_BENCH_QUICK=1: stats at 10k and 100k only
 *
 * Not a test: figures go to stdout (the summary rows) and stderr (the report). */
#include "base/clock.h"
#include "sync/apply.h"
#include "sync/compact.h"
#include "sync/oplog.h"
#include "benchstore.h"
#include "benchutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROWS 100000
#define WRITES 400000
#define STATS_CALLS 2000

static const char *const TABLE =
    "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c INTEGER, d REAL, e TEXT);";

/* rows rows inserted by the application, collected. */
static void s_insert(store_t *store, int rows)
{
    sqlite3 *db = stm_store_db(store);
    sqlite3_stmt *ins = NULL;
    bench_exec(db, "BEGIN");
    sqlite3_prepare_v2(db,
                       "INSERT INTO t VALUES (?1, ?1 * 7, 'name of row ' || ?1, ?1 % 100, "
                       "?1 / 3.0, 'some text that row ' || ?1 || ' holds')",
                       -1, &ins, NULL);
    for (int i = 1; i <= rows; i++) {
        sqlite3_bind_int(ins, 1, i);
        sqlite3_step(ins);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    bench_exec(db, "COMMIT");
    applier_t *a = stm_applier_new(store, NULL, NULL);
    stm_error err = {0};
    bench_check(stm_applier_catch_up(a, &err), &err);
    stm_applier_destroy(&a);
}

static uint64_t s_rand(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ull;
}

/* writes updates of random rows, one column (a, c or e) or two (b and d), collected
 * every 1,000: what a node collecting between the application's writes records. */
static void s_update(store_t *store, int writes)
{
    sqlite3 *db = stm_store_db(store);
    static const char *const sql[] = {
        "UPDATE t SET a = ?2 WHERE id = ?1", "UPDATE t SET c = ?2 WHERE id = ?1",
        "UPDATE t SET e = 'text written again, ' || ?2 WHERE id = ?1",
        "UPDATE t SET b = 'renamed ' || ?2, d = ?2 / 7.0 WHERE id = ?1"};
    sqlite3_stmt *upd[4];
    for (int k = 0; k < 4; k++)
        sqlite3_prepare_v2(db, sql[k], -1, &upd[k], NULL);
    applier_t *a = stm_applier_new(store, NULL, NULL);
    stm_error err = {0};
    uint64_t state = 88172645463325252ull;
    for (int i = 0; i < writes; i++) {
        if (i % 1000 == 0)
            bench_exec(db, "BEGIN");
        sqlite3_stmt *u = upd[s_rand(&state) % 4];
        sqlite3_bind_int(u, 1, (int)(s_rand(&state) % ROWS) + 1);
        sqlite3_bind_int(u, 2, i);
        sqlite3_step(u);
        sqlite3_reset(u);
        if (i % 1000 == 999) {
            bench_exec(db, "COMMIT");
            bench_check(stm_applier_catch_up(a, &err), &err);
        }
    }
    stm_applier_destroy(&a);
    for (int k = 0; k < 4; k++)
        sqlite3_finalize(upd[k]);
}

/* Bytes of the B-trees (tables and indexes) of db whose names match like: their pages
 * (what the file holds for them), or what their rows hold (payload). */
static long long s_bytes(sqlite3 *db, const char *like, bool payload)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT coalesce(sum(%s), 0) FROM dbstat WHERE name LIKE '%s'",
             payload ? "payload" : "pgsize", like);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_compact: dbstat: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
    long long n = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    return n;
}

typedef struct {
    long long user, ours, oplog, clock; /* the table t; every stemma_* B-tree; two of them */
} s_size;

static s_size s_sizes(sqlite3 *db, bool payload)
{
    return (s_size){.user = s_bytes(db, "t", payload),
                    .ours = s_bytes(db, "stemma%", payload),
                    .oplog = s_bytes(db, "stemma_oplog", payload),
                    .clock = s_bytes(db, "stemma_clock", payload)};
}

/* The sizes of store's database copied whole by VACUUM INTO: its B-trees' pages packed
 * again, as the same rows take them at best. */
static s_size s_packed(store_t *store, const char *dir)
{
    char copy[512], sql[600];
    snprintf(copy, sizeof copy, "%s/packed.db", dir);
    unlink(copy);
    snprintf(sql, sizeof sql, "VACUUM INTO '%s'", copy);
    bench_exec(stm_store_db(store), sql);
    sqlite3 *db = NULL;
    sqlite3_open(copy, &db);
    s_size s = s_sizes(db, false);
    sqlite3_close(db);
    unlink(copy);
    return s;
}

static void s_say(const char *when, s_size s)
{
    fprintf(stderr, "  %-28s stemma %10lld (oplog %10lld, clock %9lld), the table %9lld: %.2fx\n",
            when, s.ours, s.oplog, s.clock, s.user, (double)s.ours / (double)s.user);
}

/* What the oplog's operations hold as values (encoded about as MessagePack does):
 * what a latest write need not keep, the table holding it. */
static long long s_value_bytes(store_t *store)
{
    oplog_reader_t *r = NULL;
    stm_error err = {0};
    bench_check(stm_oplog_reader_new(store, NULL, &r, &err), &err);
    opbatch_t *b = stm_opbatch_new();
    long long bytes = 0;
    size_t got;
    do {
        stm_opbatch_clear(b);
        bench_check(stm_oplog_reader_next(r, b, 10000, 8u << 20, &got, &err), &err);
        for (size_t i = 0; i < stm_opbatch_count(b); i++) {
            const op_value *v = &stm_opbatch_at(b, i)->value;
            bytes += v->type == VALUE_TEXT || v->type == VALUE_BLOB ? (long long)v->len + 2
                     : v->type == VALUE_REAL                        ? 9
                     : v->type == VALUE_INTEGER                     ? 5
                                                                    : 1;
        }
    } while (got);
    stm_opbatch_destroy(&b);
    stm_oplog_reader_destroy(&r);
    return bytes;
}

static double s_join_floor(store_t *store)
{
    double t0 = bench_now();
    long long n = 0;
    sqlite3_stmt *q = NULL;
    sqlite3_prepare_v2(stm_store_db(store),
                       "SELECT count(*) FROM stemma_oplog AS o JOIN stemma_clock AS c ON "
                       "c.tbl = o.tbl AND c.pk = o.pk",
                       -1, &q, NULL);
    if (sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (n <= 0)
        bench_die("the join floor found no row");
    return bench_now() - t0;
}

static void s_compaction(const char *dir)
{
    char path[512], a[64], b[64], r[32];
    snprintf(path, sizeof path, "%s/compact.db", dir);
    store_t *store = bench_fresh_store(path, TABLE);
    s_insert(store, ROWS);
    s_update(store, WRITES);
    store_counts before, after;
    stm_error err = {0};
    bench_check(stm_store_counts(store, &before, &err), &err);
    s_size pages0 = s_sizes(stm_store_db(store), false), rows0 = s_sizes(stm_store_db(store), true);
    double floor = s_join_floor(store);
    /* The pass as a node runs it: slices of COMPACT_SLICE_ROWS, each its own
     * transaction. */
    applier_t *ap = stm_applier_new(store, NULL, NULL);
    compact_cursor at = {0, 0};
    compact_stats st = {0};
    double t0 = bench_now(), longest = 0;
    int slices = 0;
    do {
        double s0 = bench_now();
        bench_check(stm_applier_compact(ap, NULL, &at, COMPACT_SLICE_ROWS, &st, &err), &err);
        double took = bench_now() - s0;
        longest = took > longest ? took : longest;
        slices++;
    } while (!st.done);
    double pass = bench_now() - t0;
    stm_applier_destroy(&ap);
    bench_check(stm_store_counts(store, &after, &err), &err);
    s_size pages1 = s_sizes(stm_store_db(store), false), rows1 = s_sizes(stm_store_db(store), true);
    s_size packed = s_packed(store, dir);
    long long values = s_value_bytes(store);
    long long cells = bench_count(path, "SELECT sum(length(cells)) FROM stemma_oplog");
    long long nrows = bench_count(path, "SELECT count(*) FROM stemma_oplog");
    long long clocks = bench_count(path, "SELECT sum(length(cells)) FROM stemma_clock");
    fprintf(stderr, "%d rows, %d updates: oplog %llu operations before, %llu after (%llu pruned)\n",
            ROWS, WRITES, (unsigned long long)before.operations,
            (unsigned long long)after.operations, (unsigned long long)after.pruned);
    s_say("before, pages:", pages0);
    s_say("before, rows' bytes:", rows0);
    s_say("after, pages:", pages1);
    s_say("after, rows' bytes:", rows1);
    s_say("after, packed (VACUUM INTO):", packed);
    fprintf(stderr,
            "  oplog after: %lld rows, their cells %lld bytes (%.1f a row: names, affinities, "
            "values), the rest %.1f a row (origin, seq, n, clock, version, table, key, "
            "incarnation, B-tree); clocks: %.1f bytes a row's\n",
            nrows, cells, (double)cells / (double)nrows,
            (double)(rows1.oplog - cells) / (double)nrows, (double)clocks / ROWS);
    fprintf(stderr,
            "  values the latest writes hold (the table holds them too): about %lld bytes; "
            "packed without them stemma would take %.2fx\n"
            "  pass: %d slices in %.3f s (longest %.1f ms), join floor %.3f s\n",
            values, (double)(packed.ours - values) / (double)packed.user, slices, pass,
            longest * 1000, floor);
    snprintf(a, sizeof a, "%.2fx", (double)pages0.ours / (double)pages0.user);
    snprintf(b, sizeof b, "%.2fx / %.2fx", (double)pages1.ours / (double)pages1.user,
             (double)packed.ours / (double)packed.user);
    bench_row("stemma / table bytes, 100k rows after 400k updates: before / after a pass "
              "(pages / packed)",
              a, b, "", "after <= 1x");
    snprintf(a, sizeof a, "%llu", (unsigned long long)before.operations);
    snprintf(b, sizeof b, "%llu", (unsigned long long)after.operations);
    snprintf(r, sizeof r, "%.2f", (double)after.operations / (double)before.operations);
    bench_row("oplog operations: before / after a pass", a, b, r, "the live cells");
    snprintf(a, sizeof a, "%.2fx", (double)packed.clock / (double)packed.user);
    snprintf(b, sizeof b, "%.2fx", (double)(packed.ours - values) / (double)packed.user);
    bench_row("what bounds it, packed: the clocks alone / stemma without the latest values", a,
              b, "", "");
    snprintf(a, sizeof a, "%.3f s", pass);
    snprintf(b, sizeof b, "%.3f s (join)", floor);
    snprintf(r, sizeof r, "%.1f", pass / floor);
    bench_row("compaction pass (every slice) / SQLite joining oplog and clocks", a, b, r,
              "reported");
    snprintf(a, sizeof a, "%.1f ms", longest * 1000);
    bench_row("compaction: longest slice (the node's loop waits at most this)", a, "", "",
              "<= 100 ms");
    stm_store_destroy(&store);
}

/* Medians: stats through the counters, and the scan it did before. */
static int s_by_value(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static void s_stats_at(const char *dir, int ops)
{
    char path[512], a[64], b[64], r[32], figure[128];
    snprintf(path, sizeof path, "%s/stats-%d.db", dir, ops);
    store_t *store = bench_fresh_store(path, TABLE);
    s_insert(store, ops / 6); /* an insert is 6 operations */
    stm_error err = {0};
    static double times[STATS_CALLS];
    for (int i = 0; i < STATS_CALLS; i++) {
        store_counts c;
        double t0 = bench_now();
        bench_check(stm_store_counts(store, &c, &err), &err);
        times[i] = bench_now() - t0;
    }
    qsort(times, STATS_CALLS, sizeof *times, s_by_value);
    double counters = times[STATS_CALLS / 2];
    double scans[5];
    for (int i = 0; i < 5; i++) {
        double t0 = bench_now();
        sqlite3_stmt *q = NULL;
        sqlite3_prepare_v2(stm_store_db(store),
                           "SELECT coalesce(sum(n), 0), (SELECT count(*) FROM stemma_parked) "
                           "FROM stemma_oplog",
                           -1, &q, NULL);
        if (sqlite3_step(q) != SQLITE_ROW)
            bench_die("the scan failed");
        sqlite3_finalize(q);
        scans[i] = bench_now() - t0;
    }
    qsort(scans, 5, sizeof *scans, s_by_value);
    fprintf(stderr, "stats with %d operations: counters %.1f us, the scan %.2f ms\n", ops,
            counters * 1e6, scans[2] * 1e3);
    snprintf(figure, sizeof figure, "stats at %d operations: counters / scanning the oplog", ops);
    snprintf(a, sizeof a, "%.1f us", counters * 1e6);
    snprintf(b, sizeof b, "%.2f ms (scan)", scans[2] * 1e3);
    snprintf(r, sizeof r, "%.4f", counters / scans[2]);
    bench_row(figure, a, b, r, "flat");
    stm_store_destroy(&store);
    unlink(path);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_compact DIR\n");
        return 2;
    }
    s_compaction(argv[1]);
    s_stats_at(argv[1], 10002);
    s_stats_at(argv[1], 100002);
    if (!getenv("STEMMA_BENCH_QUICK"))
        s_stats_at(argv[1], 1000002);
    return 0;
}
