/* bench_store - the store's figures, each against SQLite doing the same work in the
 * same run (docs/performance.md):
 *
 *   apply updates  200,000 single-column updates of random rows of 100,000, from a
 *                  bundle, against plain `UPDATE t SET c = ? WHERE id = ?`
 *   session        the same updates as a SQLite session changeset, applied with
 *                  sqlite3changeset_apply (reported beside ours: it is what an
 *                  application could use instead, and it applies nothing to a table
 *                  with fewer columns)
 *   apply inserts  200,000 rows of 5 columns, from a bundle, against plain INSERTs; and
 *                  the same into a table keyed by two columns (text, integer)
 *   capture        200,000 inserts through stemma's triggers, against the same
 *                  inserts into a table without them
 *   parked         a batch of 9 operations applied with 10,000, 100,000 and 1,000,000
 *                  operations parked (for a missing column, and for a constraint),
 *                  against the same batch with none parked (s_parked_figures; run
 *                  once, not RUNS times: it has rounds of its own; 1,000,000 not with
 *                  STEMMA_BENCH_QUICK)
 *
 * Files in WAL mode with synchronous=NORMAL, one transaction on each side (a bundle
 * is applied in one, as `stemma apply` does). Each figure is the median of three runs
 * (STEMMA_BENCH_RUNS to change). Not a test: figures go to stdout. */
/* The session extension's declarations (Debian's libsqlite3 is built with it). */
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include "lineage/sqlscript.h"
#include "sync/apply.h"
#include "sync/bundle.h"
#include "sync/capture.h"
#include "sync/identity.h"
#include "sync/oplog.h"
#include "sync/vector.h"
#include "benchstore.h"
#include "benchutil.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ROWS 100000
#define UPDATES 200000
#define INSERTS 200000
#define MAX_RUNS 9

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const TABLE =
    "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c INTEGER, d REAL, e TEXT);";
/* The same columns keyed by two, text first (a room and an event, say): a key stemma
 * packs (sync/key.h) and a table whose inserts are all queued. */
static const char *const TABLE_KEY2 =
    "CREATE TABLE t (id INTEGER NOT NULL, a INTEGER, b TEXT NOT NULL, c INTEGER, d REAL, "
    "e TEXT, PRIMARY KEY (b, id));";

static void s_fill(sqlite3 *db)
{
    sqlite3_stmt *ins = NULL;
    bench_exec(db, "BEGIN");
    sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, ?1, 'row', 0, 0.5, 'text')", -1, &ins, NULL);
    for (int i = 1; i <= ROWS; i++) {
        sqlite3_bind_int(ins, 1, i);
        sqlite3_step(ins);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    bench_exec(db, "COMMIT");
}

/* The random rows and values of the updates, the same for both sides. */
static int s_rows[UPDATES], s_values[UPDATES];

/* The i-th update, as bench_updates_collected calls it. */
static void s_update_at(sqlite3_stmt *upd, int i, void *ctx)
{
    (void)ctx;
    sqlite3_bind_int(upd, 1, s_values[i]);
    sqlite3_bind_int(upd, 2, s_rows[i]);
    sqlite3_step(upd);
    sqlite3_reset(upd);
}

static double s_baseline(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/plain.db", dir);
    unlink(path);
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    bench_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    bench_exec(db, TABLE);
    s_fill(db);
    sqlite3_stmt *upd = NULL;
    sqlite3_prepare_v2(db, "UPDATE t SET c = ?1 WHERE id = ?2", -1, &upd, NULL);
    double t0 = s_now();
    bench_exec(db, "BEGIN");
    for (int i = 0; i < UPDATES; i++) {
        sqlite3_bind_int(upd, 1, s_values[i]);
        sqlite3_bind_int(upd, 2, s_rows[i]);
        sqlite3_step(upd);
        sqlite3_reset(upd);
    }
    bench_exec(db, "COMMIT");
    double t = s_now() - t0;
    sqlite3_finalize(upd);
    sqlite3_close(db);
    return t;
}

static stm_err s_apply_batch(void *ctx, const opbatch_t *batch, stm_error *err)
{
    void **args = ctx;
    return stm_applier_apply(args[0], batch, args[1], err);
}

/* Applies the bundle at path to store in one transaction, as `stemma apply` does. */
static apply_stats s_apply_bundle(store_t *store, const char *path)
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
    return st;
}

/* The writer's database, once: ROWS rows inserted by its application (600,000
 * operations, written to rows_bundle), then UPDATES updates of random rows (written to
 * bundle: the operations a database holding the rows lacks). The reader of each run
 * gets the rows first, so the updates name the incarnations it holds, as when a
 * device edits rows it made and its peer has. */
