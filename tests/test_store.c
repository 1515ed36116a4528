/* Tests of sync/store: opening a device's database (WAL, the busy timeout, what is
 * refused and how), stemma's own tables and their format, the node and version ids,
 * and the numbering of ids. Every database is a real file in a scratch directory. */
#include "dbutil.h"
#include "sync/apply.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *dir;
    char path[4200]; /* dir/app.db, not created by setup */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    snprintf(f->path, sizeof f->path, "%s/app.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static bool s_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The text sql (a SELECT or PRAGMA of one value) returns, copied into out. */
static void s_text(store_t *store, const char *sql, char *out, size_t size)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store), sql, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(stm_store_db(store)));
    const unsigned char *text =
        sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_text(stmt, 0) : NULL;
    snprintf(out, size, "%s", text ? (const char *)text : "(none)");
    sqlite3_finalize(stmt);
}

static store_t *s_open(const char *path, store_open_mode mode)
{
    store_t *store = NULL;
    stm_error err = {0};
    if (stm_store_open(path, mode, &store, &err) != STM_OK)
        fail_msg("%s", err.msg);
    return store;
}

/* A store with stemma's tables, prepared outside any transaction of the test's. */
static store_t *s_prepared(const char *path)
{
    store_t *store = s_open(path, STORE_OPEN_CREATE);
    stm_error err = {0};
    if (stm_store_prepare(store, &err) != STM_OK)
        fail_msg("%s", err.msg);
    return store;
}

static void test_a_missing_file_is_not_created_unless_asked(void **state)
{
    fixture *f = *state;
    store_t *store = NULL;
    stm_error err = {0};
    assert_int_equal(stm_store_open(f->path, STORE_OPEN_EXISTING, &store, &err), STM_EINPUT);
    assert_null(store);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "no such database file"));
    assert_int_equal(stm_store_open(f->path, STORE_OPEN_READONLY, &store, &err), STM_EINPUT);
    assert_false(s_exists(f->path));

    assert_int_equal(stm_store_open(f->path, STORE_OPEN_CREATE, &store, &err), STM_OK);
    assert_true(s_exists(f->path));
    assert_string_equal(stm_store_path(store), f->path);
    assert_non_null(stm_store_db(store));
    stm_store_destroy(&store);
    assert_null(store);
    stm_store_destroy(&store); /* safe twice */
}

static void test_open_sets_wal_normal_sync_and_the_busy_timeout(void **state)
{
    fixture *f = *state;
    store_t *store = s_open(f->path, STORE_OPEN_CREATE);
    char mode[32];
    s_text(store, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "wal");
    assert_int_equal(du_int(store, "PRAGMA synchronous"), 1); /* NORMAL */
    assert_int_equal(du_int(store, "PRAGMA busy_timeout"), STORE_BUSY_TIMEOUT_MS);
    stm_store_destroy(&store);

    /* WAL is the file's: an application's connection finds it too, so that it reads
     * while stemma writes. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

/* Another writer (the application) holds the write lock, and lets go of it 300 ms
 * later from a thread of its own. */
typedef struct {
    sqlite3 *db;
} s_holder;

static void *s_let_go_later(void *arg)
{
    s_holder *h = arg;
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
    return NULL;
}

static void test_a_write_waits_for_the_application_to_let_go(void **state)
{
    fixture *f = *state;
    store_t *store = s_prepared(f->path);
    s_holder h = {NULL};
    assert_int_equal(sqlite3_open(f->path, &h.db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h.db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, s_let_go_later, &h), 0);
    /* Without the busy timeout this fails at once with "database is locked". */
    stm_error err = {0};
    stm_err rc = stm_store_exec(store,
                                "BEGIN IMMEDIATE; INSERT INTO stemma_exclude VALUES ('t');"
                                "COMMIT",
                                &err);
    pthread_join(thread, NULL);
    sqlite3_close(h.db);
    if (rc != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(du_int(store, "SELECT count(*) FROM stemma_exclude"), 1);
    stm_store_destroy(&store);
}

static void test_a_file_that_is_not_a_database_is_refused_untouched(void **state)
{
    fixture *f = *state;
    char text[4096];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('a' + i % 26);
    tu_write_bytes(f->dir, "app.db", text, sizeof text);
    for (int mode = STORE_OPEN_EXISTING; mode <= STORE_OPEN_READONLY; mode++) {
        store_t *store = NULL;
        stm_error err = {0};
        assert_int_equal(stm_store_open(f->path, (store_open_mode)mode, &store, &err), STM_EINPUT);
        assert_null(store);
        assert_non_null(strstr(err.msg, f->path));
        assert_non_null(strstr(err.msg, "not a usable SQLite database"));
    }
    size_t len = 0;
    char *after = tu_read(f->path, &len);
    assert_int_equal(len, sizeof text);
    assert_memory_equal(after, text, sizeof text);
    free(after);
}

static void test_a_file_in_a_missing_directory_cannot_be_created(void **state)
{
    fixture *f = *state;
    char path[4300];
    snprintf(path, sizeof path, "%s/no/such/dir/app.db", f->dir);
    store_t *store = NULL;
    stm_error err = {0};
    assert_int_equal(stm_store_open(path, STORE_OPEN_CREATE, &store, &err), STM_EDB);
    assert_null(store);
    assert_non_null(strstr(err.msg, "cannot open"));
    assert_non_null(strstr(err.msg, path));
}

static void test_read_only_never_writes(void **state)
{
    fixture *f = *state;
    /* An application's database in SQLite's default journal mode. */
    du_exec(f->path, "CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT);"
                     "INSERT INTO t VALUES (1, 'one');");
    size_t before_len = 0;
    char *before = tu_read(f->path, &before_len);

    store_t *store = s_open(f->path, STORE_OPEN_READONLY);
    char mode[32];
    s_text(store, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "delete");
    assert_int_equal(du_int(store, "SELECT count(*) FROM t"), 1);
    assert_false(stm_store_is_prepared(store));
    stm_error err = {0};
    assert_int_equal(stm_store_exec(store, "INSERT INTO t VALUES (2, 'two')", &err), STM_EDB);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "readonly"));
    assert_int_not_equal(stm_store_prepare(store, &err), STM_OK);
    assert_false(stm_store_is_prepared(store));
    stm_store_destroy(&store);

    size_t after_len = 0;
    char *after = tu_read(f->path, &after_len);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    free(before);
    free(after);
}

