/* Tests of sync/capture: every local change recorded as column-level operations by
 * triggers, whatever connection makes it. */
#include "dbutil.h"
#include "base/buf.h"
#include "sync/apply.h"
#include "sync/bundle.h"
#include "sync/capture.h"
#include "sync/vector.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SCHEMA =
    "CREATE TABLE items (id TEXT PRIMARY KEY, n INTEGER, r REAL, s TEXT, b BLOB);\n"
    "CREATE TABLE counters (id INTEGER PRIMARY KEY, hits INTEGER NOT NULL DEFAULT 0);\n"
    "CREATE TABLE log (line TEXT);\n" /* no primary key: not synced */
    "CREATE TABLE \"Odd Name\" (\"k\"\"ey\" TEXT PRIMARY KEY, \"va'l\" TEXT,"
    " twice INTEGER GENERATED ALWAYS AS (length(\"va'l\") * 2) VIRTUAL);\n";

typedef struct {
    char *dir;
    char path[4200];
    store_t *store;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    snprintf(f->path, sizeof f->path, "%s/app.db", f->dir);
    stm_id version = {{7}};
    f->store = du_setup(f->path, SCHEMA, &version);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stm_store_destroy(&f->store);
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static long long s_ops(fixture *f)
{
    return du_int(f->store, "SELECT count(*) FROM temp.ops");
}

static stm_err s_apply_batch(void *ctx, const opbatch_t *batch, stm_error *err)
{
    void **args = ctx;
    return stm_applier_apply(args[0], batch, args[1], err);
}

/* One write by the application, collected into operations before the next, as a
 * node does when it notices the write. */
static void s_write(fixture *f, const char *sql)
{
    du_exec(f->path, sql);
    du_ops(f->store);
}

static void test_insert_records_every_column_with_its_type(void **state)
{
    fixture *f = *state;
    du_exec(f->path, "INSERT INTO items VALUES ('a', 42, 1.5, 'text', x'00ff')");
    assert_int_equal(s_ops(f), 5);
    /* One clock for the row, sequences 1..5, types kept, version stamped. */
    assert_int_equal(du_int(f->store, "SELECT count(DISTINCT hlc) FROM temp.ops"), 1);
    assert_int_equal(du_int(f->store, "SELECT group_concat(seq, ',') = '1,2,3,4,5' FROM "
                                      "(SELECT seq FROM temp.ops ORDER BY seq)"),
                     1);
    assert_int_equal(du_int(f->store, "SELECT typeof(val) = 'integer' FROM temp.ops WHERE "
                                      "col = 'n'"),
                     1);
    assert_int_equal(du_int(f->store, "SELECT typeof(val) = 'real' AND val = 1.5 FROM "
                                      "temp.ops WHERE col = 'r'"),
                     1);
    assert_int_equal(du_int(f->store, "SELECT val = x'00ff' AND typeof(val) = 'blob' FROM "
                                      "temp.ops WHERE col = 'b'"),
                     1);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE pk = 'a' AND "
                                      "tbl = 'items' AND hex(version_id) = '07' || "
                                      "substr(hex(zeroblob(31)), 1)"),
                     5);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE col = 'n' AND "
                                      "aff = 'I'"),
                     1);
    assert_int_equal(du_int(f->store, "SELECT seq FROM stemma_local"), 5);
}

static void test_update_records_changed_columns_only(void **state)
{
    fixture *f = *state;
    s_write(f, "INSERT INTO items VALUES ('a', 1, 1.0, 'x', NULL)");
    s_write(f, "UPDATE items SET n = 2, s = 'y', r = 1.0 WHERE id = 'a'");
    assert_int_equal(s_ops(f), 7);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE seq > 5 AND "
                                      "col IN ('n', 's')"),
                     2);
    /* An update that changes nothing records nothing, and does not tick the clock. */
    long long hlc = du_int(f->store, "SELECT hlc FROM stemma_local");
    du_exec(f->path, "UPDATE items SET n = 2 WHERE id = 'a'");
    assert_int_equal(s_ops(f), 7);
    assert_int_equal(du_int(f->store, "SELECT hlc FROM stemma_local"), hlc);
    /* NULL to a value and back is a change both ways. */
    s_write(f, "UPDATE items SET b = x'01' WHERE id = 'a'");
    s_write(f, "UPDATE items SET b = NULL WHERE id = 'a'");
    assert_int_equal(s_ops(f), 9);
    assert_int_equal(du_int(f->store, "SELECT val IS NULL FROM temp.ops WHERE seq = 9"), 1);
}

