/* Tests of sync/stmtcache: fixed statements prepared once and lent clean, keyed
 * statements found again (past the table's growth), statements kept by their SQL,
 * refusals that keep nothing, and a connection that closes after the cache goes. */
#include "sync/stmtcache.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { Q_ECHO, Q_COUNT_T, Q_BROKEN, Q_N };

static const char *const s_sql[Q_N] = {
    [Q_ECHO] = "SELECT ?1",
    [Q_COUNT_T] = "SELECT count(*) FROM t",
    [Q_BROKEN] = "SELECT FROM nowhere",
};

static int setup(void **state)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);", NULL, NULL, NULL),
        SQLITE_OK);
    *state = db;
    return 0;
}

static int teardown(void **state)
{
    /* Invariant 3: with the cache gone, nothing keeps the connection open. */
    assert_int_equal(sqlite3_close(*state), SQLITE_OK);
    return 0;
}

static void test_fixed_statements_are_prepared_once_and_lent_clean(void **state)
{
    sqlite3 *db = *state;
    stmtcache_t *c = stm_stmtcache_new(db, s_sql, Q_N);
    assert_int_equal(stm_stmtcache_count(c), 0);
    sqlite3_stmt *echo = stm_stmtcache_fixed(c, Q_ECHO);
    assert_non_null(echo);
    sqlite3_bind_int(echo, 1, 42);
    assert_int_equal(sqlite3_step(echo), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(echo, 0), 42);
    /* Left mid-row and bound: the next user gets it reset, with no bindings. */
    assert_ptr_equal(stm_stmtcache_fixed(c, Q_ECHO), echo);
    assert_int_equal(sqlite3_step(echo), SQLITE_ROW);
    assert_int_equal(sqlite3_column_type(echo, 0), SQLITE_NULL);
    sqlite3_stmt *count = stm_stmtcache_fixed(c, Q_COUNT_T);
    assert_int_equal(sqlite3_step(count), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(count, 0), 2);
    assert_int_equal(stm_stmtcache_count(c), 2);
    /* SQLite's refusal keeps nothing and says why. */
    assert_null(stm_stmtcache_fixed(c, Q_BROKEN));
    assert_non_null(strstr(sqlite3_errmsg(db), "syntax error"));
    assert_int_equal(stm_stmtcache_count(c), 2);
    stm_stmtcache_destroy(&c);
    assert_null(c);
    stm_stmtcache_destroy(&c); /* safe twice */
}

static void test_keyed_statements_are_found_again(void **state)
{
    sqlite3 *db = *state;
    stmtcache_t *c = stm_stmtcache_new(db, NULL, 0);
    int owners[2];
    assert_null(stm_stmtcache_get(c, &owners[0], 1, 0x5));
    sqlite3_stmt *a = stm_stmtcache_add(c, &owners[0], 1, 0x5, "SELECT 'a', ?1");
    assert_non_null(a);
    sqlite3_bind_int(a, 1, 7);
    assert_int_equal(sqlite3_step(a), SQLITE_ROW);
    assert_ptr_equal(stm_stmtcache_get(c, &owners[0], 1, 0x5), a);
    assert_int_equal(sqlite3_step(a), SQLITE_ROW);
    assert_int_equal(sqlite3_column_type(a, 1), SQLITE_NULL); /* unbound again */
    /* Each part of the key counts. */
    assert_null(stm_stmtcache_get(c, &owners[1], 1, 0x5));
    assert_null(stm_stmtcache_get(c, &owners[0], 2, 0x5));
    assert_null(stm_stmtcache_get(c, &owners[0], 1, 0x4));
    /* Enough keys to grow the table several times: every one is found again. */
    sqlite3_stmt *stmts[300];
    for (int i = 0; i < 300; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT %d", i);
        stmts[i] = stm_stmtcache_add(c, &owners[1], i % 5, (uint64_t)i, sql);
        assert_non_null(stmts[i]);
    }
    for (int i = 0; i < 300; i++) {
        sqlite3_stmt *s = stm_stmtcache_get(c, &owners[1], i % 5, (uint64_t)i);
        assert_ptr_equal(s, stmts[i]);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(s, 0), i);
    }
    assert_ptr_equal(stm_stmtcache_get(c, &owners[0], 1, 0x5), a);
    assert_int_equal(stm_stmtcache_count(c), 301);
    /* A refusal keeps nothing under the key. */
    assert_null(stm_stmtcache_add(c, &owners[0], 9, 0, "SELECT FROM"));
    assert_null(stm_stmtcache_get(c, &owners[0], 9, 0));
    assert_int_equal(stm_stmtcache_count(c), 301);
    /* Cleared (invariant 2: the owners' objects are about to go): no key names
     * anything, and nothing is left prepared. */
    stm_stmtcache_clear(c);
    assert_int_equal(stm_stmtcache_count(c), 0);
    assert_null(stm_stmtcache_get(c, &owners[0], 1, 0x5));
    assert_null(sqlite3_next_stmt(db, NULL));
    /* ... and the cache works as before. */
    assert_non_null(stm_stmtcache_add(c, &owners[0], 1, 0x5, "SELECT 1"));
    stm_stmtcache_destroy(&c);
}

static void test_statements_kept_by_their_sql(void **state)
{
    sqlite3 *db = *state;
    stmtcache_t *c = stm_stmtcache_new(db, s_sql, Q_N);
    sqlite3_stmt *one = stm_stmtcache_sql(c, "SELECT count(*) FROM t WHERE x = ?1");
    assert_non_null(one);
    sqlite3_bind_int(one, 1, 2);
    assert_int_equal(sqlite3_step(one), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(one, 0), 1);
    /* The same text: the same statement, clean; another text: another. */
    char same[64];
    snprintf(same, sizeof same, "%s", "SELECT count(*) FROM t WHERE x = ?1");
    assert_ptr_equal(stm_stmtcache_sql(c, same), one);
    assert_int_equal(sqlite3_step(one), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(one, 0), 0); /* x = NULL matches nothing */
    sqlite3_stmt *two = stm_stmtcache_sql(c, "SELECT count(*) FROM t");
    assert_non_null(two);
    assert_ptr_not_equal(two, one);
    assert_null(stm_stmtcache_sql(c, "SELECT FROM"));
    assert_int_equal(stm_stmtcache_count(c), 2);
    /* Every sort at once, all finalized by destroy (teardown closes the connection). */
    assert_non_null(stm_stmtcache_fixed(c, Q_ECHO));
    assert_non_null(stm_stmtcache_add(c, c, 0, 1, "SELECT 1"));
    assert_int_equal(stm_stmtcache_count(c), 4);
    stm_stmtcache_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fixed_statements_are_prepared_once_and_lent_clean,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyed_statements_are_found_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statements_kept_by_their_sql, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