/* A database the user may read but not write: read-only opens it (status, history),
 * and a writing open says so at its first write. Root may write any file, so the test
 * is skipped as root. */
static void test_a_read_only_file(void **state)
{
    fixture *f = *state;
    if (geteuid() == 0)
        skip();
    store_t *store = s_prepared(f->path);
    stm_store_destroy(&store); /* a clean close folds the WAL back into the file */
    assert_int_equal(chmod(f->path, 0444), 0);
    store = s_open(f->path, STORE_OPEN_READONLY);
    assert_true(stm_store_is_prepared(store));
    stm_id id;
    stm_error err = {0};
    assert_int_equal(stm_store_node_id(store, &id, &err), STM_OK);
    stm_store_destroy(&store);

    store = s_open(f->path, STORE_OPEN_EXISTING);
    assert_int_equal(stm_store_exec(store, "INSERT INTO stemma_exclude VALUES ('t')", &err),
                     STM_EDB);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "readonly database"));
    stm_store_destroy(&store);

    /* An application's file in SQLite's default journal mode cannot be switched to WAL:
     * the open itself says why. */
    char other[4300];
    snprintf(other, sizeof other, "%s/app2.db", f->dir);
    du_exec(other, "CREATE TABLE t (x)");
    assert_int_equal(chmod(other, 0444), 0);
    assert_int_equal(stm_store_open(other, STORE_OPEN_EXISTING, &store, &err), STM_EDB);
    assert_null(store);
    assert_non_null(strstr(err.msg, other));
    assert_non_null(strstr(err.msg, "readonly database"));
    store = s_open(other, STORE_OPEN_READONLY);
    assert_int_equal(du_int(store, "SELECT count(*) FROM t"), 0);
    stm_store_destroy(&store);
}

/* The tables store.h lists, every one of them stemma's. */
static const char *const s_tables[] = {"stemma_local",  "stemma_ids",    "stemma_pending",
                                       "stemma_mark",   "stemma_oplog",  "stemma_clock",
                                       "stemma_vector", "stemma_parked", "stemma_exclude"};
#define NTABLES (sizeof s_tables / sizeof s_tables[0])

static long long s_table_count(store_t *store)
{
    return du_int(store, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name "
                         "IN ('stemma_local', 'stemma_ids', 'stemma_pending', 'stemma_mark', "
                         "'stemma_oplog', 'stemma_clock', 'stemma_vector', 'stemma_parked', "
                         "'stemma_exclude')");
}