static void test_key_change_is_delete_and_insert(void **state)
{
    fixture *f = *state;
    s_write(f, "INSERT INTO items VALUES ('a', 1, NULL, NULL, NULL)");
    s_write(f, "UPDATE items SET id = 'b' WHERE id = 'a'");
    assert_int_equal(s_ops(f), 5 + 1 + 5);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE seq = 6 AND "
                                      "pk = 'a' AND col IS NULL"),
                     1);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE seq > 6 AND "
                                      "pk = 'b'"),
                     5);
    assert_int_equal(du_int(f->store, "SELECT max(seq) FROM temp.ops"), 11);
}

static void test_delete_records_one_row_delete(void **state)
{
    fixture *f = *state;
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (3), (4)");
    assert_int_equal(s_ops(f), 4);
    /* The rowid SQLite assigned is the key recorded. */
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE pk = 2 AND "
                                      "typeof(pk) = 'integer'"),
                     2);
    du_exec(f->path, "DELETE FROM counters");
    assert_int_equal(s_ops(f), 6);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE col IS NULL AND "
                                      "val IS NULL AND aff IS NULL"),
                     2);
    /* Each row of a multi-row statement ticks the clock. */
    assert_int_equal(du_int(f->store, "SELECT count(DISTINCT hlc) FROM temp.ops"), 4);
}

static void test_clock_never_goes_back(void **state)
{
    fixture *f = *state;
    /* As if the wall clock had been an hour ahead and then was set right. */
    long long ahead = du_int(f->store, "SELECT (CAST((julianday('now') - 2440587.5) * 86400000 "
                                       "AS INTEGER) + 3600000) << 16");
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE stemma_local SET hlc = %lld", ahead);
    du_exec(f->path, sql);
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (1)");
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (2)");
    assert_int_equal(du_int(f->store, "SELECT min(hlc) FROM temp.ops"), ahead + 1);
    assert_int_equal(du_int(f->store, "SELECT max(hlc) FROM temp.ops"), ahead + 2);
    /* Normally it follows the wall clock in milliseconds. */
    du_exec(f->path, "UPDATE stemma_local SET hlc = 0");
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (3)");
    long long ms = du_int(f->store, "SELECT max(hlc) >> 16 FROM temp.ops WHERE seq > 4");
    long long now = du_int(f->store, "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS "
                                     "INTEGER)");
    /* stemma reads the wall clock in C; SQLite's julianday('now') may round a
     * millisecond down. */
    assert_true(ms <= now + 1 && ms > now - 60000);
}

static void test_rollback_takes_the_operations_with_it(void **state)
{
    fixture *f = *state;
    du_exec(f->path, "BEGIN; INSERT INTO counters (hits) VALUES (1); ROLLBACK;");
    assert_int_equal(s_ops(f), 0);
    assert_int_equal(du_int(f->store, "SELECT seq FROM stemma_local"), 0);
}

static void test_applying_flag_turns_capture_off(void **state)
{
    fixture *f = *state;
    du_exec(f->path, "BEGIN; UPDATE stemma_local SET applying = 1;"
                     " INSERT INTO items (id, n) VALUES ('x', 1); UPDATE items SET n = 2;"
                     " UPDATE stemma_local SET applying = 0; COMMIT;");
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_pending"), 0);
    assert_int_equal(s_ops(f), 0);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM items"), 1);
}