static void s_make_bundle(const char *dir, const char *rows_bundle, const char *bundle)
{
    char writer[512], scratch[512];
    snprintf(writer, sizeof writer, "%s/writer.db", dir);
    snprintf(scratch, sizeof scratch, "%s/reader.db", dir);
    stm_error err = {0};
    store_t *store = bench_fresh_store(writer, TABLE);
    s_fill(stm_store_db(store));
    bundle_info info;
    bench_check(stm_bundle_write(store, NULL, rows_bundle, &info, &err), &err); /* collects too */
    /* What a database holding the rows holds: the vector the updates go above. */
    store_t *other = bench_fresh_store(scratch, TABLE);
    s_apply_bundle(other, rows_bundle);
    vector_t *since = NULL;
    bench_check(stm_vector_read(other, &since, &err), &err);
    stm_store_destroy(&other);
    sqlite3 *db = stm_store_db(store);
    sqlite3_stmt *upd = NULL;
    sqlite3_prepare_v2(db, "UPDATE t SET c = ?1 WHERE id = ?2", -1, &upd, NULL);
    bench_updates_collected(store, upd, UPDATES, s_rows, ROWS, s_update_at, NULL);
    sqlite3_finalize(upd);
    bench_check(stm_bundle_write(store, since, bundle, &info, &err), &err);
    stm_vector_destroy(&since);
    if (info.ops != UPDATES) {
        fprintf(stderr, "bench_store: the bundle holds %llu operations, not %d\n",
                (unsigned long long)info.ops, UPDATES);
        exit(1);
    }
    stm_store_destroy(&store);
}

static double s_ours(const char *dir, const char *rows_bundle, const char *bundle)
{
    char path[512];
    snprintf(path, sizeof path, "%s/reader.db", dir);
    stm_error err = {0};
    /* The rows first (600,000 operations in its oplog), as a peer sent them; not
     * part of the figure. */
    store_t *store = bench_fresh_store(path, TABLE);
    s_apply_bundle(store, rows_bundle);
    applier_t *applier = stm_applier_new(store, NULL, NULL);
    apply_stats st = {0};
    bundle_info info;
    void *args[2] = {applier, &st};
    double t0 = s_now();
    bench_check(stm_applier_begin(applier, &err), &err); /* one transaction, as `stemma apply` */
    bench_check(stm_bundle_read_once(bundle, s_apply_batch, args, &info, &err), &err);
    bench_check(stm_applier_commit(applier, &err), &err);
    double t = s_now() - t0;
    uint64_t kept = 0;
    bench_check(stm_conflicts_count(store, &kept, &err), &err);
    if (st.applied != UPDATES || kept) {
        fprintf(stderr, "bench_store: applied %llu of %d, %llu conflicts\n",
                (unsigned long long)st.applied, UPDATES, (unsigned long long)kept);
        exit(1);
    }
    stm_applier_destroy(&applier);
    stm_store_destroy(&store);
    return t;
}

/* Removes dir/name and its -wal and -shm, and leaves path naming it. */
static void s_fresh_path(const char *dir, const char *name, char *path, size_t size)
{
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t k = 0; k < 3; k++) {
        snprintf(path, size, "%s/%s%s", dir, name, suffix[k]);
        unlink(path);
    }
    snprintf(path, size, "%s/%s", dir, name);
}

/* A fresh database file, opened plain, with table (TABLE or TABLE_KEY2). */
static sqlite3 *s_plain_with(const char *dir, const char *name, const char *table)
{
    char path[600];
    s_fresh_path(dir, name, path, sizeof path);
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    bench_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    bench_exec(db, table);
    return db;
}

static sqlite3 *s_plain(const char *dir, const char *name)
{
    return s_plain_with(dir, name, TABLE);
}

/* A fresh database set up for stemma with table, capture on. */
static store_t *s_stemma(const char *dir, const char *name, const char *table)
{
    char path[600];
    s_fresh_path(dir, name, path, sizeof path);
    store_t *store = NULL;
    stm_error err = {0};
    bench_check(stm_store_open(path, STORE_OPEN_CREATE, &store, &err), &err);
    bench_check(stm_store_exec(store, table, &err), &err);
    bench_check(stm_store_exec(store, "BEGIN", &err), &err);
    bench_check(stm_store_prepare(store, &err), &err);
    bench_check(stm_capture_install(store, &err), &err);
    bench_check(stm_store_exec(store, "COMMIT", &err), &err);
    return store;
}

/* Inserts INSERTS rows of 5 columns in one transaction; returns the seconds taken. */
/* Binds row i of the insert figures to ?1..?6 of stmt, steps and resets it. */
static void s_insert_row(sqlite3_stmt *stmt, int i)
{
    sqlite3_bind_int(stmt, 1, i);
    sqlite3_bind_int(stmt, 2, i * 7);
    sqlite3_bind_text(stmt, 3, "a row of text", -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 4, i % 1000);
    sqlite3_bind_double(stmt, 5, i / 3.0);
    sqlite3_bind_text(stmt, 6, "more text here", -1, SQLITE_STATIC);
    sqlite3_step(stmt);
    sqlite3_reset(stmt);
}

