/* bench_sync - operations from one node to a fresh peer over TCP loopback, CURVE on,
 * end to end until applied, against applying the same operations alone; and the peak
 * memory (VmHWM) of the sending and the receiving node.
 *
 *   bench_sync STEMMA WORKDIR [OPERATIONS]
 *
 * STEMMA is the stemma binary (the nodes run as real processes), WORKDIR an empty
 * scratch directory, OPERATIONS how many to sync (default 1,000,000: rows of the
 * tasks schema's `lists` table, three operations each). STEMMA_BENCH_WINDOW and
 * STEMMA_BENCH_BATCH set both nodes' `[sync] window` and `batch_ops` (default: the
 * node's defaults). Not a test: figures go to stdout. */
#include "benchutil.h"
#include "base/buf.h"
#include "sync/apply.h"
#include "sync/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *s_stemma;

static stm_err s_apply_batch(void *ctx, const opbatch_t *batch, stm_error *err)
{
    void **args = ctx;
    return stm_applier_apply(args[0], batch, args[1], err);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        bench_die("usage: bench_sync STEMMA WORKDIR [OPERATIONS]");
    s_stemma = argv[1];
    const char *work = argv[2];
    long long want_ops = argc > 3 ? atoll(argv[3]) : 1000000;
    long long rows = (want_ops + 2) / 3;
    mkdir(work, 0700);
    char a_db[600], b_db[600], c_db[600], a_dir[600], b_dir[600], bundle[600], log_a[600],
        log_b[600];
    snprintf(a_db, sizeof a_db, "%s/a.db", work);
    snprintf(b_db, sizeof b_db, "%s/b.db", work);
    snprintf(c_db, sizeof c_db, "%s/c.db", work);
    snprintf(a_dir, sizeof a_dir, "%s/a", work);
    snprintf(b_dir, sizeof b_dir, "%s/b", work);
    snprintf(bundle, sizeof bundle, "%s/a.bundle", work);
    snprintf(log_a, sizeof log_a, "%s/a.log", work);
    snprintf(log_b, sizeof log_b, "%s/b.log", work);
    const char *dbs[] = {a_db, b_db, c_db};
    for (int i = 0; i < 3; i++)
        bench_stemma(s_stemma, NULL, "migrate", "--db", dbs[i], "--schemas", "schemas/tasks", "--no-backup",
              (char *)NULL);

    /* The sender's operations, captured as an application would make them. */
    sqlite3 *a = NULL;
    sqlite3_open(a_db, &a);
    char sql[256];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %lld) "
             "INSERT INTO lists (id, name) SELECT 'l' || i, 'list number ' || i FROM n",
             rows);
    if (sqlite3_exec(a, sql, NULL, NULL, NULL) != SQLITE_OK)
        bench_die(sqlite3_errmsg(a));
    sqlite3_close(a);

    /* Apply alone: the same operations from a bundle into a fresh database. */
    stm_error err = {0};
    store_t *sa = NULL, *sc = NULL;
    bundle_info info;
    if (stm_store_open(a_db, STORE_OPEN_EXISTING, &sa, &err) ||
        stm_bundle_write(sa, NULL, bundle, &info, &err))
        bench_die(err.msg);
    stm_store_destroy(&sa);
    /* Counted after stm_bundle_write, which turned the queued rows into operations. */
    long long ops = bench_count(a_db, "SELECT coalesce(sum(n), 0) FROM stemma_oplog");
    if (stm_store_open(c_db, STORE_OPEN_EXISTING, &sc, &err))
        bench_die(err.msg);
    applier_t *applier = stm_applier_new(sc, NULL, NULL);
    apply_stats st = {0};
    void *args[2] = {applier, &st};
    double t0 = bench_now();
    if (stm_applier_begin(applier, &err) ||
        stm_bundle_read_once(bundle, s_apply_batch, args, &info, &err) ||
        stm_applier_commit(applier, &err))
        bench_die(err.msg);
    double apply_alone = bench_now() - t0;
    stm_applier_destroy(&applier);
    stm_store_destroy(&sc);

    /* Sync: two nodes on loopback with CURVE. */
    char bind_a[64], bind_b[64], peer[160];
    snprintf(bind_a, sizeof bind_a, "tcp://127.0.0.1:%d", bench_free_port());
    snprintf(bind_b, sizeof bind_b, "tcp://127.0.0.1:%d", bench_free_port());
    buf_t out = BUF_INIT;
    bench_stemma(s_stemma, &out, "init", "--dir", a_dir, "--db", a_db, "--schemas", "schemas/tasks", "--bind",
          bind_a, "--trust-on-first-use", (char *)NULL);
    const char *key = strstr(stm_buf_str(&out), "public key: ");
    if (!key)
        bench_die("no key from stemma init");
    snprintf(peer, sizeof peer, "%.40s@%s", key + 12, bind_a);
    stm_buf_free(&out);
    bench_stemma(s_stemma, NULL, "init", "--dir", b_dir, "--db", b_db, "--schemas", "schemas/tasks", "--bind",
          bind_b, "--peer", peer, "--trust-on-first-use", (char *)NULL);
    const char *window = getenv("STEMMA_BENCH_WINDOW"), *batch = getenv("STEMMA_BENCH_BATCH");
    for (int i = 0; i < 2; i++) {
        if (window && *window)
            bench_set_toml(i ? b_dir : a_dir, "window", window);
        if (batch && *batch)
            bench_set_toml(i ? b_dir : a_dir, "batch_ops", batch);
    }
    pid_t pa = bench_start_node(s_stemma, a_dir, log_a);
    usleep(200000);
    t0 = bench_now();
    pid_t pb = bench_start_node(s_stemma, b_dir, log_b);
    long long got = 0;
    /* Looked at every 2 % of the time so far (2 ms to 100 ms): a fixed 100 ms made a
     * sync shorter than that read as 0.1 s (10,002 operations capped at 100,000/s),
     * while looking every few ms at a million would take CPU from the nodes. */
    while (got < ops && bench_now() - t0 < 600) {
        double pause = (bench_now() - t0) / 50;
        usleep((useconds_t)(1e6 * (pause < 0.002 ? 0.002 : pause > 0.1 ? 0.1 : pause)));
        /* The counter the store keeps (O(1)): summing the oplog itself scanned it whole
         * at every look, a second of CPU per look at a million rows, taken from the
         * nodes on a 2-core machine. */
        got = bench_count(b_db, "SELECT ops FROM stemma_local WHERE id = 1");
    }
    double sync = bench_now() - t0;
    long peak_a = bench_peak_kib(pa), peak_b = bench_peak_kib(pb);
    double cpu_a = bench_cpu_seconds(pa), cpu_b = bench_cpu_seconds(pb);
    kill(pa, SIGTERM);
    kill(pb, SIGTERM);
    waitpid(pa, NULL, 0);
    waitpid(pb, NULL, 0);
    if (got < ops)
        bench_die("the peer did not get every operation within 10 minutes");

    printf("stemma sync benchmark: %lld operations (%lld rows of lists), one run, window %s, "
           "batch %s\n\n", ops, rows, window && *window ? window : "default",
           batch && *batch ? batch : "default");
    printf("%-52s %12s\n", "figure", "value");
    printf("%-52s %12.0f\n", "apply alone from a bundle, ops/s", ops / apply_alone);
    printf("%-52s %12.0f\n", "sync to a fresh peer, CURVE, until applied, ops/s", ops / sync);
    printf("%-52s %12.2f   (target >= 0.77: 1.3x the time)\n", "ratio sync / apply alone", apply_alone / sync);
    printf("%-52s %9.1f s     (apply alone %.1f s)\n", "processor time of the receiving node",
           cpu_b, apply_alone);
    printf("%-52s %9.1f s     (the sync %.1f s)\n", "processor time of the sending node", cpu_a,
           sync);
    printf("%-52s %9.1f MiB   (target <= 64)\n", "peak RSS of the sending node", peak_a / 1024.0);
    printf("%-52s %9.1f MiB   (target <= 64)\n", "peak RSS of the receiving node",
           peak_b / 1024.0);
    char fig[96], o[32], b[32], r[32];
    snprintf(fig, sizeof fig, "sync %lld ops, CURVE, until applied / apply alone", ops);
    snprintf(o, sizeof o, "%.0f/s", ops / sync);
    snprintf(b, sizeof b, "%.0f/s", ops / apply_alone);
    snprintf(r, sizeof r, "%.2f", apply_alone / sync);
    bench_row(fig, o, b, r, ">= 0.77");
    snprintf(fig, sizeof fig, "peak RSS sending / receiving, %lld ops", ops);
    snprintf(o, sizeof o, "%.1f / %.1f MiB", peak_a / 1024.0, peak_b / 1024.0);
    bench_row(fig, o, "", "", "<= 64 MiB");
    return 0;
}