static void test_inserts_above_the_mark_are_found_not_queued(void **state)
{
    fixture *f = *state;
    /* counters has an integer key: new rows above its mark are not queued ... */
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (1), (2)");
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_pending"), 0);
    /* ... and collecting finds them, then raises the mark to the greatest key. */
    assert_int_equal(s_ops(f), 4);
    assert_int_equal(du_int(f->store, "SELECT mark FROM stemma_mark WHERE tbl = 'counters'"), 2);
    /* The mark follows the greatest key down after a delete (the key SQLite reuses is
     * above it again); a key at or below the mark is queued. */
    s_write(f, "DELETE FROM counters WHERE id = 2");
    assert_int_equal(du_int(f->store, "SELECT mark FROM stemma_mark WHERE tbl = 'counters'"), 1);
    du_exec(f->path, "INSERT INTO counters (id, hits) VALUES (2, 20), (-5, 7)");
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_pending"), 1);
    assert_int_equal(s_ops(f), 4 + 1 + 4);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE pk = -5"), 2);
    /* Rows stemma writes itself (a migration's here) are not the application's. */
    du_migrate(f->store, "INSERT INTO counters (id, hits) VALUES (100, 1);");
    assert_int_equal(s_ops(f), 9);
    assert_int_equal(du_int(f->store, "SELECT mark FROM stemma_mark WHERE tbl = 'counters'"),
                     100);
    /* The application's rows written before a migration are collected by it first. */
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (5)");
    du_migrate(f->store, "INSERT INTO counters (id, hits) VALUES (200, 1);");
    assert_int_equal(s_ops(f), 11);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE pk = 101"), 2);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE pk = 200"), 0);
}

static void test_a_key_inserted_deleted_and_inserted_again_between_two_looks(void **state)
{
    fixture *f = *state;
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (1)");
    assert_int_equal(s_ops(f), 2); /* mark 1 */
    /* Row 2 above the mark (not queued), deleted (queued), and row 2 again: SQLite
     * reuses the key, above the mark, so the second insert is not queued either. */
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (20); DELETE FROM counters WHERE id = 2;"
                     "INSERT INTO counters (hits) VALUES (30)");
    assert_int_equal(du_int(f->store, "SELECT id FROM counters WHERE hits = 30"), 2);
    /* The delete, then the row as it is now, whole: nothing of it is lost. */
    assert_int_equal(s_ops(f), 2 + 1 + 2);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE pk = 2 AND "
                                      "col = 'hits' AND val = 30"),
                     1);
    assert_int_equal(du_int(f->store, "SELECT max(seq) FROM temp.ops WHERE pk = 2 AND col IS NULL") <
                         du_int(f->store, "SELECT min(seq) FROM temp.ops WHERE pk = 2 AND col IS "
                                          "NOT NULL"),
                     1);
}

static void test_a_new_spelling_under_a_case_blind_collation_is_a_change(void **state)
{
    fixture *f = *state;
    du_exec(f->path, "CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT COLLATE NOCASE)");
    stm_error err = {0};
    assert_int_equal(stm_capture_install(f->store, &err), STM_OK);
    s_write(f, "INSERT INTO people VALUES ('p1', 'Bob')");
    s_write(f, "UPDATE people SET name = 'bob' WHERE id = 'p1'");
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE col = 'name' AND "
                                      "val = 'bob' COLLATE BINARY"),
                     1);
}

static void test_what_is_not_captured(void **state)
{
    fixture *f = *state;
    du_exec(f->path, "INSERT INTO log VALUES ('no key, not synced')");
    assert_int_equal(s_ops(f), 0);
    /* Quoted names work; the generated column is not recorded. */
    du_exec(f->path, "INSERT INTO \"Odd Name\" VALUES ('k1', 'v''1')");
    assert_int_equal(s_ops(f), 2);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE tbl = 'Odd Name' "
                                      "AND col IN ('k\"ey', 'va''l')"),
                     2);
}