static void test_opening_changes_no_table_and_prepare_is_the_callers_transaction(void **state)
{
    fixture *f = *state;
    du_exec(f->path, "CREATE TABLE t (id INTEGER PRIMARY KEY)");
    store_t *store = s_open(f->path, STORE_OPEN_EXISTING);
    assert_false(stm_store_is_prepared(store));
    assert_int_equal(du_int(store, "SELECT count(*) FROM sqlite_schema"), 1);

    /* A dry run: prepared inside a transaction that is rolled back leaves nothing. */
    stm_error err = {0};
    assert_int_equal(stm_store_exec(store, "BEGIN", &err), STM_OK);
    assert_int_equal(stm_store_prepare(store, &err), STM_OK);
    assert_true(stm_store_is_prepared(store));
    assert_int_equal(s_table_count(store), NTABLES);
    assert_int_equal(stm_store_exec(store, "ROLLBACK", &err), STM_OK);
    assert_false(stm_store_is_prepared(store));
    assert_int_equal(du_int(store, "SELECT count(*) FROM sqlite_schema"), 1);

    assert_int_equal(stm_store_prepare(store, &err), STM_OK);
    stm_store_destroy(&store);
    store = s_open(f->path, STORE_OPEN_EXISTING);
    assert_true(stm_store_is_prepared(store));
    assert_int_equal(s_table_count(store), NTABLES);
    /* Nothing stemma adds but its own tables (and the application's stay). */
    assert_int_equal(du_int(store, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
                                   "AND name NOT LIKE 'stemma\\_%' ESCAPE '\\'"),
                     1);
    assert_int_equal(du_int(store, "SELECT format FROM stemma_local"), STORE_FORMAT);
    assert_int_equal(stm_store_check_format(store, &err), STM_OK);
    stm_store_destroy(&store);
}

static void test_prepare_twice_keeps_the_node_id_and_each_database_has_its_own(void **state)
{
    fixture *f = *state;
    store_t *store = s_prepared(f->path);
    stm_id first, again, zero = {{0}}, version;
    stm_error err = {0};
    assert_int_equal(stm_store_node_id(store, &first, &err), STM_OK);
    assert_false(stm_id_is_zero(&first));
    assert_int_equal(stm_store_version_id(store, &version, &err), STM_OK);
    assert_true(stm_id_equal(&version, &zero)); /* none before a migration */
    assert_int_equal(stm_store_prepare(store, &err), STM_OK);
    assert_int_equal(stm_store_node_id(store, &again, &err), STM_OK);
    assert_true(stm_id_equal(&first, &again));
    stm_store_destroy(&store);

    store = s_open(f->path, STORE_OPEN_EXISTING);
    assert_int_equal(stm_store_node_id(store, &again, &err), STM_OK);
    assert_true(stm_id_equal(&first, &again));
    stm_store_destroy(&store);

    char other[4300];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    store = s_prepared(other);
    assert_int_equal(stm_store_node_id(store, &again, &err), STM_OK);
    assert_false(stm_id_equal(&first, &again));
    stm_store_destroy(&store);
}

static void test_tables_in_another_format_are_refused_saying_what_to_do(void **state)
{
    fixture *f = *state;
    store_t *store = s_prepared(f->path);
    stm_error err = {0};
    /* Newer (a later stemma), the one before (format 2: no times in the capture
     * queue), older, and a row that is gone. */
    const char *const damage[] = {"UPDATE stemma_local SET format = format + 1",
                                  "UPDATE stemma_local SET format = 2",
                                  "UPDATE stemma_local SET format = 1", "DELETE FROM stemma_local"};
    const int shown[] = {STORE_FORMAT + 1, 2, 1, 0};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(stm_store_exec(store, damage[i], &err), STM_OK);
        char expect[64];
        snprintf(expect, sizeof expect, "in format %d, this stemma reads format %d", shown[i],
                 STORE_FORMAT);
        stm_error_clear(&err);
        assert_int_equal(stm_store_check_format(store, &err), STM_EINPUT);
        assert_non_null(strstr(err.msg, expect));
        assert_non_null(strstr(err.msg, f->path));
        assert_non_null(strstr(err.msg, "stemma_*"));
        stm_error_clear(&err);
        /* Preparing again must not take the tables as they are, nor rebuild them. */
        assert_int_equal(stm_store_prepare(store, &err), STM_EINPUT);
        assert_non_null(strstr(err.msg, expect));
        if (i == 0)
            assert_int_equal(
                stm_store_exec(store, "UPDATE stemma_local SET format = format - 1", &err), STM_OK);
    }
    assert_int_equal(du_int(store, "SELECT count(*) FROM stemma_local"), 0);
    stm_store_destroy(&store);
}