static double s_insert_rows(sqlite3 *db)
{
    sqlite3_stmt *ins = NULL;
    sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &ins, NULL);
    double t0 = s_now();
    bench_exec(db, "BEGIN");
    for (int i = 1; i <= INSERTS; i++)
        s_insert_row(ins, i);
    bench_exec(db, "COMMIT");
    double t = s_now() - t0;
    sqlite3_finalize(ins);
    return t;
}

/* The floors SQLite itself sets, measured the same way (no stemma code runs):
 *
 *   trigger  the inserts into a table with an AFTER INSERT trigger that does nothing
 *            but evaluate stemma's guard: the least any trigger-based capture costs
 *   writes   per row the three B-tree writes stemma's apply makes for a new row (the
 *            row, an oplog row of the same layout with ~70 bytes of cells, a clock
 *            row of the same layout), against the row alone; guarded: into a table
 *            that has capture's insert trigger too, its guard false (as while stemma
 *            applies: every synced table has the trigger, so every applied insert
 *            evaluates it) */
static double s_trigger_floor(const char *dir)
{
    sqlite3 *db = s_plain(dir, "floor.db");
    bench_exec(db, "CREATE TABLE flag (id INTEGER PRIMARY KEY, applying INTEGER);"
               "INSERT INTO flag VALUES (1, 0);"
               "CREATE TRIGGER t_ins AFTER INSERT ON t "
               "WHEN (SELECT applying FROM flag WHERE id = 1) = 0 BEGIN SELECT 1; END;");
    double t = s_insert_rows(db);
    sqlite3_close(db);
    return t;
}

static double s_writes_floor(const char *dir, bool guarded)
{
    sqlite3 *db = s_plain(dir, "floor.db");
    if (guarded)
        bench_exec(db, "CREATE TABLE flag (id INTEGER PRIMARY KEY, applying INTEGER);"
                       "INSERT INTO flag VALUES (1, 1);"
                       "CREATE TABLE queue (tbl TEXT, pk);"
                       "CREATE TRIGGER t_ins AFTER INSERT ON t "
                       "WHEN (SELECT applying FROM flag WHERE id = 1) = 0 "
                       "BEGIN INSERT INTO queue VALUES ('t', NEW.id); END;");
    bench_exec(db, "CREATE TABLE log (origin INTEGER NOT NULL, seq INTEGER NOT NULL, n INTEGER, "
               "hlc INTEGER, version INTEGER, tbl TEXT, pk, cells BLOB, "
               "PRIMARY KEY (origin, seq)) WITHOUT ROWID;"
               "CREATE TABLE clock (tbl TEXT NOT NULL, pk NOT NULL, cells BLOB NOT NULL, "
               "PRIMARY KEY (tbl, pk)) WITHOUT ROWID;");
    sqlite3_stmt *row = NULL, *log = NULL, *clock = NULL;
    sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &row, NULL);
    sqlite3_prepare_v2(db, "INSERT INTO log VALUES (1, ?1, 6, ?2, 1, 't', ?3, ?4)", -1, &log,
                       NULL);
    sqlite3_prepare_v2(db, "INSERT INTO clock VALUES ('t', ?1, ?2)", -1, &clock, NULL);
    static const unsigned char cells[70] = {1};
    double t0 = s_now();
    bench_exec(db, "BEGIN");
    for (int i = 1; i <= INSERTS; i++) {
        s_insert_row(row, i);
        sqlite3_bind_int(log, 1, i * 6);
        sqlite3_bind_int64(log, 2, (sqlite3_int64)i << 16);
        sqlite3_bind_int(log, 3, i);
        sqlite3_bind_blob(log, 4, cells, sizeof cells, SQLITE_STATIC);
        sqlite3_step(log);
        sqlite3_reset(log);
        sqlite3_bind_int(clock, 1, i);
        sqlite3_bind_blob(clock, 2, cells, 40, SQLITE_STATIC);
        sqlite3_step(clock);
        sqlite3_reset(clock);
    }
    bench_exec(db, "COMMIT");
    double t = s_now() - t0;
    sqlite3_finalize(row);
    sqlite3_finalize(log);
    sqlite3_finalize(clock);
    sqlite3_close(db);
    return t;
}

/* Capture: the same inserts with and without stemma's triggers. */
static void s_capture(const char *dir, double *ours, double *base, double *collect)
{
    sqlite3 *plain = s_plain(dir, "plain.db");
    *base = s_insert_rows(plain);
    sqlite3_close(plain);
    store_t *store = s_stemma(dir, "capture.db", TABLE);
    *ours = s_insert_rows(stm_store_db(store));
    /* The queued rows become operations when stemma next looks (capture.h): off the
     * application's path, but work all the same, so timed too. */
    applier_t *applier = stm_applier_new(store, NULL, NULL);
    stm_error err = {0};
    double t0 = s_now();
    bench_check(stm_applier_catch_up(applier, &err), &err);
    *collect = s_now() - t0;
    stm_applier_destroy(&applier);
    stm_store_destroy(&store);
}

/* Apply inserts: a bundle of INSERTS captured rows into an empty stemma table (TABLE
 * or TABLE_KEY2), against the plain inserts of the same rows. taken: the reader has
 * made rows under every one of those keys itself, earlier (not timed), so that every
 * insert is a conflict (sync/identity.h): detected and kept aside. */