static void test_a_composite_key_is_captured_unless_excluded(void **state)
{
    fixture *f = *state;
    stm_error err = {0};
    du_exec(f->path, "CREATE TABLE pairs (a TEXT, b TEXT, v TEXT, PRIMARY KEY (a, b))");
    assert_int_equal(stm_capture_install(f->store, &err), STM_OK);
    du_exec(f->path, "INSERT INTO pairs VALUES ('x', 'y', 'z')");
    assert_int_equal(s_ops(f), 3);
    assert_int_equal(stm_capture_exclude(f->store, "PAIRS", true, &err), STM_OK);
    assert_int_equal(stm_capture_install(f->store, &err), STM_OK);
    du_exec(f->path, "INSERT INTO pairs VALUES ('x', 'z', 'z')");
    assert_int_equal(s_ops(f), 3);
    /* Other tables are still captured after the reinstall. */
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (1)");
    assert_int_equal(s_ops(f), 5);
}

/* An integer key's inserts are found above its mark, not by a trigger: excluding the
 * table takes the mark away too, and including it again brings it back. */
static void test_an_excluded_table_is_not_found_above_its_mark(void **state)
{
    fixture *f = *state;
    stm_error err = {0};
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (1)");
    assert_int_equal(s_ops(f), 2);
    assert_int_equal(stm_capture_exclude(f->store, "counters", true, &err), STM_OK);
    assert_int_equal(stm_capture_install(f->store, &err), STM_OK);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_mark WHERE tbl = 'counters'"),
                     0);
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (2)");
    assert_int_equal(s_ops(f), 2);
    assert_int_equal(stm_capture_exclude(f->store, "counters", false, &err), STM_OK);
    assert_int_equal(stm_capture_install(f->store, &err), STM_OK);
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (3)");
    assert_int_equal(s_ops(f), 4); /* row 3 only: row 2 was written while excluded */
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE pk = 2"), 0);
}

static void test_drop_column_works_without_triggers(void **state)
{
    fixture *f = *state;
    /* With the triggers on, SQLite refuses to drop a column they name. */
    stm_error err = {0};
    assert_int_not_equal(stm_store_exec(f->store, "ALTER TABLE items DROP COLUMN s", &err), STM_OK);
    du_migrate(f->store, "ALTER TABLE items DROP COLUMN s;");
    du_exec(f->path, "INSERT INTO items VALUES ('a', 1, 2.0, x'01')");
    assert_int_equal(s_ops(f), 4);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE col = 's'"), 0);
}

static void test_changes_between_two_looks_fold_into_one(void **state)
{
    fixture *f = *state;
    /* Queued, not yet operations. */
    du_exec(f->path, "INSERT INTO items VALUES ('a', 1, NULL, 'first', NULL);"
                     "UPDATE items SET n = 2, s = 'second' WHERE id = 'a';"
                     "INSERT INTO items VALUES ('gone', 5, NULL, NULL, NULL);"
                     "DELETE FROM items WHERE id = 'gone';");
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_pending"), 4);
    /* 'a': one insert with the values it has now; 'gone': its delete only. */
    assert_int_equal(s_ops(f), 5 + 1);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_pending"), 0);
    assert_int_equal(du_int(f->store, "SELECT val = 2 FROM temp.ops WHERE pk = 'a' AND col = 'n'"),
                     1);
    assert_int_equal(du_int(f->store, "SELECT val = 'second' FROM temp.ops WHERE pk = 'a' AND "
                                      "col = 's'"),
                     1);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE pk = 'gone' AND "
                                      "col IS NULL"),
                     1);
    /* The insert began first, so it has the earlier clock and sequences. */
    assert_int_equal(du_int(f->store, "SELECT max(seq) FROM temp.ops WHERE pk = 'a'"), 5);
    /* Deleted and inserted again before a look: the delete, then every column. */
    s_write(f, "DELETE FROM items WHERE id = 'a'; INSERT INTO items VALUES ('a', 9, NULL, NULL, "
               "NULL)");
    assert_int_equal(s_ops(f), 6 + 1 + 5);
    assert_int_equal(du_int(f->store, "SELECT count(DISTINCT hlc) FROM temp.ops WHERE seq > 6"),
                     2);
}