static void test_ids_of_a_database_not_set_up_or_damaged(void **state)
{
    fixture *f = *state;
    store_t *store = s_open(f->path, STORE_OPEN_CREATE);
    stm_id id;
    stm_error err = {0};
    assert_int_equal(stm_store_node_id(store, &id, &err), STM_EDB);
    assert_non_null(strstr(err.msg, "is this database set up for stemma?"));
    assert_int_equal(stm_store_prepare(store, &err), STM_OK);
    assert_int_equal(stm_store_exec(store, "UPDATE stemma_local SET node_id = x'0102'", &err),
                     STM_OK);
    assert_int_equal(stm_store_node_id(store, &id, &err), STM_ECORRUPT);
    assert_non_null(strstr(err.msg, "stemma_local.node_id"));
    stm_store_destroy(&store);
}

static void test_version_id_is_kept(void **state)
{
    fixture *f = *state;
    store_t *store = s_prepared(f->path);
    stm_id v = {{1, 2, 3}}, got;
    stm_error err = {0};
    assert_int_equal(stm_store_set_version_id(store, &v, &err), STM_OK);
    stm_store_destroy(&store);
    store = s_open(f->path, STORE_OPEN_READONLY);
    assert_int_equal(stm_store_version_id(store, &got, &err), STM_OK);
    assert_true(stm_id_equal(&v, &got));
    stm_store_destroy(&store);
}

/* origin's entry in stemma_vector, -1 when it has none. */
static long long s_vector_seq(store_t *store, const stm_id *origin)
{
    char hex[STM_ID_HEX_LEN + 1], sql[200];
    stm_id_to_hex(origin, hex);
    snprintf(sql, sizeof sql,
             "SELECT coalesce((SELECT seq FROM stemma_vector WHERE origin = x'%s'), -1)", hex);
    return du_int(store, sql);
}

/* A node's key becomes the database's id: the operations written under the old id
 * stay known (in the vector), and sequences go on from what is held of the new one. */
static void test_a_new_node_id_keeps_the_old_ones_operations_counted(void **state)
{
    fixture *f = *state;
    store_t *store = s_prepared(f->path);
    stm_id a, b = {{0xb}}, got;
    stm_error err = {0};
    assert_int_equal(stm_store_node_id(store, &a, &err), STM_OK);
    assert_int_equal(stm_store_exec(store, "UPDATE stemma_local SET seq = 5", &err), STM_OK);
    du_vector_set(store, &b, 7); /* b's operations, received back from a peer */

    assert_int_equal(stm_store_set_node_id(store, &b, &err), STM_OK);
    assert_int_equal(stm_store_node_id(store, &got, &err), STM_OK);
    assert_true(stm_id_equal(&got, &b));
    assert_int_equal(s_vector_seq(store, &a), 5);
    assert_int_equal(s_vector_seq(store, &b), -1); /* its own id is not a remote origin */
    assert_int_equal(du_int(store, "SELECT seq FROM stemma_local"), 7);

    /* Back again: a goes on from where it was, and b is counted. */
    assert_int_equal(stm_store_set_node_id(store, &a, &err), STM_OK);
    assert_int_equal(du_int(store, "SELECT seq FROM stemma_local"), 5);
    assert_int_equal(s_vector_seq(store, &b), 7);
    assert_int_equal(s_vector_seq(store, &a), -1);

    /* An id that wrote nothing leaves no entry. */
    stm_id c = {{0xc}};
    assert_int_equal(stm_store_set_node_id(store, &c, &err), STM_OK);
    assert_int_equal(du_int(store, "SELECT seq FROM stemma_local"), 0);
    assert_int_equal(stm_store_set_node_id(store, &b, &err), STM_OK);
    assert_int_equal(s_vector_seq(store, &c), -1);
    assert_int_equal(s_vector_seq(store, &a), 5);
    assert_int_equal(du_int(store, "SELECT seq FROM stemma_local"), 7);
    stm_store_destroy(&store);
}