static void s_apply_inserts_to(const char *dir, const char *table, bool taken, double *ours,
                               double *base)
{
    sqlite3 *plain = s_plain_with(dir, "plain.db", table);
    *base = s_insert_rows(plain);
    sqlite3_close(plain);
    char bundle[600];
    snprintf(bundle, sizeof bundle, "%s/inserts.bundle", dir);
    store_t *reader = s_stemma(dir, "reader.db", table);
    stm_error err = {0};
    applier_t *applier = stm_applier_new(reader, NULL, NULL);
    if (taken) {
        s_insert_rows(stm_store_db(reader));
        bench_check(stm_applier_catch_up(applier, &err), &err);
    }
    store_t *writer = s_stemma(dir, "writer.db", table);
    s_insert_rows(stm_store_db(writer));
    bundle_info info;
    bench_check(stm_bundle_write(writer, NULL, bundle, &info, &err), &err);
    stm_store_destroy(&writer);
    apply_stats st = {0};
    void *args[2] = {applier, &st};
    double t0 = s_now();
    bench_check(stm_applier_begin(applier, &err), &err);
    bench_check(stm_bundle_read_once(bundle, s_apply_batch, args, &info, &err), &err);
    double t1 = s_now();
    bench_check(stm_applier_commit(applier, &err), &err);
    *ours = s_now() - t0;
    if (getenv("STEMMA_BENCH_ONLY"))
        printf("apply inserts: %.3f s applying, %.3f s committing\n", t1 - t0, s_now() - t1);
    uint64_t kept = 0;
    bench_check(stm_conflicts_count(reader, &kept, &err), &err);
    if (st.applied != (uint64_t)INSERTS * 6 || kept != (taken ? (uint64_t)INSERTS : 0)) {
        fprintf(stderr, "bench_store: applied %llu of %d, %llu conflicts\n",
                (unsigned long long)st.applied, INSERTS * 6, (unsigned long long)kept);
        exit(1);
    }
    stm_applier_destroy(&applier);
    stm_store_destroy(&reader);
    unlink(bundle);
}

static void s_apply_inserts(const char *dir, const char *table, double *ours, double *base)
{
    s_apply_inserts_to(dir, table, false, ours, base);
}

/* Apply from many origins: ORIGIN_ROWS new rows (2 operations each) from as many
 * origins, every device that ever wrote being one, against the same rows from one
 * origin. The seconds taken into *many and *one. */
#define ORIGIN_ROWS 20000
static void s_apply_origins(const char *dir, double *many, double *one)
{
    for (int k = 0; k < 2; k++) {
        bool distinct = k == 0;
        store_t *store = s_stemma(dir, "reader.db", "CREATE TABLE o (k TEXT PRIMARY KEY, v INTEGER)");
        stm_error err = {0};
        stm_id version;
        bench_check(stm_store_version_id(store, &version, &err), &err);
        opbatch_t *batch = stm_opbatch_new();
        applier_t *applier = stm_applier_new(store, NULL, NULL);
        apply_stats st = {0};
        char key[32];
        double t0 = s_now();
        bench_check(stm_applier_begin(applier, &err), &err);
        for (int i = 0; i < ORIGIN_ROWS; i++) {
            op_t op;
            memset(&op, 0, sizeof op);
            if (distinct)
                randombytes_buf(op.origin.bytes, sizeof op.origin.bytes);
            else
                memset(op.origin.bytes, 7, sizeof op.origin.bytes);
            op.seq = distinct ? 1 : 2 * (uint64_t)i + 1;
            op.hlc = ((uint64_t)1700000000000 + (uint64_t)i) << 16;
            op.version_id = version;
            op.table = "o";
            snprintf(key, sizeof key, "k%d", i);
            op.pk = (op_value){.type = VALUE_TEXT, .bytes = key, .len = strlen(key)};
            op.column = "k";
            op.affinity = 'T';
            op.value = op.pk;
            stm_opbatch_add(batch, &op);
            op.seq++;
            op.column = "v";
            op.affinity = 'I';
            op.value = (op_value){.type = VALUE_INTEGER, .i = i};
            stm_opbatch_add(batch, &op);
            if (stm_opbatch_count(batch) >= 1000 || i + 1 == ORIGIN_ROWS) {
                bench_check(stm_applier_apply(applier, batch, &st, &err), &err);
                stm_opbatch_clear(batch);
            }
        }
        bench_check(stm_applier_commit(applier, &err), &err);
        *(distinct ? many : one) = s_now() - t0;
        if (st.applied != 2 * ORIGIN_ROWS) {
            fprintf(stderr, "bench_store: applied %llu of %d\n", (unsigned long long)st.applied,
                    2 * ORIGIN_ROWS);
            exit(1);
        }
        stm_applier_destroy(&applier);
        stm_opbatch_destroy(&batch);
        stm_store_destroy(&store);
    }
}