static void test_a_wide_table_records_the_column_that_changed(void **state)
{
    fixture *f = *state;
    /* More columns than an integer mask holds: the trigger queues a text mask. */
    buf_t sql = BUF_INIT;
    stm_buf_puts(&sql, "CREATE TABLE wide (id INTEGER PRIMARY KEY");
    for (int i = 1; i <= 70; i++)
        stm_buf_printf(&sql, ", c%d INTEGER", i);
    stm_buf_puts(&sql, ")");
    du_migrate(f->store, stm_buf_str(&sql));
    stm_buf_free(&sql);
    s_write(f, "INSERT INTO wide (id) VALUES (1)");
    assert_int_equal(s_ops(f), 71);
    s_write(f, "UPDATE wide SET c65 = 65, c2 = 2 WHERE id = 1");
    assert_int_equal(s_ops(f), 73);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE seq > 71 AND "
                                      "col IN ('c2', 'c65')"),
                     2);
    assert_int_equal(du_int(f->store, "SELECT val FROM temp.ops WHERE col = 'c65' AND seq > 71"),
                     65);
}

/* SQLite's wall clock in milliseconds, as the triggers read it. */
static const char *const NOW_MS =
    "CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER)";

static long long s_now_ms(fixture *f)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT %s", NOW_MS);
    return du_int(f->store, sql);
}

static void test_a_change_takes_the_time_it_was_made(void **state)
{
    fixture *f = *state;
    long long before = s_now_ms(f);
    du_exec(f->path, "INSERT INTO items (id, n) VALUES ('a', 1)");
    long long at = du_int(f->store, "SELECT at FROM stemma_pending");
    assert_true(at >= before && at <= s_now_ms(f));
    /* As if the application had written it five seconds before stemma looked. */
    du_exec(f->path, "UPDATE stemma_pending SET at = at - 5000");
    assert_int_equal(s_ops(f), 5);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM temp.ops WHERE hlc = %lld << 16", at - 5000);
    assert_int_equal(du_int(f->store, sql), 5);
    /* A time after the collection (a clock set back since) counts as the collection's. */
    long long collected_before = s_now_ms(f);
    du_exec(f->path, "UPDATE items SET n = 2 WHERE id = 'a';"
                     "UPDATE stemma_pending SET at = at + 3600000");
    du_ops(f->store);
    long long ms = du_int(f->store, "SELECT hlc >> 16 FROM temp.ops WHERE seq = 6");
    assert_true(ms >= collected_before && ms <= s_now_ms(f));
}

static void test_folded_changes_take_the_time_of_the_last(void **state)
{
    fixture *f = *state;
    du_exec(f->path, "INSERT INTO items (id, n) VALUES ('a', 1);"
                     "UPDATE items SET n = 2 WHERE id = 'a';"
                     "UPDATE stemma_pending SET at = at - 9000 WHERE id = (SELECT min(id) FROM "
                     "stemma_pending);"
                     "UPDATE stemma_pending SET at = at - 4000 WHERE id = (SELECT max(id) FROM "
                     "stemma_pending);");
    long long last = du_int(f->store, "SELECT at FROM stemma_pending ORDER BY id DESC LIMIT 1");
    assert_int_equal(s_ops(f), 5);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM temp.ops WHERE hlc >> 16 = %lld", last);
    assert_int_equal(du_int(f->store, sql), 5);
}