static void test_ids_are_numbered_once_and_kept(void **state)
{
    fixture *f = *state;
    store_t *store = s_prepared(f->path);
    stm_id x = {{0x11}}, y = {{0x22}}, got;
    int64_t nx = -1, ny = -1, again = -1;
    stm_error err = {0};
    assert_int_equal(stm_store_id_number(store, &x, false, &nx, &err), STM_OK);
    assert_int_equal(nx, 0);
    assert_int_equal(du_int(store, "SELECT count(*) FROM stemma_ids"), 0);
    assert_int_equal(stm_store_id_number(store, &x, true, &nx, &err), STM_OK);
    assert_true(nx > 0);
    assert_int_equal(stm_store_id_number(store, &y, true, &ny, &err), STM_OK);
    assert_true(ny > 0);
    assert_int_not_equal(nx, ny);
    assert_int_equal(stm_store_id_number(store, &x, true, &again, &err), STM_OK);
    assert_int_equal(again, nx);
    assert_int_equal(du_int(store, "SELECT count(*) FROM stemma_ids"), 2);
    stm_store_destroy(&store);

    /* Another connection, nothing remembered: the file has them. */
    store = s_open(f->path, STORE_OPEN_EXISTING);
    assert_int_equal(stm_store_id_of(store, ny, &got, &err), STM_OK);
    assert_true(stm_id_equal(&got, &y));
    assert_int_equal(stm_store_id_number(store, &x, false, &again, &err), STM_OK);
    assert_int_equal(again, nx);
    assert_int_equal(stm_store_id_of(store, nx, &got, &err), STM_OK);
    assert_true(stm_id_equal(&got, &x));
    assert_int_equal(stm_store_id_of(store, 999, &got, &err), STM_ECORRUPT);
    assert_non_null(strstr(err.msg, "no id numbered 999"));
    stm_store_destroy(&store);
}

static void test_numbers_rolled_back_are_forgotten(void **state)
{
    fixture *f = *state;
    store_t *store = s_prepared(f->path);
    stm_id x = {{0x33}}, y = {{0x44}}, got;
    int64_t no = 0, again = -1;
    stm_error err = {0};
    assert_int_equal(stm_store_exec(store, "BEGIN", &err), STM_OK);
    assert_int_equal(stm_store_id_number(store, &x, true, &no, &err), STM_OK);
    assert_int_equal(stm_store_exec(store, "ROLLBACK", &err), STM_OK);
    stm_store_forget_ids(store);
    /* Without forgetting, x would still be given the number that was rolled back. */
    assert_int_equal(stm_store_id_number(store, &x, false, &again, &err), STM_OK);
    assert_int_equal(again, 0);
    /* The number may be given again, and then means only y. */
    int64_t ny = 0;
    assert_int_equal(stm_store_id_number(store, &y, true, &ny, &err), STM_OK);
    assert_int_equal(stm_store_id_of(store, ny, &got, &err), STM_OK);
    assert_true(stm_id_equal(&got, &y));
    assert_int_equal(stm_store_id_number(store, &x, true, &again, &err), STM_OK);
    assert_int_not_equal(again, ny);
    assert_int_equal(stm_store_id_of(store, again, &got, &err), STM_OK);
    assert_true(stm_id_equal(&got, &x));
    stm_store_destroy(&store);
}

/* One row change of origin `origin` writing t.v = v under key k. */
static void s_apply_row(applier_t *a, const stm_id *version, const stm_id *origin,
                        const char *k, int v)
{
    opbatch_t *b = stm_opbatch_new();
    op_t op;
    memset(&op, 0, sizeof op);
    op.origin = *origin;
    op.seq = 1;
    op.hlc = (uint64_t)(1700000000000 + v) << 16;
    op.version_id = *version;
    op.table = "t";
    op.pk = (op_value){.type = VALUE_TEXT, .bytes = k, .len = strlen(k)};
    op.column = "v";
    op.affinity = 'I';
    op.value = (op_value){.type = VALUE_INTEGER, .i = v};
    stm_opbatch_add(b, &op);
    apply_stats st = {0};
    stm_error err = {0};
    if (stm_applier_apply(a, b, &st, &err) != STM_OK)
        fail_msg("%s", err.msg);
    stm_opbatch_destroy(&b);
}

/* Copies database file from into to with SQLite's backup API (to: the same file as a
 * running program's, put back in place). */