static int s_no_conflicts(void *ctx, int why, sqlite3_changeset_iter *it)
{
    (void)ctx;
    (void)why;
    (void)it;
    return SQLITE_CHANGESET_OMIT;
}

/* The updates as a session changeset, applied to a copy of the table. */
static double s_session(const char *dir)
{
    sqlite3 *src = s_plain(dir, "session-src.db");
    s_fill(src);
    sqlite3_session *session = NULL;
    sqlite3session_create(src, "main", &session);
    sqlite3session_attach(session, "t");
    sqlite3_stmt *upd = NULL;
    sqlite3_prepare_v2(src, "UPDATE t SET c = ?1 WHERE id = ?2", -1, &upd, NULL);
    bench_exec(src, "BEGIN");
    for (int i = 0; i < UPDATES; i++) {
        sqlite3_bind_int(upd, 1, s_values[i]);
        sqlite3_bind_int(upd, 2, s_rows[i]);
        sqlite3_step(upd);
        sqlite3_reset(upd);
    }
    bench_exec(src, "COMMIT");
    sqlite3_finalize(upd);
    int size = 0;
    void *changeset = NULL;
    sqlite3session_changeset(session, &size, &changeset);
    sqlite3session_delete(session);
    sqlite3_close(src);
    sqlite3 *dst = s_plain(dir, "session-dst.db");
    s_fill(dst);
    double t0 = s_now();
    int rc = sqlite3changeset_apply(dst, size, changeset, NULL, s_no_conflicts, NULL);
    double t = s_now() - t0;
    if (rc != SQLITE_OK) {
        fprintf(stderr, "bench_store: sqlite3changeset_apply: %s\n", sqlite3_errstr(rc));
        exit(1);
    }
    sqlite3_free(changeset);
    sqlite3_close(dst);
    return t;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, s_cmp);
    return v[n / 2];
}

/* ---- parked operations at scale (issue 14, item 1) ---- */

/* A batch applied with many operations parked should cost what it costs with none:
 * nothing in the apply path reads what is parked unless a row the batch wrote may
 * free it (sync/park.h, invariant 5). One table; what is parked waits for a column
 * this schema lacks ('schema') or for the value NOT NULL wants ('constraint': cells
 * of rows whose other cells never come). The batch timed is PARKED_BATCH_ROWS new rows
 * of 3 columns (9 operations, the bundle), applied in a transaction of its
 * own as `stemma apply` applies a bundle. Two databases side by side, one with nothing
 * parked and one parked up to each size in turn, apply their batches alternately, one
 * each, so that whatever else the machine does falls on both; a round is
 * PARKED_BATCHES of each, and the figure the median of the rounds' ratios. Timed in
 * the process's CPU time (what the batch costs: the machine this runs on is shared,
 * and its wall clock counts the time others' processes run), the wall-clock ratio
 * reported beside it. */
#define PARKED_TABLE "CREATE TABLE p (k TEXT PRIMARY KEY, v INTEGER NOT NULL, note TEXT)"
#define PARKED_BATCH_ROWS 3
#define PARKED_BATCHES 300
#define PARKED_ROUNDS 15
#define PARKED_SIZES 3

/* Seconds of CPU this process has used. */
static double s_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Op seq of origin (every byte o) writing col of row key, at a clock of its seq. */
static op_t s_parked_op(unsigned char o, uint64_t seq, uint64_t hlc_seq, const stm_id *version,
                        const char *key, const char *col, char affinity, op_value value)
{
    op_t op;
    memset(&op, 0, sizeof op);
    memset(op.origin.bytes, o, sizeof op.origin.bytes);
    op.seq = seq;
    op.hlc = ((uint64_t)1700000000000 + hlc_seq) << 16;
    op.version_id = *version;
    op.table = "p";
    op.pk = (op_value){.type = VALUE_TEXT, .bytes = key, .len = strlen(key)};
    op.column = col;
    op.affinity = affinity;
    op.value = value;
    return op;
}

/* Parks operations of origin 0xa1, through the applier as a peer's would arrive
 * (10,000 to a batch), until n are parked: writes of `note` to rows no other cell of
 * which arrives (NOT NULL refuses them) or of `tags`, a column this schema lacks.
 * *next is the next seq. */
static void s_park_up_to(store_t *store, bool constraint, uint64_t n, uint64_t *next)
{
    stm_error err = {0};
    stm_id version;
    bench_check(stm_store_version_id(store, &version, &err), &err);
    applier_t *applier = stm_applier_new(store, NULL, NULL);
    opbatch_t *batch = stm_opbatch_new();
    char key[32];
    apply_stats st = {0};
    bench_check(stm_applier_begin(applier, &err), &err);
    while (*next <= n) {
        snprintf(key, sizeof key, "parked-%llu", (unsigned long long)*next);
        op_t op = s_parked_op(0xa1, *next, *next, &version, key, constraint ? "note" : "tags", 'T',
                              (op_value){.type = VALUE_TEXT, .bytes = "x", .len = 1});
        stm_opbatch_add(batch, &op);
        (*next)++;
        if (stm_opbatch_count(batch) == 10000 || *next > n) {
            bench_check(stm_applier_apply(applier, batch, &st, &err), &err);
            stm_opbatch_clear(batch);
        }
    }
    bench_check(stm_applier_commit(applier, &err), &err);
    stm_opbatch_destroy(&batch);
    stm_applier_destroy(&applier);
    if (st.applied) {
        fprintf(stderr, "bench_store: %llu of the operations meant to park applied\n",
                (unsigned long long)st.applied);
        exit(1);
    }
}

