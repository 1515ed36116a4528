/* Tests of sync/bundle: operations captured in a real database, written to a bundle
 * and read back the same; `since` filtering by version vectors; and every way a bundle
 * or vector file can be cut, damaged or foreign, each refused before anything is handed
 * out. One file (over the house's 700 lines): bundle and vector files are one module's
 * (sync/bundle.c writes, seals and reads both), and their tests share the database with
 * a history and the sealing and refusing helpers below. */
#include "base/mem.h"
#include "sync/bundle.h"
#include "sync/capture.h"
#include "sync/codec.h"
#include "dbutil.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---- */

static uint64_t s_rng;

static uint64_t s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static char *s_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void s_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

/* A database at path set up for stemma as the migrator does: schema, stemma's tables
 * and capture triggers in one transaction. */
static store_t *s_setup(const char *path, const char *schema)
{
    store_t *s = NULL;
    stm_error err = {0};
    if (stm_store_open(path, STORE_OPEN_CREATE, &s, &err) != STM_OK)
        fail_msg("%s", err.msg);
    s_exec(stm_store_db(s), "BEGIN");
    s_exec(stm_store_db(s), schema);
    if (stm_store_prepare(s, &err) != STM_OK || stm_capture_install(s, &err) != STM_OK)
        fail_msg("%s", err.msg);
    s_exec(stm_store_db(s), "COMMIT");
    return s;
}

/* Runs sql through a connection of its own, as the application would. */
static void s_app(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        fail_msg("%s: %s", path, sqlite3_errmsg(db));
    sqlite3_busy_timeout(db, 5000);
    s_exec(db, sql);
    sqlite3_close(db);
}

static long long s_int(store_t *s, const char *sql)
{
    if (strstr(sql, "temp.ops"))
        du_ops(s);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(s), sql, -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW)
        fail_msg("%s: %s", sql, sqlite3_errmsg(stm_store_db(s)));
    long long v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

/* Every operation the oplog holds (above since, when given), read with SQL of our own,
 * by origin and sequence. */
static opbatch_t *s_oplog(store_t *s, const vector_t *since)
{
    du_ops(s);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(s),
                           "SELECT origin, seq, hlc, version_id, tbl, pk, col, aff, val FROM "
                           "temp.ops ORDER BY origin, seq",
                           -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s", sqlite3_errmsg(stm_store_db(s)));
    opbatch_t *b = stm_opbatch_new();
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        op_t op;
        memset(&op, 0, sizeof op);
        assert_int_equal(sqlite3_column_bytes(stmt, 0), STM_ID_BYTES);
        memcpy(op.origin.bytes, sqlite3_column_blob(stmt, 0), STM_ID_BYTES);
        op.seq = (uint64_t)sqlite3_column_int64(stmt, 1);
        op.hlc = (uint64_t)sqlite3_column_int64(stmt, 2);
        if (sqlite3_column_bytes(stmt, 3) == STM_ID_BYTES)
            memcpy(op.version_id.bytes, sqlite3_column_blob(stmt, 3), STM_ID_BYTES);
        op.table = (const char *)sqlite3_column_text(stmt, 4);
        stm_op_value_column(stmt, 5, &op.pk);
        op.column = (const char *)sqlite3_column_text(stmt, 6);
        if (op.column) {
            op.affinity = (char)sqlite3_column_text(stmt, 7)[0];
            stm_op_value_column(stmt, 8, &op.value);
        }
        if (since && op.seq <= stm_vector_get(since, &op.origin))
            continue;
        stm_opbatch_add(b, &op);
    }
    sqlite3_finalize(stmt);
    return b;
}

/* What a stm_bundle_read callback saw. */
typedef struct {
    opbatch_t *ops; /* every operation, in the order handed out */
    int calls;      /* batches */
    int fail_at;    /* return an error on this call (1-based); 0: never */
} s_sink;

static stm_err s_collect(void *ctx, const opbatch_t *batch, stm_error *err)
{
    s_sink *sink = ctx;
    sink->calls++;
    if (sink->fail_at == sink->calls)
        return stm_error_set(err, STM_EDB, "the callback says stop");
    assert_true(stm_opbatch_count(batch) > 0);
    for (size_t i = 0; i < stm_opbatch_count(batch); i++)
        stm_opbatch_add(sink->ops, stm_opbatch_at(batch, i));
    return STM_OK;
}

/* Gathers every batch's operations and stand-ins into one batch (ctx). */
static stm_err s_gather(void *ctx, const opbatch_t *batch, stm_error *err)
{
    (void)err;
    for (size_t i = 0; i < stm_opbatch_count(batch); i++)
        stm_opbatch_add(ctx, stm_opbatch_at(batch, i));
    for (size_t i = 0; i < stm_opbatch_withheld_count(batch); i++)
        stm_opbatch_add_withheld(ctx, stm_opbatch_withheld_at(batch, i));
    return STM_OK;
}

