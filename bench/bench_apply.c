/* bench_apply - `stemma apply` as a whole process (start, open, read the bundle, apply
 * in one transaction, commit, exit) of single-column updates to random rows of a table
 * with text keys, against the same UPDATEs run by SQLite itself in the same run
 * (issue 14, item 6: "at least 0.5x plain UPDATE").
 *
 *   bench_apply STEMMA WORKDIR [UPDATES]      # default 200,000 updates of 100,000 rows
 *
 * The table is `t (id TEXT PRIMARY KEY, a, b, c, d, e)`, keyed by 17-character text keys
 * in no order their rows were made in (as uuids and names are). The writer inserts the
 * rows, then updates column c of random rows, collected whenever a row comes round
 * again (as a node collecting between the application's writes would), so that the
 * bundle holds every update. The reader holds the rows already (applied from a bundle,
 * not timed). Each run applies the bundle to a fresh copy of the reader with
 * `stemma apply --quiet`; the baseline runs the same UPDATEs on a plain copy of the rows
 * with one prepared statement in one transaction (WAL, synchronous=NORMAL and a page
 * cache of 32 MiB, as stemma opens a database), timed inside this process, so stemma's process
 * start counts against it. Median of 3 runs each. Not a test: figures go to stdout. */
#include "benchstore.h"
#include "benchutil.h"
#include "sync/apply.h"
#include "sync/bundle.h"
#include "sync/vector.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROWS 100000
#define RUNS 3

static const char *const TABLE =
    "CREATE TABLE t (id TEXT PRIMARY KEY, a INTEGER, b TEXT, c INTEGER, d REAL, e TEXT);";

/* Row i's key: a multiplicative hash of i first, so that the keys' order is not the
 * rows' order. */
static void s_key(int i, char out[24])
{
    snprintf(out, 24, "%08x-row%06d", (unsigned)i * 2654435761u, i);
}

static void s_fill(sqlite3 *db)
{
    sqlite3_stmt *ins = NULL;
    char key[24];
    bench_exec(db, "BEGIN");
    sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, ?2, 'row', 0, 0.5, 'text')", -1, &ins, NULL);
    for (int i = 1; i <= ROWS; i++) {
        s_key(i, key);
        sqlite3_bind_text(ins, 1, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(ins, 2, i);
        sqlite3_step(ins);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    bench_exec(db, "COMMIT");
}

static int *s_rows, *s_values;
static int s_updates;
static long long s_expect; /* sum(c) once every update is made, as SQLite's run left it */

static void s_update(sqlite3_stmt *upd, int i)
{
    char key[24];
    s_key(s_rows[i], key);
    sqlite3_bind_int(upd, 1, s_values[i]);
    sqlite3_bind_text(upd, 2, key, -1, SQLITE_TRANSIENT);
    sqlite3_step(upd);
    sqlite3_reset(upd);
}

/* s_update as bench_updates_collected calls it. */
static void s_update_at(sqlite3_stmt *upd, int i, void *ctx)
{
    (void)ctx;
    s_update(upd, i);
}

static stm_err s_apply_batch(void *ctx, const opbatch_t *batch, stm_error *err)
{
    void **args = ctx;
    return stm_applier_apply(args[0], batch, args[1], err);
}

static void s_apply_bundle(store_t *store, const char *path)
{
    applier_t *applier = stm_applier_new(store, NULL, NULL);
    apply_stats st = {0};
    bundle_info info;
    void *args[2] = {applier, &st};
    stm_error err = {0};
    bench_check(stm_applier_begin(applier, &err), &err);
    bench_check(stm_bundle_read_once(path, s_apply_batch, args, &info, &err), &err);
    bench_check(stm_applier_commit(applier, &err), &err);
    stm_applier_destroy(&applier);
}

/* The writer's rows (rows_bundle), the reader holding them (reader), and the updates
 * the reader lacks (bundle). */
static void s_make(const char *dir, const char *rows_bundle, const char *reader, const char *bundle)
{
    char writer[600];
    snprintf(writer, sizeof writer, "%s/writer.db", dir);
    stm_error err = {0};
    store_t *store = bench_fresh_store(writer, TABLE);
    s_fill(stm_store_db(store));
    bundle_info info;
    bench_check(stm_bundle_write(store, NULL, rows_bundle, &info, &err), &err);
    store_t *other = bench_fresh_store(reader, TABLE);
    s_apply_bundle(other, rows_bundle);
    vector_t *since = NULL;
    bench_check(stm_vector_read(other, &since, &err), &err);
    stm_store_destroy(&other);
    sqlite3 *db = stm_store_db(store);
    sqlite3_stmt *upd = NULL;
    sqlite3_prepare_v2(db, "UPDATE t SET c = ?1 WHERE id = ?2", -1, &upd, NULL);
    bench_updates_collected(store, upd, s_updates, s_rows, ROWS, s_update_at, NULL);
    sqlite3_finalize(upd);
    bench_check(stm_bundle_write(store, since, bundle, &info, &err), &err);
    stm_vector_destroy(&since);
    if (info.ops != (uint64_t)s_updates) {
        fprintf(stderr, "bench_apply: the bundle holds %llu operations, not %d\n",
                (unsigned long long)info.ops, s_updates);
        exit(1);
    }
    stm_store_destroy(&store);
}

/* Copies the file from over to, in place (a closed database: its WAL checkpointed at
 * close). In place, so that the copy keeps the inode its origin was taken at and is
 * not told it is a copy (sync/origin.h). */
static void s_copy(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out)
        bench_die(in ? to : from);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            bench_die(to);
    fclose(in);
    if (fclose(out) != 0)
        bench_die(to);
}