/* One database of the pair: its store, applier and next row. */
typedef struct {
    store_t *store;
    applier_t *applier;
    stm_id version;
    uint64_t next;    /* the next seq of origin 0xb2 */
    double cpu, wall; /* seconds taken, added up */
} s_side;

/* Applies one batch of new rows to side (origin 0xb2), in a transaction of its own,
 * and adds the time it took. */
static void s_parked_batch(s_side *side)
{
    stm_error err = {0};
    opbatch_t *batch = stm_opbatch_new();
    char keys[PARKED_BATCH_ROWS][32];
    for (int r = 0; r < PARKED_BATCH_ROWS; r++) {
        uint64_t seq = side->next;
        snprintf(keys[r], sizeof keys[r], "row-%llu", (unsigned long long)seq);
        op_value k = {.type = VALUE_TEXT, .bytes = keys[r], .len = strlen(keys[r])};
        op_t op = s_parked_op(0xb2, seq, seq, &side->version, keys[r], "k", 'T', k);
        stm_opbatch_add(batch, &op);
        op = s_parked_op(0xb2, seq + 1, seq, &side->version, keys[r], "v", 'I',
                         (op_value){.type = VALUE_INTEGER, .i = (int64_t)seq});
        stm_opbatch_add(batch, &op);
        op = s_parked_op(0xb2, seq + 2, seq, &side->version, keys[r], "note", 'T',
                         (op_value){.type = VALUE_TEXT, .bytes = "n", .len = 1});
        stm_opbatch_add(batch, &op);
        side->next += 3;
    }
    apply_stats st = {0};
    double c0 = s_cpu(), w0 = s_now();
    bench_check(stm_applier_apply(side->applier, batch, &st, &err), &err);
    side->cpu += s_cpu() - c0;
    side->wall += s_now() - w0;
    stm_opbatch_destroy(&batch);
    if (st.applied != 3 * PARKED_BATCH_ROWS || st.parked || st.replayed) {
        fprintf(stderr, "bench_store: a batch applied %llu, parked %llu, replayed %llu\n",
                (unsigned long long)st.applied, (unsigned long long)st.parked,
                (unsigned long long)st.replayed);
        exit(1);
    }
}

/* Parked at scale for one kind: for each of sizes[0..n), the median round's CPU
 * seconds per batch with that many parked and with none, and the medians of the
 * rounds' ratios in CPU time and in wall-clock time. */
static void s_parked(const char *dir, bool constraint, const uint64_t *sizes, size_t n,
                     double *with, double *none, double *ratio, double *wall_ratio)
{
    s_side sides[2] = {{.store = s_stemma(dir, "parked.db", PARKED_TABLE), .next = 1},
                       {.store = s_stemma(dir, "unparked.db", PARKED_TABLE), .next = 1}};
    stm_error err = {0};
    for (int k = 0; k < 2; k++) {
        sides[k].applier = stm_applier_new(sides[k].store, NULL, NULL);
        bench_check(stm_store_version_id(sides[k].store, &sides[k].version, &err), &err);
    }
    uint64_t next_parked = 1;
    for (size_t i = 0; i < n; i++) {
        double t0 = s_now();
        s_park_up_to(sides[0].store, constraint, sizes[i], &next_parked);
        double parking = s_now() - t0;
        /* The first batch after another program (here another applier) changed what
         * waits reads the rows' wakes once (sync/park_watch.c's filter): timed apart. */
        sides[0].wall = 0;
        s_parked_batch(&sides[0]);
        fprintf(stderr, "parked %llu for %s (%.1f s); the first batch after it %.1f ms\n",
                (unsigned long long)sizes[i], constraint ? "a constraint" : "a missing column",
                parking, sides[0].wall * 1e3);
        double cpu[2][PARKED_ROUNDS], ratios[PARKED_ROUNDS], wall_ratios[PARKED_ROUNDS];
        for (int r = 0; r < PARKED_ROUNDS; r++) {
            for (int k = 0; k < 2; k++)
                sides[k].cpu = sides[k].wall = 0;
            for (int b = 0; b < PARKED_BATCHES; b++)
                for (int k = 0; k < 2; k++)
                    s_parked_batch(&sides[k]);
            for (int k = 0; k < 2; k++)
                cpu[k][r] = sides[k].cpu / PARKED_BATCHES;
            ratios[r] = sides[0].cpu / sides[1].cpu;
            wall_ratios[r] = sides[0].wall / sides[1].wall;
        }
        with[i] = s_median(cpu[0], PARKED_ROUNDS);
        none[i] = s_median(cpu[1], PARKED_ROUNDS);
        ratio[i] = s_median(ratios, PARKED_ROUNDS);
        wall_ratio[i] = s_median(wall_ratios, PARKED_ROUNDS);
    }
    uint64_t parked = 0;
    bench_check(stm_oplog_counts(sides[0].store, &(uint64_t){0}, &parked, &err), &err);
    if (parked != sizes[n - 1]) {
        fprintf(stderr, "bench_store: %llu parked, not %llu\n", (unsigned long long)parked,
                (unsigned long long)sizes[n - 1]);
        exit(1);
    }
    for (int k = 0; k < 2; k++) {
        stm_applier_destroy(&sides[k].applier);
        stm_store_destroy(&sides[k].store);
    }
}