static int s_by_origin_seq(const void *a, const void *b)
{
    const op_t *x = *(const op_t *const *)a, *y = *(const op_t *const *)b;
    int c = memcmp(x->origin.bytes, y->origin.bytes, STM_ID_BYTES);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void s_assert_op_equal(const op_t *a, const op_t *b)
{
    assert_memory_equal(a->origin.bytes, b->origin.bytes, STM_ID_BYTES);
    assert_memory_equal(a->version_id.bytes, b->version_id.bytes, STM_ID_BYTES);
    assert_true(a->seq == b->seq);
    assert_true(a->hlc == b->hlc);
    assert_string_equal(a->table, b->table);
    assert_int_equal(a->column == NULL, b->column == NULL);
    if (a->column)
        assert_string_equal(a->column, b->column);
    assert_int_equal(a->affinity, b->affinity);
    assert_true(stm_op_value_equal(&a->pk, &b->pk));
    assert_true(stm_op_value_equal(&a->value, &b->value));
}

/* got holds the same operations as want (sorted by origin and seq), and hands them out
 * in causal order: by sequence within an origin, by clock across origins. */
static void s_assert_same_ops(const opbatch_t *got, const opbatch_t *want)
{
    size_t n = stm_opbatch_count(got);
    assert_int_equal(n, stm_opbatch_count(want));
    const op_t **sorted = stm_malloc((n ? n : 1) * sizeof *sorted);
    for (size_t i = 0; i < n; i++) {
        sorted[i] = stm_opbatch_at(got, i);
        if (i > 0)
            assert_true(stm_opbatch_at(got, i - 1)->hlc <= stm_opbatch_at(got, i)->hlc);
    }
    qsort(sorted, n, sizeof *sorted, s_by_origin_seq);
    for (size_t i = 0; i < n; i++)
        s_assert_op_equal(sorted[i], stm_opbatch_at(want, i));
    free(sorted);
}

/* Reads path with a collecting callback; returns the code, the sink filled. */
static stm_err s_read(const char *path, s_sink *sink, bundle_info *info, stm_error *err)
{
    memset(sink, 0, sizeof *sink);
    sink->ops = stm_opbatch_new();
    return stm_bundle_read(path, s_collect, sink, info, err);
}

static unsigned char *s_slurp(const char *path, size_t *len)
{
    char *data = tu_read(path, len);
    if (!data)
        fail_msg("%s: cannot read", path);
    return (unsigned char *)data;
}

static void s_spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
        fail_msg("%s: cannot write", path);
}

/* Expects path to be refused with code, a message naming it, and no batch handed out. */
static void s_assert_bundle_refused(const char *path, stm_err code, const char *what)
{
    s_sink sink;
    bundle_info info;
    stm_error err = {0};
    stm_err rc = s_read(path, &sink, &info, &err);
    if (rc != code)
        fail_msg("%s: got %d (%s), expected %d", path, rc, err.msg, code);
    assert_int_equal(err.code, code);
    assert_int_equal(sink.calls, 0);
    assert_int_equal(stm_opbatch_count(sink.ops), 0);
    if (strncmp(err.msg, path, strlen(path)) != 0)
        fail_msg("the message does not start with the file's name: %s", err.msg);
    if (what && !strstr(err.msg, what))
        fail_msg("expected \"%s\" in \"%s\"", what, err.msg);
    assert_null(strchr(err.msg, '\n'));
    stm_opbatch_destroy(&sink.ops);
}

static void s_assert_vector_file_refused(const char *path, stm_err code, const char *what)
{
    vector_t *v = NULL;
    stm_error err = {0};
    stm_err rc = stm_bundle_read_vector(path, &v, &err);
    if (rc != code)
        fail_msg("%s: got %d (%s), expected %d", path, rc, err.msg, code);
    assert_null(v);
    assert_int_equal(err.code, code);
    if (strncmp(err.msg, path, strlen(path)) != 0)
        fail_msg("the message does not start with the file's name: %s", err.msg);
    if (what && !strstr(err.msg, what))
        fail_msg("expected \"%s\" in \"%s\"", what, err.msg);
}

/* No file in dir has ".tmp" in its name. */
static void s_assert_no_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp"))
            fail_msg("%s/%s left behind", dir, e->d_name);
    closedir(d);
}

/* ---- a database with some history ---- */

static const char *s_schema = "CREATE TABLE items ("
                              "  id INTEGER PRIMARY KEY,"
                              "  name TEXT NOT NULL,"
                              "  data BLOB,"
                              "  price REAL,"
                              "  qty INTEGER"
                              ");"
                              "CREATE TABLE tags (id TEXT PRIMARY KEY, label TEXT);";

typedef struct {
    char *dir;
    char *db;
    store_t *store;
    stm_id first_origin; /* the node id before it changed */
    stm_id second_origin;
} s_fixture;

/* Inserts, updates and deletes of every value type, by two origins (the node id
 * changes half-way, as when a node is set up on a database already in use). */
static int s_setup_history(void **state)
{
    s_fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    f->db = s_path(f->dir, "app.db");
    f->store = s_setup(f->db, s_schema);
    stm_error err = {0};
    assert_int_equal(stm_store_node_id(f->store, &f->first_origin, &err), STM_OK);
    /* Collected after each write, as a node would, so that every step is kept. */
    s_app(f->db, "INSERT INTO items VALUES (1, 'one', x'00ff00', 1.5, 10);"
                 "INSERT INTO items VALUES (2, 'two', NULL, NULL, NULL);"
                 "INSERT INTO items VALUES (-9223372036854775808, '', x'', -0.0, "
                 "9223372036854775807);"
                 "INSERT INTO tags VALUES ('t1', 'red'), ('t2', 'tab\there');");
    du_ops(f->store);
    s_app(f->db, "UPDATE items SET qty = 11 WHERE id = 1;"
                 "UPDATE items SET qty = 11 WHERE id = 1;" /* no change: nothing captured */
                 "DELETE FROM items WHERE id = 2;");
    du_ops(f->store);
    memset(f->second_origin.bytes, 0x42, STM_ID_BYTES);
    assert_int_equal(stm_store_set_node_id(f->store, &f->second_origin, &err), STM_OK);
    s_app(f->db, "UPDATE items SET name = 'uno', price = 2.25 WHERE id = 1;"
                 "INSERT INTO items VALUES (3, 'three', zeroblob(3000), 3e300, -3);");
    du_ops(f->store);
    s_app(f->db, "UPDATE tags SET label = NULL WHERE id = 't1';"
                 "DELETE FROM tags WHERE id = 't2';");
    *state = f;
    return 0;
}