static void test_inserts_above_the_mark_take_the_time_of_the_first(void **state)
{
    fixture *f = *state;
    assert_int_equal(du_int(f->store, "SELECT at IS NULL FROM stemma_mark"), 1);
    long long before = s_now_ms(f);
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (1)");
    long long first = du_int(f->store, "SELECT at FROM stemma_mark");
    assert_true(first >= before && first <= s_now_ms(f));
    /* As if it had been made a minute ago: later inserts leave the time alone. */
    du_exec(f->path, "UPDATE stemma_mark SET at = at - 60000");
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (2), (3)");
    assert_int_equal(du_int(f->store, "SELECT at FROM stemma_mark"), first - 60000);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_pending"), 0);
    /* Each row change one tick on from the first insert's time. */
    assert_int_equal(s_ops(f), 6);
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT count(DISTINCT hlc) = 3 AND min(hlc) = %lld << 16 AND max(hlc) = min(hlc) + 2"
             " FROM temp.ops",
             first - 60000);
    assert_int_equal(du_int(f->store, sql), 1);
    /* Collecting looked at them: the next first insert records its own time. */
    assert_int_equal(du_int(f->store, "SELECT at IS NULL FROM stemma_mark"), 1);
    /* The clock stays ahead of what it has seen: a clock an hour ahead goes on by one. */
    long long ahead = (s_now_ms(f) + 3600000) << 16;
    snprintf(sql, sizeof sql, "UPDATE stemma_local SET hlc = %lld", ahead);
    du_exec(f->path, sql);
    du_exec(f->path, "INSERT INTO counters (hits) VALUES (4), (5)");
    du_ops(f->store);
    snprintf(sql, sizeof sql,
             "SELECT min(hlc) = %lld + 1 AND max(hlc) = %lld + 2 FROM temp.ops WHERE pk >= 4",
             ahead, ahead);
    assert_int_equal(du_int(f->store, sql), 1);
}

/* dst applies what src holds that dst lacks, through a bundle. */
static void s_send(const char *dir, store_t *src, store_t *dst)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/send.bundle", dir);
    stm_error err = {0};
    vector_t *since = NULL;
    bundle_info info;
    if (stm_vector_read(dst, &since, &err) != STM_OK ||
        stm_bundle_write(src, since, path, &info, &err) != STM_OK)
        fail_msg("%s", err.msg);
    stm_vector_destroy(&since);
    applier_t *applier = stm_applier_new(dst, NULL, NULL);
    apply_stats st = {0};
    void *args[2] = {applier, &st};
    if (stm_bundle_read(path, s_apply_batch, args, &info, &err) != STM_OK)
        fail_msg("%s", err.msg);
    stm_applier_destroy(&applier);
    remove(path);
}

static void test_the_later_write_wins_whichever_is_collected_first(void **state)
{
    fixture *f = *state;
    char other[4300];
    snprintf(other, sizeof other, "%s/b.db", f->dir);
    stm_id version = {{7}};
    store_t *b = du_setup(other, SCHEMA, &version);
    /* A row both hold, written a minute ago. */
    du_exec(f->path, "INSERT INTO items (id, s) VALUES ('x', 'old');"
                     "UPDATE stemma_pending SET at = at - 60000");
    du_ops(f->store);
    s_send(f->dir, f->store, b);
    /* A writes the cell two seconds before B does; B's write is collected first. */
    du_exec(f->path, "UPDATE items SET s = 'A' WHERE id = 'x';"
                     "UPDATE stemma_pending SET at = at - 2000");
    du_exec(other, "UPDATE items SET s = 'B' WHERE id = 'x'");
    du_ops(b);
    s_send(f->dir, b, f->store); /* collects A's write first, then applies B's */
    s_send(f->dir, f->store, b);
    assert_int_equal(du_int(f->store, "SELECT s = 'B' FROM items WHERE id = 'x'"), 1);
    assert_int_equal(du_int(b, "SELECT s = 'B' FROM items WHERE id = 'x'"), 1);
    stm_store_destroy(&b);
}

/* A bulk write is collected a slice at a time (stm_applier_collect_slice), each slice a
 * transaction of its own of at most the rows asked, the rows above the mark in key
 * order first, then the queue; what the application writes between slices (a row
 * already collected, one still above the mark, a new one) is collected too, and in the
 * end every cell's latest operation holds the table's value. */