/* The parked-at-scale figures, both kinds: 10,000 and 100,000 parked, and 1,000,000
 * unless STEMMA_BENCH_QUICK is set (about 30 s more). */
static void s_parked_figures(const char *dir)
{
    static const uint64_t sizes[PARKED_SIZES] = {10000, 100000, 1000000};
    size_t n = getenv("STEMMA_BENCH_QUICK") ? 2 : 3;
    const char *kind = getenv("STEMMA_BENCH_PARKED"); /* "schema" or "constraint": one */
    printf("\nA batch of 9 operations (3 new rows), a transaction each, with N operations "
           "parked / with none\n(CPU time; the wall clock's ratio in brackets):\n");
    printf("%-40s %12s %12s %7s  %s\n", "figure", "parked", "none", "ratio", "target");
    for (int c = 0; c < 2; c++) {
        const char *name = c ? "constraint" : "schema";
        if (kind && strcmp(kind, name) != 0)
            continue;
        double with[PARKED_SIZES], none[PARKED_SIZES], ratio[PARKED_SIZES], wall[PARKED_SIZES];
        s_parked(dir, c == 1, sizes, n, with, none, ratio, wall);
        for (size_t i = 0; i < n; i++) {
            char figure[80], o[32], b[32], r[32];
            snprintf(figure, sizeof figure, "apply 9 ops, %lluk parked (%s) / none",
                     (unsigned long long)sizes[i] / 1000, name);
            snprintf(o, sizeof o, "%.0f us/batch", with[i] * 1e6);
            snprintf(b, sizeof b, "%.0f us/batch", none[i] * 1e6);
            snprintf(r, sizeof r, "%.2f", ratio[i]);
            printf("%-40s %12s %12s %7s  %s (wall %.2f)\n", figure, o, b, r, "<= 1.1", wall[i]);
            bench_row(figure, o, b, r, "<= 1.1 (CPU)");
        }
    }
    char path[600];
    s_fresh_path(dir, "parked.db", path, sizeof path);
    s_fresh_path(dir, "unparked.db", path, sizeof path);
}

