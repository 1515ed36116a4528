/* bench_bulk.c - a bulk write collected (issue 14, target 5): the application updates
 * every row of a table in one statement, and stemma makes the queue operations, a slice
 * at a time (APPLY_COLLECT_SLICE_ROWS, each a transaction of its own) or, as before,
 * all at once. Meanwhile the application goes on writing a row every 5 ms; what is
 * measured is the longest any of those writes waited, the collector's peak memory and
 * its time, against the bulk UPDATE itself (the same run's baseline).
 *
 *   build/bench_bulk DIR [ROWS]     (default 300,000; scripts/bench: 1,000,000 with
 *                                    STEMMA_BENCH_LONG)
 *
 * The collector runs in a child process (its peak memory is its own: VmHWM); the
 * application is the parent, on a connection of its own with a busy timeout, as an
 * application's is. */
#include "benchstore.h"
#include "benchutil.h"
#include "sync/apply.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const SCHEMA =
    "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT);\n"
    "CREATE TABLE app (id INTEGER PRIMARY KEY, at REAL);\n";

/* Makes path a database of rows rows in t, collected (as a node would have). */
static void s_make(const char *path, long rows)
{
    store_t *store = bench_fresh_store(path, SCHEMA);
    char sql[256];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < %ld) "
             "INSERT INTO t SELECT i, i, 'row ' || i FROM k",
             rows);
    bench_exec(stm_store_db(store), sql);
    applier_t *a = stm_applier_new(store, NULL, NULL);
    stm_error err = {0};
    bench_check(stm_applier_catch_up(a, &err), &err);
    stm_applier_destroy(&a);
    stm_store_destroy(&store);
}

/* The collector: every queued row made operations, in slices (stm_applier_catch_up, as
 * stemma changes and a node do: the lock let go between slices) or, sliced = false, all
 * in one transaction as before slicing. Exits 0. */
static void s_collect(const char *path, bool sliced)
{
    store_t *store = NULL;
    stm_error err = {0};
    bench_check(stm_store_open(path, STORE_OPEN_EXISTING, &store, &err), &err);
    applier_t *a = stm_applier_new(store, NULL, NULL);
    bool more;
    bench_check(sliced ? stm_applier_catch_up(a, &err)
                       : stm_applier_collect_slice(a, SIZE_MAX, &more, &err),
                &err);
    stm_applier_destroy(&a);
    stm_store_destroy(&store);
    exit(0);
}

typedef struct {
    double seconds;   /* the collector's time */
    double worst_ms;  /* the longest an application write waited */
    long peak_kib;    /* the collector's peak memory */
    int writes;       /* application writes made meanwhile */
} s_run;

/* Runs the collector on path while the application writes; what it measured. */
static s_run s_measure(const char *path, bool sliced)
{
    sqlite3 *app = NULL;
    if (sqlite3_open(path, &app) != SQLITE_OK)
        bench_die("cannot open the database as the application");
    sqlite3_busy_timeout(app, 60000);
    /* Its writes' time is their wait for the lock and their commit: the checkpoints of
     * the WAL the collector fills are the collector's (its automatic ones), not made
     * by whichever small write comes after. */
    bench_exec(app, "PRAGMA wal_autocheckpoint = 0");
    s_run r = {0};
    fflush(stdout); /* the child would print what is buffered again */
    double start = bench_now();
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork");
    if (pid == 0)
        s_collect(path, sliced);
    int status = 0;
    for (;;) {
        long peak = bench_peak_kib(pid);
        if (peak > r.peak_kib)
            r.peak_kib = peak;
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            break;
        double t0 = bench_now();
        bench_exec(app, "INSERT INTO app (at) VALUES (julianday('now'))");
        double waited = (bench_now() - t0) * 1000.0;
        if (waited > r.worst_ms)
            r.worst_ms = waited;
        r.writes++;
        usleep(5000);
    }
    r.seconds = bench_now() - start;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_die("the collector failed");
    sqlite3_close(app);
    return r;
}

/* The application's bulk UPDATE of every row of t: the baseline, and the queue. */
static double s_bulk_update(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        bench_die("cannot open the database");
    double t0 = bench_now();
    bench_exec(db, "UPDATE t SET a = a + 1");
    double s = bench_now() - t0;
    /* The WAL the UPDATE left checkpointed now: else the first small write after it
     * copies it back (SQLite's automatic checkpoint), whoever makes that write. */
    bench_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(db);
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_bulk DIR [ROWS]\n");
        return 2;
    }
    long rows = argc > 2 ? atol(argv[2]) : 300000;
    char path[4096];
    snprintf(path, sizeof path, "%s/bulk.db", argv[1]);
    if (mkdir(argv[1], 0755) != 0 && errno != EEXIST)
        bench_die("cannot make DIR");
    s_make(path, rows);
    printf("bulk collect: UPDATE of every row of a %ld-row table, then its queue collected "
           "while the application writes a row every 5 ms\n",
           rows);
    s_run sliced, whole;
    double update_s = s_bulk_update(path);
    sliced = s_measure(path, true);
    double update2_s = s_bulk_update(path);
    whole = s_measure(path, false);
    printf("  the UPDATE itself: %.2f s and %.2f s\n", update_s, update2_s);
    printf("  sliced (%d rows a slice): %.2f s, the application's worst wait %.1f ms over "
           "%d writes, collector's peak %ld KiB\n",
           APPLY_COLLECT_SLICE_ROWS, sliced.seconds, sliced.worst_ms, sliced.writes,
           sliced.peak_kib);
    printf("  all at once (before):      %.2f s, the application's worst wait %.1f ms over "
           "%d writes, collector's peak %ld KiB\n",
           whole.seconds, whole.worst_ms, whole.writes, whole.peak_kib);
    char figure[128], a[64], b[64], ratio[32];
    snprintf(figure, sizeof figure, "bulk collect of %ld updated rows: time", rows);
    snprintf(a, sizeof a, "%.2f s", sliced.seconds);
    snprintf(b, sizeof b, "%.2f s (the UPDATE)", update_s);
    snprintf(ratio, sizeof ratio, "%.2f", sliced.seconds / update_s);
    bench_row(figure, a, b, ratio, "");
    snprintf(figure, sizeof figure, "bulk collect of %ld rows: application's worst wait", rows);
    snprintf(a, sizeof a, "%.1f ms", sliced.worst_ms);
    snprintf(b, sizeof b, "%.1f ms (all at once)", whole.worst_ms);
    snprintf(ratio, sizeof ratio, "%.3f", sliced.worst_ms / (whole.worst_ms > 0 ? whole.worst_ms : 1));
    bench_row(figure, a, b, ratio, "<= 100 ms");
    snprintf(figure, sizeof figure, "bulk collect of %ld rows: collector's peak memory", rows);
    snprintf(a, sizeof a, "%.1f MiB", (double)sliced.peak_kib / 1024.0);
    snprintf(b, sizeof b, "%.1f MiB (all at once)", (double)whole.peak_kib / 1024.0);
    snprintf(ratio, sizeof ratio, "%.3f",
             (double)sliced.peak_kib / (double)(whole.peak_kib > 0 ? whole.peak_kib : 1));
    bench_row(figure, a, b, ratio, "<= 64 MiB");
    return 0;
}