/* A fresh plain database dir/name (path set to it) opened as stemma opens one (WAL,
 * synchronous=NORMAL, a 32 MiB page cache), holding the table and the rows. */
static sqlite3 *s_open_plain(const char *dir, const char *name, char path[600])
{
    snprintf(path, 600, "%s/%s", dir, name);
    unlink(path);
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        bench_die(path);
    bench_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                   "PRAGMA cache_size=-32768;");
    bench_exec(db, TABLE);
    s_fill(db);
    return db;
}

static double s_plain(const char *dir)
{
    char path[600];
    sqlite3 *db = s_open_plain(dir, "plain.db", path);
    sqlite3_stmt *upd = NULL;
    sqlite3_prepare_v2(db, "UPDATE t SET c = ?1 WHERE id = ?2", -1, &upd, NULL);
    double t0 = bench_now();
    bench_exec(db, "BEGIN");
    for (int i = 0; i < s_updates; i++)
        s_update(upd, i);
    bench_exec(db, "COMMIT");
    double t = bench_now() - t0;
    sqlite3_finalize(upd);
    sqlite3_close(db);
    s_expect = bench_count(path, "SELECT sum(c) FROM t");
    return t;
}

/* The floor SQLite sets for this layout, no stemma code running: per update the
 * statements stemma's apply runs, prepared once, in one transaction on a plain copy of
 * the rows that also holds a clock row per row (tables of stemma's layout: a clock keyed
 * by table name and key, an oplog keyed by origin and sequence): read the row's clock,
 * the UPDATE, write the clock back (how: "REPLACE" or "UPDATE"), append to the oplog. */