static void s_row(const char *figure, double ours, double base, const char *target)
{
    printf("%-40s %12.0f %12.0f %7.2f  %s\n", figure, ours, base, ours / base, target);
    char o[32], b[32], r[32];
    snprintf(o, sizeof o, "%.0f/s", ours);
    snprintf(b, sizeof b, "%.0f/s", base);
    snprintf(r, sizeof r, "%.2f", ours / base);
    bench_row(figure, o, b, r, target);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char bundle[512], rows_bundle[512];
    snprintf(bundle, sizeof bundle, "%s/bench_store.bundle", dir);
    snprintf(rows_bundle, sizeof rows_bundle, "%s/bench_store_rows.bundle", dir);
    srand(42);
    for (int i = 0; i < UPDATES; i++) {
        s_rows[i] = 1 + rand() % ROWS;
        s_values[i] = i + 1; /* distinct: every update changes its cell */
    }
    s_make_bundle(dir, rows_bundle, bundle);
    /* STEMMA_BENCH_RUNS=1 for a quick look (under a profiler, say). */
    const char *env = getenv("STEMMA_BENCH_RUNS");
    int RUNS = env && atoi(env) > 0 && atoi(env) <= MAX_RUNS ? atoi(env) : 3;
    double ours[MAX_RUNS], base[MAX_RUNS], collect[MAX_RUNS], session[MAX_RUNS];
    double ins_ours[MAX_RUNS], ins_base[MAX_RUNS], cap_ours[MAX_RUNS], cap_base[MAX_RUNS];
    double trigger_floor[MAX_RUNS], writes_floor[MAX_RUNS], guarded_floor[MAX_RUNS];
    double ins2_ours[MAX_RUNS], ins2_base[MAX_RUNS];
    double taken_ours[MAX_RUNS], taken_base[MAX_RUNS], many[MAX_RUNS], one[MAX_RUNS];
    /* STEMMA_BENCH_ONLY=updates|inserts|inserts2|taken|origins|capture|floors|parked runs one
     * figure (for a profiler); STEMMA_BENCH_PARKED=schema|constraint one kind of it. */
    const char *only = getenv("STEMMA_BENCH_ONLY");
    if (only) {
        double a = 0, b = 0, c = 0;
        if (strcmp(only, "updates") == 0)
            a = s_ours(dir, rows_bundle, bundle);
        else if (strcmp(only, "inserts") == 0)
            s_apply_inserts(dir, TABLE, &a, &b);
        else if (strcmp(only, "inserts2") == 0)
            s_apply_inserts(dir, TABLE_KEY2, &a, &b);
        else if (strcmp(only, "taken") == 0)
            s_apply_inserts_to(dir, TABLE, true, &a, &b);
        else if (strcmp(only, "origins") == 0)
            s_apply_origins(dir, &a, &b);
        else if (strcmp(only, "capture") == 0)
            s_capture(dir, &a, &b, &c);
        else if (strcmp(only, "floors") == 0) {
            a = s_writes_floor(dir, false);
            b = s_writes_floor(dir, true);
            printf("floors: row + oplog + clock %.3f s, the same with the trigger guard %.3f s\n",
                   a, b);
            return 0;
        }
        else if (strcmp(only, "parked") == 0) {
            s_parked_figures(dir);
            return 0;
        }
        printf("%s: %.3f s (baseline %.3f s)\n", only, a, b);
        return 0;
    }
    for (int r = 0; r < RUNS; r++) {
        base[r] = s_baseline(dir);
        ours[r] = s_ours(dir, rows_bundle, bundle);
        session[r] = s_session(dir);
        s_apply_inserts(dir, TABLE, &ins_ours[r], &ins_base[r]);
        s_apply_inserts(dir, TABLE_KEY2, &ins2_ours[r], &ins2_base[r]);
        s_apply_inserts_to(dir, TABLE, true, &taken_ours[r], &taken_base[r]);
        s_apply_origins(dir, &many[r], &one[r]);
        s_capture(dir, &cap_ours[r], &cap_base[r], &collect[r]);
        trigger_floor[r] = s_trigger_floor(dir);
        writes_floor[r] = s_writes_floor(dir, false);
        guarded_floor[r] = s_writes_floor(dir, true);
    }
    printf("stemma store benchmark, median of %d runs (rates per second; ratio = stemma / "
           "baseline)\n\n",
           RUNS);
    printf("%-40s %12s %12s %7s  %s\n", "figure", "stemma", "baseline", "ratio", "target");
    s_row("apply 200k updates / UPDATE", UPDATES / s_median(ours, RUNS),
          UPDATES / s_median(base, RUNS), ">= 0.5");
    s_row("apply 200k updates / session changeset", UPDATES / s_median(ours, RUNS),
          UPDATES / s_median(session, RUNS), "(reported)");
    s_row("apply 200k inserts (rows) / INSERT", INSERTS / s_median(ins_ours, RUNS),
          INSERTS / s_median(ins_base, RUNS), ">= 0.5");
    s_row("apply 200k inserts, 2-column key / INSERT", INSERTS / s_median(ins2_ours, RUNS),
          INSERTS / s_median(ins2_base, RUNS), ">= 0.5");
    s_row("apply 200k inserts, every key taken / INSERT", INSERTS / s_median(taken_ours, RUNS),
          INSERTS / s_median(taken_base, RUNS), "(reported)");
    s_row("  every key taken / no key taken", INSERTS / s_median(taken_ours, RUNS),
          INSERTS / s_median(ins_ours, RUNS), "(cost of a conflict)");
    s_row("apply 20k rows from 20k origins / from 1", ORIGIN_ROWS / s_median(many, RUNS),
          ORIGIN_ROWS / s_median(one, RUNS), "(cost of an origin)");
    s_row("capture 200k inserts / no triggers", INSERTS / s_median(cap_ours, RUNS),
          INSERTS / s_median(cap_base, RUNS), ">= 0.5 (cr-sqlite ~0.05)");
    printf("\n%-40s %12.0f\n", "collect: captured rows made operations, rows/s",
           INSERTS / s_median(collect, RUNS));
    printf("\nWhat SQLite itself allows (no stemma code; docs/performance.md):\n");
    s_row("floor: a trigger doing nothing / none", INSERTS / s_median(trigger_floor, RUNS),
          INSERTS / s_median(cap_base, RUNS), "(bounds capture)");
    s_row("floor: row + oplog row + clock row / row", INSERTS / s_median(writes_floor, RUNS),
          INSERTS / s_median(ins_base, RUNS), "(bounds apply inserts)");
    s_row("floor: the same, the table with capture's trigger", INSERTS / s_median(guarded_floor, RUNS),
          INSERTS / s_median(ins_base, RUNS), "(bounds apply inserts)");
    s_parked_figures(dir);
    char path[600];
    const char *files[] = {"plain.db",   "writer.db",      "reader.db",     "floor.db",
                           "capture.db", "session-src.db", "session-dst.db"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        s_fresh_path(dir, files[i], path, sizeof path);
    unlink(bundle);
    unlink(rows_bundle);
    return 0;
}