static void s_backup(const char *from, const char *to)
{
    sqlite3 *src = NULL, *dst = NULL;
    assert_int_equal(sqlite3_open(from, &src), SQLITE_OK);
    assert_int_equal(sqlite3_open(to, &dst), SQLITE_OK);
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    assert_non_null(b);
    assert_int_equal(sqlite3_backup_step(b, -1), SQLITE_DONE);
    sqlite3_backup_finish(b);
    sqlite3_close(src);
    sqlite3_close(dst);
}

/* A backup put back in place under a program that keeps the database open renumbers
 * the ids that came after it: the numbers the store remembers are read again. */
static void test_ids_are_read_again_after_the_file_was_put_back(void **state)
{
    fixture *f = *state;
    store_t *store = du_setup(f->path, "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);", NULL);
    stm_error err = {0};
    stm_id version, x = {{0x11}}, y = {{0x22}}, z = {{0x33}}, got;
    assert_int_equal(stm_store_version_id(store, &version, &err), STM_OK);
    applier_t *a = stm_applier_new(store, NULL, NULL);
    s_apply_row(a, &version, &x, "x", 1);
    char backup[4300];
    snprintf(backup, sizeof backup, "%s.backup", f->path);
    s_backup(f->path, backup);
    s_apply_row(a, &version, &y, "y", 2); /* y gets the next number */
    int64_t ny = 0, nz = 0;
    assert_int_equal(stm_store_id_number(store, &y, false, &ny, &err), STM_OK);
    s_backup(backup, f->path); /* y and its number are gone from the file */
    s_apply_row(a, &version, &z, "z", 3); /* z takes y's number in the file */
    assert_int_equal(stm_store_id_number(store, &z, false, &nz, &err), STM_OK);
    assert_int_equal(nz, ny);
    assert_int_equal(stm_store_id_of(store, nz, &got, &err), STM_OK);
    assert_true(stm_id_equal(&got, &z));
    /* And what was recorded names z in the file, as the store says. */
    assert_int_equal(du_int(store, "SELECT count(*) FROM stemma_ids i JOIN stemma_oplog o "
                                   "ON o.origin = i.no WHERE o.pk = 'z' AND substr(hex(i.id), 1, "
                                   "2) = '33'"),
                     1);
    stm_applier_destroy(&a);
    stm_store_destroy(&store);
    unlink(backup);
}

static void test_exec_says_what_sqlite_refused(void **state)
{
    fixture *f = *state;
    store_t *store = s_open(f->path, STORE_OPEN_CREATE);
    stm_error err = {0};
    assert_int_equal(stm_store_exec(store, "SELECT * FROM nowhere", &err), STM_EDB);
    assert_int_equal(err.code, STM_EDB);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "no such table: nowhere"));
    /* A script stops at its first failure. */
    assert_int_equal(stm_store_exec(store,
                                    "CREATE TABLE a (x); INSERT INTO b VALUES (1); "
                                    "CREATE TABLE c (x)",
                                    &err),
                     STM_EDB);
    assert_non_null(strstr(err.msg, "no such table: b"));
    assert_int_equal(du_int(store, "SELECT count(*) FROM sqlite_schema WHERE name = 'a'"), 1);
    assert_int_equal(du_int(store, "SELECT count(*) FROM sqlite_schema WHERE name = 'c'"), 0);
    stm_store_destroy(&store);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_missing_file_is_not_created_unless_asked),
        T(test_open_sets_wal_normal_sync_and_the_busy_timeout),
        T(test_a_write_waits_for_the_application_to_let_go),
        T(test_a_file_that_is_not_a_database_is_refused_untouched),
        T(test_a_file_in_a_missing_directory_cannot_be_created),
        T(test_read_only_never_writes),
        T(test_a_read_only_file),
        T(test_opening_changes_no_table_and_prepare_is_the_callers_transaction),
        T(test_prepare_twice_keeps_the_node_id_and_each_database_has_its_own),
        T(test_tables_in_another_format_are_refused_saying_what_to_do),
        T(test_ids_of_a_database_not_set_up_or_damaged),
        T(test_version_id_is_kept),
        T(test_a_new_node_id_keeps_the_old_ones_operations_counted),
        T(test_ids_are_numbered_once_and_kept),
        T(test_numbers_rolled_back_are_forgotten),
        T(test_ids_are_read_again_after_the_file_was_put_back),
        T(test_exec_says_what_sqlite_refused),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