static int s_teardown_history(void **state)
{
    s_fixture *f = *state;
    stm_store_destroy(&f->store);
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f->db);
    free(f);
    return 0;
}

/* ---- round trips ---- */

static void test_bundle_round_trip(void **state)
{
    s_fixture *f = *state;
    char *path = s_path(f->dir, "all.stmb");
    bundle_info info;
    stm_error err = {0};
    if (stm_bundle_write(f->store, NULL, path, &info, &err) != STM_OK)
        fail_msg("%s", err.msg);
    opbatch_t *want = s_oplog(f->store, NULL);
    assert_true(stm_opbatch_count(want) >= 25);
    assert_int_equal(info.ops, stm_opbatch_count(want));
    assert_int_equal(info.batches, 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(info.bytes, (uint64_t)st.st_size);

    s_sink sink;
    bundle_info rinfo;
    if (s_read(path, &sink, &rinfo, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(sink.calls, 1);
    assert_int_equal(rinfo.ops, info.ops);
    assert_int_equal(rinfo.batches, 1);
    assert_int_equal(rinfo.bytes, info.bytes);
    s_assert_same_ops(sink.ops, want);

    /* What the triggers recorded arrived with its types: the blob with NULs, the
     * extreme integers, -0.0, the row deletes. */
    bool saw_blob = false, saw_min = false, saw_delete = false, saw_null = false;
    for (size_t i = 0; i < stm_opbatch_count(sink.ops); i++) {
        const op_t *op = stm_opbatch_at(sink.ops, i);
        if (op->column && strcmp(op->column, "data") == 0 && op->pk.type == VALUE_INTEGER &&
            op->pk.i == 1) {
            assert_int_equal(op->value.type, VALUE_BLOB);
            assert_int_equal(op->value.len, 3);
            assert_memory_equal(op->value.bytes, "\0\377\0", 3);
            assert_int_equal(op->affinity, 'B');
            saw_blob = true;
        }
        if (op->pk.type == VALUE_INTEGER && op->pk.i == INT64_MIN && op->column &&
            strcmp(op->column, "qty") == 0) {
            assert_int_equal(op->value.type, VALUE_INTEGER);
            assert_true(op->value.i == INT64_MAX);
            saw_min = true;
        }
        if (stm_op_is_delete(op) && strcmp(op->table, "items") == 0) {
            assert_int_equal(op->pk.i, 2);
            assert_int_equal(op->value.type, VALUE_NULL);
            saw_delete = true;
        }
        if (op->column && strcmp(op->column, "label") == 0 && op->value.type == VALUE_NULL)
            saw_null = true;
    }
    assert_true(saw_blob && saw_min && saw_delete && saw_null);
    /* Both origins are in it. */
    vector_t *v = NULL;
    assert_int_equal(stm_vector_read(f->store, &v, &err), STM_OK);
    assert_int_equal(stm_vector_count(v), 2);
    stm_vector_destroy(&v);

    /* Verifying alone (no callback) reads it whole and hands out nothing. */
    assert_int_equal(stm_bundle_read(path, NULL, NULL, &rinfo, &err), STM_OK);
    assert_int_equal(rinfo.ops, info.ops);

    stm_opbatch_destroy(&sink.ops);
    stm_opbatch_destroy(&want);
    free(path);
}

static stm_err s_count_withheld(void *ctx, const opbatch_t *batch, stm_error *err)
{
    (void)err;
    *(size_t *)ctx += stm_opbatch_withheld_count(batch);
    return STM_OK;
}

/* A stand-in this database holds (a row change its sender withheld: op.h) travels on
 * in a bundle as a stand-in, is not counted among the operations (a reader that skips
 * it counts the same), and a database applying the bundle holds it as withheld too. */
static void test_bundle_carries_stand_ins(void **state)
{
    s_fixture *f = *state;
    opbatch_t *in = stm_opbatch_new();
    op_withheld w = {.seq = 1, .n = 5, .hlc = 99, .table = "items",
                     .pk = {.type = VALUE_INTEGER, .i = 4}, .bytes = 300000000};
    memset(w.origin.bytes, 0x77, STM_ID_BYTES);
    stm_opbatch_add_withheld(in, &w);
    apply_stats st = du_apply(f->store, in);
    assert_int_equal(st.withheld, 5);
    stm_opbatch_destroy(&in);
    char *path = s_path(f->dir, "standin.stmb");
    bundle_info info;
    stm_error err = {0};
    if (stm_bundle_write(f->store, NULL, path, &info, &err) != STM_OK)
        fail_msg("%s", err.msg);
    opbatch_t *want = s_oplog(f->store, NULL);
    assert_int_equal(info.ops, stm_opbatch_count(want));
    assert_int_equal(info.withheld, 0); /* received, not withheld by this writer */
    size_t standins = 0;
    bundle_info rinfo;
    if (stm_bundle_read(path, s_count_withheld, &standins, &rinfo, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(standins, 1);
    assert_int_equal(rinfo.ops, info.ops);
    /* Applied elsewhere: held there as withheld, the vector past it. */
    char *other_db = s_path(f->dir, "other.db");
    store_t *other = s_setup(other_db, s_schema);
    applier_t *applier = stm_applier_new(other, NULL, NULL);
    apply_stats ost = {0};
    assert_int_equal(stm_applier_begin(applier, &err), STM_OK);
    opbatch_t *all = stm_opbatch_new();
    assert_int_equal(stm_bundle_read(path, s_gather, all, &rinfo, &err), STM_OK);
    assert_int_equal(stm_applier_apply(applier, all, &ost, &err), STM_OK);
    assert_int_equal(stm_applier_commit(applier, &err), STM_OK);
    assert_int_equal(ost.withheld, 5);
    vector_t *v = NULL;
    assert_int_equal(stm_vector_read(other, &v, &err), STM_OK);
    assert_int_equal(stm_vector_get(v, &w.origin), 5);
    stm_vector_destroy(&v);
    stm_opbatch_destroy(&all);
    stm_applier_destroy(&applier);
    stm_store_destroy(&other);
    free(other_db);
    stm_opbatch_destroy(&want);
    free(path);
}

static void test_bundle_since(void **state)
{
    s_fixture *f = *state;
    char *path = s_path(f->dir, "since.stmb");
    stm_error err = {0};
    bundle_info info;
    s_sink sink;
    vector_t *mine = NULL;
    assert_int_equal(stm_vector_read(f->store, &mine, &err), STM_OK);
    uint64_t first_last = stm_vector_get(mine, &f->first_origin);
    uint64_t second_last = stm_vector_get(mine, &f->second_origin);
    assert_true(first_last > 4 && second_last > 4);

    /* Each `since` and what it should leave out. */
    stm_id stranger;
    memset(stranger.bytes, 0x77, STM_ID_BYTES);
    vector_t *cases[5];
    cases[0] = stm_vector_new(); /* empty: everything */
    cases[1] = stm_vector_new(); /* part of the first origin */
    stm_vector_set(cases[1], &f->first_origin, 3);
    cases[2] = stm_vector_new(); /* all of the first, part of the second, an unknown one */
    stm_vector_set(cases[2], &f->first_origin, first_last);
    stm_vector_set(cases[2], &f->second_origin, 2);
    stm_vector_set(cases[2], &stranger, 1000);
    cases[3] = mine;         /* everything: an empty bundle */
    cases[4] = stm_vector_new(); /* beyond what is held */
    stm_vector_set(cases[4], &f->first_origin, UINT32_MAX);
    stm_vector_set(cases[4], &f->second_origin, second_last + 1);
    for (size_t i = 0; i < 5; i++) {
        if (stm_bundle_write(f->store, cases[i], path, &info, &err) != STM_OK)
            fail_msg("%s", err.msg);
        opbatch_t *want = s_oplog(f->store, cases[i]);
        assert_int_equal(info.ops, stm_opbatch_count(want));
        assert_int_equal(info.batches, stm_opbatch_count(want) ? 1 : 0);
        if (s_read(path, &sink, &info, &err) != STM_OK)
            fail_msg("%s", err.msg);
        assert_int_equal(sink.calls, stm_opbatch_count(want) ? 1 : 0);
        s_assert_same_ops(sink.ops, want);
        stm_opbatch_destroy(&sink.ops);
        stm_opbatch_destroy(&want);
    }
    for (size_t i = 0; i < 5; i++)
        stm_vector_destroy(&cases[i]);
    /* A read-only connection writes bundles too (stemma changes opens one). */
    store_t *ro = NULL;
    assert_int_equal(stm_store_open(f->db, STORE_OPEN_READONLY, &ro, &err), STM_OK);
    assert_int_equal(stm_bundle_write(ro, NULL, path, &info, &err), STM_OK);
    assert_int_equal(info.ops, (uint64_t)s_int(f->store, "SELECT count(*) FROM temp.ops"));
    stm_store_destroy(&ro);
    free(path);
}

static void test_bundle_many_frames(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *db = s_path(dir, "big.db"), *path = s_path(dir, "big.stmb");
    store_t *s = s_setup(db, "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT);");
    /* 5001 rows of two operations each: more than one frame holds. */
    s_app(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5001) "
              "INSERT INTO kv SELECT i, 'value ' || i FROM n;");
    bundle_info info;
    stm_error err = {0};
    if (stm_bundle_write(s, NULL, path, &info, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(info.ops, 10002);
    assert_int_equal(info.batches, 2);
    s_sink sink;
    if (s_read(path, &sink, &info, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(sink.calls, 2);
    opbatch_t *want = s_oplog(s, NULL);
    s_assert_same_ops(sink.ops, want);
    stm_opbatch_destroy(&want);
    stm_opbatch_destroy(&sink.ops);

    /* A callback's error stops the reading and comes back as it was. */
    memset(&sink, 0, sizeof sink);
    sink.ops = stm_opbatch_new();
    sink.fail_at = 1;
    stm_err rc = stm_bundle_read(path, s_collect, &sink, &info, &err);
    assert_int_equal(rc, STM_EDB);
    assert_string_equal(err.msg, "the callback says stop");
    assert_int_equal(sink.calls, 1);
    stm_opbatch_destroy(&sink.ops);

    /* Cut at the places that matter: in the header, around the first frame's length
     * and end, in the second frame, in the end marker and count, in the digest. */
    size_t len;
    unsigned char *data = s_slurp(path, &len);
    size_t frame1 =
        (size_t)data[8] << 24 | (size_t)data[9] << 16 | (size_t)data[10] << 8 | data[11];
    size_t second = 12 + frame1; /* where the second frame's length starts */
    assert_true(second + 4 < len - 44);
    size_t cuts[96], ncuts = 0;
    for (size_t c = 0; c < 16; c++)
        cuts[ncuts++] = c;
    for (size_t c = second - 3; c <= second + 6; c++)
        cuts[ncuts++] = c;
    for (size_t c = len - 46; c < len; c++) /* end marker, count and digest */
        cuts[ncuts++] = c;
    s_rng = 31;
    while (ncuts < sizeof cuts / sizeof cuts[0])
        cuts[ncuts++] = (size_t)(s_rand() % len);
    char *cut_path = s_path(dir, "cut.stmb");
    for (size_t i = 0; i < ncuts; i++) {
        s_spit(cut_path, data, cuts[i]);
        s_assert_bundle_refused(cut_path, STM_ECORRUPT, NULL);
    }
    free(data);
    free(cut_path);
    stm_store_destroy(&s);
    tu_remove_tree(dir);
    free(dir);
    free(db);
    free(path);
}

/* ---- damaged bundles ---- */

static void test_bundle_every_truncation_and_flip(void **state)
{
    s_fixture *f = *state;
    char *path = s_path(f->dir, "good.stmb"), *bad = s_path(f->dir, "bad.stmb");
    bundle_info info;
    stm_error err = {0};
    assert_int_equal(stm_bundle_write(f->store, NULL, path, &info, &err), STM_OK);
    size_t len;
    unsigned char *data = s_slurp(path, &len);
    /* Every length short of the whole. */
    for (size_t cut = 0; cut < len; cut++) {
        s_spit(bad, data, cut);
        s_assert_bundle_refused(bad, STM_ECORRUPT, cut < 8 ? "wrong magic" : NULL);
    }
    /* Every byte flipped (one bit or all bits, by turns). */
    unsigned char *copy = malloc(len);
    for (size_t at = 0; at < len; at++) {
        memcpy(copy, data, len);
        copy[at] ^= (unsigned char)(at % 2 ? 0xff : 0x01);
        s_spit(bad, copy, len);
        /* The version byte names another format (one this stemma reads too: then the
         * digest tells the damage); anything else is damage. */
        bool other = at == 4 && (copy[4] < BUNDLE_VERSION_OLDEST || copy[4] > BUNDLE_VERSION);
        s_assert_bundle_refused(bad, other ? STM_EINPUT : STM_ECORRUPT, NULL);
    }
    /* Bytes after the digest. */
    memcpy(copy, data, len);
    s_spit(bad, copy, len);
    FILE *fp = fopen(bad, "ab");
    fputc(0, fp);
    fclose(fp);
    s_assert_bundle_refused(bad, STM_ECORRUPT, "bytes follow the digest");
    /* The whole file again: fine. */
    s_spit(bad, data, len);
    s_sink sink;
    assert_int_equal(s_read(bad, &sink, &info, &err), STM_OK);
    stm_opbatch_destroy(&sink.ops);
    free(copy);
    free(data);
    free(bad);
    free(path);
}

/* Writes header (8 bytes), body and the digest of both to path: well sealed, whatever
 * the body says. */
static void s_seal(const char *path, const char *magic, unsigned version,
                   const unsigned char *reserved, const void *body, size_t len)
{
    buf_t b = BUF_INIT;
    stm_buf_append(&b, magic, 4);
    unsigned char h[4] = {(unsigned char)version, 0, 0, 0};
    if (reserved)
        memcpy(h + 1, reserved, 3);
    stm_buf_append(&b, h, 4);
    stm_buf_append(&b, body, len);
    stm_id digest;
    stm_id_hash(b.data, b.len, &digest);
    stm_buf_append(&b, digest.bytes, STM_ID_BYTES);
    s_spit(path, b.data, b.len);
    stm_buf_free(&b);
}

static void s_be(buf_t *b, uint64_t v, int n)
{
    unsigned char x[8];
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        x[i] = (unsigned char)v;
    stm_buf_append(b, x, (size_t)n);
}

/* A frame of one good operation. */
static void s_good_frame(buf_t *b)
{
    opbatch_t *batch = stm_opbatch_new();
    op_t op;
    memset(&op, 0, sizeof op);
    memset(op.origin.bytes, 1, STM_ID_BYTES);
    op.seq = 1;
    op.hlc = 1;
    op.table = "t";
    op.pk.type = VALUE_INTEGER;
    op.column = "c";
    op.affinity = 'I';
    op.value.type = VALUE_INTEGER;
    stm_opbatch_add(batch, &op);
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(batch, 0, 1, &enc);
    s_be(b, enc.len, 4);
    stm_buf_append(b, enc.data, enc.len);
    stm_buf_free(&enc);
    stm_opbatch_destroy(&batch);
}

static void test_bundle_sealed_but_wrong(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *path = s_path(dir, "crafted.stmb");
    buf_t body = BUF_INIT;

    /* A good one, built by hand: the format is what the header comment says. */
    s_good_frame(&body);
    s_be(&body, 0, 4);
    s_be(&body, 1, 8);
    s_seal(path, "STMB", BUNDLE_VERSION, NULL, body.data, body.len);
    s_sink sink;
    bundle_info info;
    stm_error err = {0};
    if (s_read(path, &sink, &info, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(sink.calls, 1);
    stm_opbatch_destroy(&sink.ops);
    /* The same with no operations at all. */
    stm_buf_reset(&body);
    s_be(&body, 0, 4);
    s_be(&body, 0, 8);
    s_seal(path, "STMB", BUNDLE_VERSION, NULL, body.data, body.len);
    assert_int_equal(s_read(path, &sink, &info, &err), STM_OK);
    assert_int_equal(sink.calls, 0);
    stm_opbatch_destroy(&sink.ops);

    /* A future version, with a good digest. */
    stm_buf_reset(&body);
    s_good_frame(&body);
    s_be(&body, 0, 4);
    s_be(&body, 1, 8);
    s_seal(path, "STMB", BUNDLE_VERSION + 1, NULL, body.data, body.len);
    s_assert_bundle_refused(path, STM_EINPUT, "bundle format 4; this stemma reads formats 2 to 3");
    /* The format before, sealed: read (its batches are format 3's less "derived"). */
    s_seal(path, "STMB", BUNDLE_VERSION_OLDEST, NULL, body.data, body.len);
    if (s_read(path, &sink, &info, &err) != STM_OK)
        fail_msg("a format %d bundle: %s", BUNDLE_VERSION_OLDEST, err.msg);
    assert_int_equal(sink.calls, 1);
    stm_opbatch_destroy(&sink.ops);
    s_seal(path, "STMB", BUNDLE_VERSION_OLDEST - 1, NULL, body.data, body.len);
    s_assert_bundle_refused(path, STM_EINPUT, "bundle format 1;");
    /* Reserved header bytes set. */
    s_seal(path, "STMB", BUNDLE_VERSION, (const unsigned char *)"\0\0\1", body.data, body.len);
    s_assert_bundle_refused(path, STM_ECORRUPT, "reserved");
    /* Wrong magic: a vector file, or anything else. */
    s_seal(path, "STMV", VECTOR_VERSION, NULL, body.data, body.len);
    s_assert_bundle_refused(path, STM_ECORRUPT, "not a stemma bundle");
    s_spit(path, "SQLite format 3\0", 16);
    s_assert_bundle_refused(path, STM_ECORRUPT, "not a stemma bundle");
    /* The count disagrees with the frames. */
    stm_buf_reset(&body);
    s_good_frame(&body);
    s_be(&body, 0, 4);
    s_be(&body, 2, 8);
    s_seal(path, "STMB", BUNDLE_VERSION, NULL, body.data, body.len);
    s_assert_bundle_refused(path, STM_ECORRUPT, "count");
    /* A batch that does not decode (a second frame of garbage), with a good digest:
     * refused before the first (good) batch is handed out. */
    stm_buf_reset(&body);
    s_good_frame(&body);
    s_be(&body, 5, 4);
    stm_buf_append(&body, "\x81\xa3ops", 5); /* {"ops": and nothing */
    s_be(&body, 0, 4);
    s_be(&body, 1, 8);
    s_seal(path, "STMB", BUNDLE_VERSION, NULL, body.data, body.len);
    s_assert_bundle_refused(path, STM_ECORRUPT, "batch 2: malformed operation batch");
    /* Without an error buffer, the same code. */
    assert_int_equal(stm_bundle_read(path, NULL, NULL, &info, NULL), STM_ECORRUPT);
    /* A frame longer than the limit, and one longer than the file. */
    stm_buf_reset(&body);
    s_be(&body, BUNDLE_MAX_FRAME + 1, 4);
    stm_buf_append(&body, "\x80", 1);
    s_seal(path, "STMB", BUNDLE_VERSION, NULL, body.data, body.len);
    s_assert_bundle_refused(path, STM_ECORRUPT, "longer than the limit");
    stm_buf_reset(&body);
    s_be(&body, BUNDLE_MAX_FRAME, 4);
    stm_buf_append(&body, "\x80", 1);
    s_seal(path, "STMB", BUNDLE_VERSION, NULL, body.data, body.len);
    s_assert_bundle_refused(path, STM_ECORRUPT, "cut short");
    /* No file, an empty file, a directory. */
    char *missing = s_path(dir, "missing.stmb");
    s_assert_bundle_refused(missing, STM_EINPUT, "cannot read");
    s_spit(path, "", 0);
    s_assert_bundle_refused(path, STM_ECORRUPT, NULL);
    stm_err rc = stm_bundle_read(dir, s_collect, &sink, &info, &err);
    assert_true(rc == STM_ECORRUPT || rc == STM_EINPUT);
    free(missing);
    stm_buf_free(&body);
    tu_remove_tree(dir);
    free(dir);
    free(path);
}

/* ---- writing in place ---- */

static void test_bundle_replaces_only_when_complete(void **state)
{
    s_fixture *f = *state;
    char *sub = s_path(f->dir, "out");
    assert_int_equal(mkdir(sub, 0755), 0);
    char *path = s_path(sub, "x.stmb");
    s_spit(path, "old", 3);
    bundle_info info;
    stm_error err = {0};
    /* Written whole, it takes the old file's place, and nothing else is left. */
    assert_int_equal(stm_bundle_write(f->store, NULL, path, &info, &err), STM_OK);
    size_t len;
    unsigned char *data = s_slurp(path, &len);
    assert_int_equal(len, info.bytes);
    assert_memory_equal(data, "STMB", 4);
    free(data);
    s_assert_no_tmp(sub);
    /* Its place taken by a directory, the write fails and leaves nothing behind. */
    char *taken = s_path(sub, "taken");
    assert_int_equal(mkdir(taken, 0755), 0);
    assert_int_equal(stm_bundle_write(f->store, NULL, taken, &info, &err), STM_ESYS);
    assert_non_null(strstr(err.msg, taken));
    struct stat st;
    assert_int_equal(stat(taken, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    vector_t *v = stm_vector_new();
    assert_int_equal(stm_bundle_write_vector(v, taken, &err), STM_ESYS);
    s_assert_no_tmp(sub);
    /* In a directory that does not exist: the error names the file. */
    char *nowhere = s_path(f->dir, "no/such/dir/x.stmb");
    assert_int_equal(stm_bundle_write(f->store, NULL, nowhere, &info, &err), STM_ESYS);
    assert_non_null(strstr(err.msg, nowhere));
    assert_int_equal(stm_bundle_write_vector(v, nowhere, &err), STM_ESYS);
    /* Where the file cannot be written at all, the old one stays as it was. */
    if (geteuid() != 0) {
        s_spit(path, "old", 3);
        assert_int_equal(chmod(sub, 0555), 0);
        assert_int_equal(stm_bundle_write(f->store, NULL, path, &info, &err), STM_ESYS);
        assert_int_equal(stm_bundle_write_vector(v, path, &err), STM_ESYS);
        assert_int_equal(chmod(sub, 0755), 0);
        data = s_slurp(path, &len);
        assert_int_equal(len, 3);
        assert_memory_equal(data, "old", 3);
        free(data);
    }
    s_assert_no_tmp(sub);
    stm_vector_destroy(&v);
    free(nowhere);
    free(taken);
    free(path);
    free(sub);
}

/* ---- vector files ---- */

static void test_vector_file_round_trip(void **state)
{
    s_fixture *f = *state;
    char *path = s_path(f->dir, "v.stmv");
    stm_error err = {0};
    vector_t *v = NULL, *back = NULL;
    /* The database's own, an empty one, a large one. */
    assert_int_equal(stm_vector_read(f->store, &v, &err), STM_OK);
    vector_t *empty = stm_vector_new(), *large = stm_vector_new();
    s_rng = 3;
    for (int i = 0; i < 5000; i++) {
        stm_id id;
        for (int k = 0; k < STM_ID_BYTES; k++)
            id.bytes[k] = (unsigned char)s_rand();
        stm_vector_set(large, &id, s_rand() >> 1);
    }
    vector_t *all[] = {v, empty, large};
    for (size_t i = 0; i < 3; i++) {
        if (stm_bundle_write_vector(all[i], path, &err) != STM_OK)
            fail_msg("%s", err.msg);
        if (stm_bundle_read_vector(path, &back, &err) != STM_OK)
            fail_msg("%s", err.msg);
        assert_int_equal(stm_vector_count(back), stm_vector_count(all[i]));
        for (size_t k = 0; k < stm_vector_count(back); k++) {
            assert_memory_equal(stm_vector_at(back, k)->origin.bytes,
                                stm_vector_at(all[i], k)->origin.bytes, STM_ID_BYTES);
            assert_true(stm_vector_at(back, k)->seq == stm_vector_at(all[i], k)->seq);
        }
        stm_vector_destroy(&back);
    }
    s_assert_no_tmp(f->dir);
    stm_vector_destroy(&v);
    stm_vector_destroy(&empty);
    stm_vector_destroy(&large);
    free(path);
}

/* In memory (the SQLite extension's blobs), a bundle and a vector are a file's bytes
 * exactly, read back the same, and refused the same when damaged or empty. */
static void test_blobs_are_the_files_bytes(void **state)
{
    s_fixture *f = *state;
    char *path = s_path(f->dir, "all.stmb");
    bundle_info info, minfo;
    stm_error err = {0};
    if (stm_bundle_write(f->store, NULL, path, &info, &err) != STM_OK)
        fail_msg("%s", err.msg);
    char *blob = NULL;
    size_t len = 0;
    if (stm_bundle_write_mem(f->store, NULL, &blob, &len, &minfo, &err) != STM_OK)
        fail_msg("%s", err.msg);
    size_t flen;
    unsigned char *file = s_slurp(path, &flen);
    assert_int_equal(len, flen);
    assert_memory_equal(blob, file, len);
    assert_int_equal(minfo.ops, info.ops);
    s_sink sink = {.ops = stm_opbatch_new()};
    if (stm_bundle_read_mem(blob, len, s_collect, &sink, &minfo, &err) != STM_OK)
        fail_msg("%s", err.msg);
    opbatch_t *want = s_oplog(f->store, NULL);
    s_assert_same_ops(sink.ops, want);
    /* A flipped byte, a cut, nothing at all: refused before anything is handed out. */
    blob[len / 2] ^= 1;
    int calls = sink.calls;
    assert_int_equal(stm_bundle_read_mem(blob, len, s_collect, &sink, &minfo, &err), STM_ECORRUPT);
    assert_non_null(strstr(err.msg, "a bundle: damaged"));
    assert_int_equal(stm_bundle_read_mem(file, len - 1, s_collect, &sink, &minfo, &err),
                     STM_ECORRUPT);
    assert_int_equal(stm_bundle_read_mem(NULL, 0, s_collect, &sink, &minfo, &err), STM_ECORRUPT);
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(sink.calls, calls);
    /* The vector too. */
    vector_t *v = NULL, *back = NULL;
    assert_int_equal(stm_vector_read(f->store, &v, &err), STM_OK);
    char *vpath = s_path(f->dir, "v.stmv"), *vblob = NULL;
    size_t vlen = 0, vflen = 0;
    assert_int_equal(stm_bundle_write_vector(v, vpath, &err), STM_OK);
    assert_int_equal(stm_bundle_write_vector_mem(v, &vblob, &vlen, &err), STM_OK);
    unsigned char *vfile = s_slurp(vpath, &vflen);
    assert_int_equal(vlen, vflen);
    assert_memory_equal(vblob, vfile, vlen);
    assert_int_equal(stm_bundle_read_vector_mem(vblob, vlen, &back, &err), STM_OK);
    assert_int_equal(stm_vector_count(back), stm_vector_count(v));
    assert_int_equal(stm_bundle_read_vector_mem(blob, len, &back, &err), STM_ECORRUPT);
    assert_non_null(strstr(err.msg, "a vector: not a stemma vector file"));
    stm_vector_destroy(&back);
    stm_vector_destroy(&v);
    free(vfile);
    free(vblob);
    free(vpath);
    stm_opbatch_destroy(&want);
    stm_opbatch_destroy(&sink.ops);
    free(file);
    free(blob);
    free(path);
}

static void test_vector_file_damaged(void **state)
{
    s_fixture *f = *state;
    char *path = s_path(f->dir, "good.stmv"), *bad = s_path(f->dir, "bad.stmv");
    stm_error err = {0};
    vector_t *v = NULL;
    assert_int_equal(stm_vector_read(f->store, &v, &err), STM_OK);
    assert_int_equal(stm_bundle_write_vector(v, path, &err), STM_OK);
    stm_vector_destroy(&v);
    size_t len;
    unsigned char *data = s_slurp(path, &len);
    for (size_t cut = 0; cut < len; cut++) {
        s_spit(bad, data, cut);
        s_assert_vector_file_refused(bad, STM_ECORRUPT, NULL);
    }
    unsigned char *copy = malloc(len + 1);
    for (size_t at = 0; at < len; at++) {
        memcpy(copy, data, len);
        copy[at] ^= (unsigned char)(at % 2 ? 0xff : 0x01);
        s_spit(bad, copy, len);
        s_assert_vector_file_refused(bad, at == 4 ? STM_EINPUT : STM_ECORRUPT, NULL);
    }
    memcpy(copy, data, len);
    copy[len] = 0;
    s_spit(bad, copy, len + 1);
    s_assert_vector_file_refused(bad, STM_ECORRUPT, "bytes follow the digest");
    /* A bundle is not a vector file. */
    char *bundle = s_path(f->dir, "b.stmb");
    bundle_info info;
    assert_int_equal(stm_bundle_write(f->store, NULL, bundle, &info, &err), STM_OK);
    s_assert_vector_file_refused(bundle, STM_ECORRUPT, "not a stemma vector file");
    /* Sealed well but wrong inside: a body that is not a vector, a length over the
     * limit or past the end, a future version. */
    buf_t body = BUF_INIT;
    s_be(&body, 1, 4);
    stm_buf_append(&body, "\x81", 1);
    s_seal(bad, "STMV", VECTOR_VERSION, NULL, body.data, body.len);
    s_assert_vector_file_refused(bad, STM_ECORRUPT, "malformed version vector");
    assert_int_equal(stm_bundle_read_vector(bad, &v, NULL), STM_ECORRUPT);
    stm_buf_reset(&body);
    s_be(&body, BUNDLE_MAX_VECTOR + 1, 4);
    s_seal(bad, "STMV", VECTOR_VERSION, NULL, body.data, body.len);
    s_assert_vector_file_refused(bad, STM_ECORRUPT, "longer than the limit");
    stm_buf_reset(&body);
    s_be(&body, BUNDLE_MAX_VECTOR, 4);
    stm_buf_append(&body, "\x90", 1);
    s_seal(bad, "STMV", VECTOR_VERSION, NULL, body.data, body.len);
    s_assert_vector_file_refused(bad, STM_ECORRUPT, "cut short");
    stm_buf_reset(&body);
    s_be(&body, 1, 4);
    stm_buf_append(&body, "\x90", 1);
    s_seal(bad, "STMV", 7, NULL, body.data, body.len);
    s_assert_vector_file_refused(bad, STM_EINPUT, "format 7");
    s_seal(bad, "STMV", VECTOR_VERSION, NULL, body.data, body.len);
    assert_int_equal(stm_bundle_read_vector(bad, &v, &err), STM_OK);
    assert_int_equal(stm_vector_count(v), 0);
    stm_vector_destroy(&v);
    char *missing = s_path(f->dir, "missing.stmv");
    s_assert_vector_file_refused(missing, STM_EINPUT, "cannot read");
    free(missing);
    stm_buf_free(&body);
    free(bundle);
    free(copy);
    free(data);
    free(bad);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bundle_round_trip, s_setup_history,
                                        s_teardown_history),
        cmocka_unit_test_setup_teardown(test_bundle_since, s_setup_history, s_teardown_history),
        cmocka_unit_test_setup_teardown(test_bundle_carries_stand_ins, s_setup_history,
                                        s_teardown_history),
        cmocka_unit_test(test_bundle_many_frames),
        cmocka_unit_test_setup_teardown(test_bundle_every_truncation_and_flip, s_setup_history,
                                        s_teardown_history),
        cmocka_unit_test(test_bundle_sealed_but_wrong),
        cmocka_unit_test_setup_teardown(test_bundle_replaces_only_when_complete, s_setup_history,
                                        s_teardown_history),
        cmocka_unit_test_setup_teardown(test_blobs_are_the_files_bytes, s_setup_history,
                                        s_teardown_history),
        cmocka_unit_test_setup_teardown(test_vector_file_round_trip, s_setup_history,
                                        s_teardown_history),
        cmocka_unit_test_setup_teardown(test_vector_file_damaged, s_setup_history,
                                        s_teardown_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