static double s_floor(const char *dir, const char *how)
{
    char path[600];
    sqlite3 *db = s_open_plain(dir, "floor.db", path);
    bench_exec(db, "CREATE TABLE clock (tbl TEXT NOT NULL, pk NOT NULL, cells BLOB NOT NULL, "
                   "PRIMARY KEY (tbl, pk)) WITHOUT ROWID;"
                   "CREATE TABLE log (origin INTEGER NOT NULL, seq INTEGER NOT NULL, n INTEGER, "
                   "hlc INTEGER, version INTEGER, tbl TEXT, pk, cells BLOB, "
                   "PRIMARY KEY (origin, seq)) WITHOUT ROWID;");
    static const unsigned char cells[48] = {1};
    bench_exec(db, "INSERT INTO clock SELECT 't', id, zeroblob(48) FROM t");
    sqlite3_stmt *get = NULL, *upd = NULL, *put = NULL, *log = NULL;
    sqlite3_prepare_v2(db, "SELECT cells FROM clock WHERE tbl = 't' AND pk = ?1", -1, &get, NULL);
    sqlite3_prepare_v2(db, "UPDATE t SET c = ?1 WHERE id = ?2", -1, &upd, NULL);
    sqlite3_prepare_v2(db,
                       strcmp(how, "UPDATE") == 0
                           ? "UPDATE clock SET cells = ?2 WHERE tbl = 't' AND pk = ?1"
                           : "INSERT OR REPLACE INTO clock VALUES ('t', ?1, ?2)",
                       -1, &put, NULL);
    sqlite3_prepare_v2(db, "INSERT INTO log VALUES (1, ?1, 1, ?2, 1, 't', ?3, ?4)", -1, &log, NULL);
    char key[24];
    double t0 = bench_now();
    bench_exec(db, "BEGIN");
    for (int i = 0; i < s_updates; i++) {
        s_key(s_rows[i], key);
        sqlite3_bind_text(get, 1, key, -1, SQLITE_STATIC);
        sqlite3_step(get);
        sqlite3_reset(get);
        s_update(upd, i);
        sqlite3_bind_text(put, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_blob(put, 2, cells, sizeof cells, SQLITE_STATIC);
        sqlite3_step(put);
        sqlite3_reset(put);
        sqlite3_bind_int(log, 1, i + 1);
        sqlite3_bind_int64(log, 2, (sqlite3_int64)i << 16);
        sqlite3_bind_text(log, 3, key, -1, SQLITE_STATIC);
        sqlite3_bind_blob(log, 4, cells, 24, SQLITE_STATIC);
        sqlite3_step(log);
        sqlite3_reset(log);
    }
    bench_exec(db, "COMMIT");
    double t = bench_now() - t0;
    sqlite3_finalize(get);
    sqlite3_finalize(upd);
    sqlite3_finalize(put);
    sqlite3_finalize(log);
    sqlite3_close(db);
    return t;
}

static double s_ours(const char *stemma, const char *dir, const char *reader, const char *bundle)
{
    char db[600];
    snprintf(db, sizeof db, "%s/reader.before", dir);
    s_copy(db, reader);
    char *argv[] = {(char *)stemma, "apply",        "--db", (char *)reader,
                    "--quiet",      (char *)bundle, NULL};
    double t0 = bench_now();
    if (bench_run(argv, NULL) != 0)
        bench_die("stemma apply failed");
    double t = bench_now() - t0;
    if (bench_count(reader, "SELECT sum(c) FROM t") != s_expect)
        bench_die("the table after stemma apply differs from SQLite's");
    return t;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        bench_die("usage: bench_apply STEMMA WORKDIR [UPDATES]");
    const char *stemma = argv[1], *dir = argv[2];
    s_updates = argc > 3 ? atoi(argv[3]) : 200000;
    if (s_updates < 1)
        bench_die("UPDATES must be a positive number");
    mkdir(dir, 0700);
    s_rows = malloc((size_t)s_updates * sizeof *s_rows);
    s_values = malloc((size_t)s_updates * sizeof *s_values);
    srand(7);
    for (int i = 0; i < s_updates; i++) {
        s_rows[i] = 1 + rand() % ROWS;
        s_values[i] = 1 + rand() % 1000000;
    }
    char rows_bundle[600], reader[600], bundle[600];
    snprintf(rows_bundle, sizeof rows_bundle, "%s/rows.bundle", dir);
    snprintf(reader, sizeof reader, "%s/reader.db", dir);
    snprintf(bundle, sizeof bundle, "%s/updates.bundle", dir);
    s_make(dir, rows_bundle, reader, bundle);
    char before[600];
    snprintf(before, sizeof before, "%s/reader.before", dir);
    s_copy(reader, before);
    double ours[RUNS], base[RUNS], floor_r[RUNS], floor_u[RUNS];
    for (int r = 0; r < RUNS; r++) {
        base[r] = s_plain(dir);
        ours[r] = s_ours(stemma, dir, reader, bundle);
        floor_r[r] = s_floor(dir, "REPLACE");
        floor_u[r] = s_floor(dir, "UPDATE");
    }
    qsort(ours, RUNS, sizeof *ours, s_cmp);
    qsort(base, RUNS, sizeof *base, s_cmp);
    qsort(floor_r, RUNS, sizeof *floor_r, s_cmp);
    qsort(floor_u, RUNS, sizeof *floor_u, s_cmp);
    double o = ours[RUNS / 2], b = base[RUNS / 2], fr = floor_r[RUNS / 2], fu = floor_u[RUNS / 2];
    printf("stemma apply benchmark: %d single-column updates of random rows of %d, text "
           "keys, median of %d\n\n",
           s_updates, ROWS, RUNS);
    printf("%-58s %9.3f s  (%.0f/s; runs %.3f-%.3f s)\n", "stemma apply, the whole process", o,
           s_updates / o, ours[0], ours[RUNS - 1]);
    printf("%-58s %9.3f s  (%.0f/s)\n", "the same UPDATEs by SQLite, one transaction", b,
           s_updates / b);
    printf("%-58s %9.2f   (target >= 0.5)\n", "ratio", b / o);
    printf("%-58s %9.3f s  (ratio %.2f)\n", "floor: clock read, UPDATE, clock REPLACEd, oplog row",
           fr, b / fr);
    printf("%-58s %9.3f s  (ratio %.2f)\n", "floor, the clock written by UPDATE", fu, b / fu);
    char fig[96], os[32], bs[32], rs[32];
    snprintf(fig, sizeof fig, "stemma apply (process) %d updates, text keys / UPDATE", s_updates);
    snprintf(os, sizeof os, "%.0f/s", s_updates / o);
    snprintf(bs, sizeof bs, "%.0f/s", s_updates / b);
    snprintf(rs, sizeof rs, "%.2f", b / o);
    bench_row(fig, os, bs, rs, ">= 0.5");
    snprintf(fig, sizeof fig, "floor: clock read + UPDATE + clock write + oplog row / UPDATE");
    snprintf(os, sizeof os, "%.0f/s", s_updates / fr);
    snprintf(rs, sizeof rs, "%.2f", b / fr);
    bench_row(fig, os, bs, rs, "bounds apply updates");
    free(s_rows);
    free(s_values);
    return 0;
}