static void test_a_bulk_write_is_collected_in_slices(void **state)
{
    fixture *f = *state;
    du_exec(f->path, "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 5000)"
                     " INSERT INTO counters (id, hits) SELECT i, i FROM k;"
                     "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 3000)"
                     " INSERT INTO items (id, n) SELECT 'i' || i, i FROM k;");
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_pending"), 3000);
    applier_t *a = stm_applier_new(f->store, NULL, NULL);
    stm_error err = {0};
    bool more = true;
    int slices = 0;
    long long rows = 0;
    while (more) {
        if (stm_applier_collect_slice(a, 1000, &more, &err) != STM_OK)
            fail_msg("%s", err.msg);
        long long now = du_int(f->store, "SELECT count(*) FROM stemma_oplog");
        assert_true(now - rows <= 1000);
        rows = now;
        if (++slices == 2) {
            /* Between slices: a row collected already, one still above the mark, a new
             * one above every key, an item queued behind the rest. */
            du_exec(f->path, "UPDATE counters SET hits = -10 WHERE id = 10;"
                             "UPDATE counters SET hits = -4500 WHERE id = 4500;"
                             "INSERT INTO counters (id, hits) VALUES (100000, 1);"
                             "UPDATE items SET n = -1 WHERE id = 'i1';");
        }
    }
    stm_applier_destroy(&a);
    assert_true(slices >= 9);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_pending"), 0);
    assert_int_equal(du_int(f->store, "SELECT mark FROM stemma_mark WHERE tbl = 'counters'"),
                     100000);
    /* Every cell's latest operation is the table's value. */
    du_ops(f->store);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM counters"), 5001);
    assert_int_equal(
        du_int(f->store, "SELECT count(*) FROM counters AS c WHERE c.hits IS NOT (SELECT val "
                         "FROM temp.ops AS o WHERE o.tbl = 'counters' AND o.pk = c.id AND "
                         "o.col = 'hits' ORDER BY hlc DESC LIMIT 1)"),
        0);
    assert_int_equal(
        du_int(f->store, "SELECT count(*) FROM items AS i WHERE i.n IS NOT (SELECT val FROM "
                         "temp.ops AS o WHERE o.tbl = 'items' AND o.pk = i.id AND o.col = 'n' "
                         "ORDER BY hlc DESC LIMIT 1)"),
        0);
}

static void test_affinity_codes(void **state)
{
    (void)state;
    assert_int_equal(stm_capture_affinity_code(AFFINITY_TEXT), 'T');
    assert_int_equal(stm_capture_affinity_code(AFFINITY_NUMERIC), 'N');
    assert_int_equal(stm_capture_affinity_code(AFFINITY_INTEGER), 'I');
    assert_int_equal(stm_capture_affinity_code(AFFINITY_REAL), 'R');
    assert_int_equal(stm_capture_affinity_code(AFFINITY_BLOB), 'B');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_insert_records_every_column_with_its_type, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_update_records_changed_columns_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_change_is_delete_and_insert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_records_one_row_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_never_goes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_takes_the_operations_with_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_applying_flag_turns_capture_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inserts_above_the_mark_are_found_not_queued, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_what_is_not_captured, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_key_inserted_deleted_and_inserted_again_between_two_looks, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_new_spelling_under_a_case_blind_collation_is_a_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_composite_key_is_captured_unless_excluded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_excluded_table_is_not_found_above_its_mark, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_drop_column_works_without_triggers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_between_two_looks_fold_into_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_wide_table_records_the_column_that_changed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_change_takes_the_time_it_was_made, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folded_changes_take_the_time_of_the_last, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_inserts_above_the_mark_take_the_time_of_the_first,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_later_write_wins_whichever_is_collected_first,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_bulk_write_is_collected_in_slices, setup, teardown),
        cmocka_unit_test(test_affinity_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
