/* Tests of sync/op: a batch owns copies of what is added to it, however many operations
 * and however big their values; clocks compared; values compared bitwise; every value
 * type through SQLite and back with its type. */
#include "sync/op.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codecutil.h"

static void test_op_batch_owns_copies(void **state)
{
    (void)state;
    opbatch_t *b = stm_opbatch_new();
    assert_int_equal(stm_opbatch_count(b), 0);
    assert_int_equal(stm_opbatch_bytes(b), 0);
    char table[] = "tasks", column[] = "title", text[] = "hello", key[] = "k1";
    op_t op = cu_op(1, 1, table, cu_text(key, 2), column, 'T', cu_text(text, 5));
    stm_opbatch_add(b, &op);
    const op_t *first = stm_opbatch_at(b, 0);
    const char *first_table = first->table;
    const void *first_text = first->value.bytes;
    /* Changing what was added changes nothing in the batch. */
    memset(table, 'x', 5);
    memset(column, 'x', 5);
    memset(text, 'x', 5);
    memset(key, 'x', 2);
    /* Many more operations (and big values) never move what the first points to. */
    char *big = calloc(1, 100000); /* bigger than an arena block */
    for (uint64_t i = 2; i < 3000; i++) {
        op_t more =
            cu_op(2, i, "t", cu_int((int64_t)i), "c", 'B', cu_blob(big, i % 50 ? 3 : 100000));
        stm_opbatch_add(b, &more);
    }
    free(big);
    first = stm_opbatch_at(b, 0);
    assert_ptr_equal(first->table, first_table);
    assert_ptr_equal(first->value.bytes, first_text);
    assert_string_equal(first->table, "tasks");
    assert_string_equal(first->column, "title");
    assert_memory_equal(first->value.bytes, "hello", 5);
    assert_memory_equal(first->pk.bytes, "k1", 2);
    assert_int_equal(stm_opbatch_count(b), 2999);
    assert_true(stm_opbatch_bytes(b) > 59 * 100000);
    /* Cleared, the batch is empty and usable again. */
    stm_opbatch_clear(b);
    assert_int_equal(stm_opbatch_count(b), 0);
    assert_int_equal(stm_opbatch_bytes(b), 0);
    op_t del = cu_op(3, 7, "t", cu_int(5), NULL, 0, cu_null());
    stm_opbatch_add(b, &del);
    assert_int_equal(stm_opbatch_count(b), 1);
    assert_true(stm_op_is_delete(stm_opbatch_at(b, 0)));
    assert_null(stm_opbatch_at(b, 0)->column);
    assert_false(stm_op_is_delete(&op));
    /* Empty text and blobs copy as empty values, not as NULL. */
    op_t empty = cu_op(3, 8, "t", cu_blob(NULL, 0), "c", 'T', cu_text("", 0));
    stm_opbatch_add(b, &empty);
    assert_int_equal(stm_opbatch_at(b, 1)->value.type, VALUE_TEXT);
    assert_int_equal(stm_opbatch_at(b, 1)->value.len, 0);
    assert_int_equal(stm_opbatch_at(b, 1)->pk.type, VALUE_BLOB);
    stm_opbatch_destroy(&b);
    assert_null(b);
    stm_opbatch_destroy(&b); /* safe twice */
}

static void test_op_clock_compare(void **state)
{
    (void)state;
    stm_id a = cu_id(1), b = cu_id(2);
    assert_true(stm_op_clock_compare(1, &b, 2, &a) < 0);
    assert_true(stm_op_clock_compare(2, &a, 1, &b) > 0);
    assert_true(stm_op_clock_compare(5, &a, 5, &b) < 0); /* same clock: origin bytes decide */
    assert_true(stm_op_clock_compare(5, &b, 5, &a) > 0);
    assert_int_equal(stm_op_clock_compare(5, &a, 5, &a), 0);
    assert_true(stm_op_clock_compare(UINT64_MAX, &a, 0, &b) > 0);
}

static void test_op_value_equal(void **state)
{
    (void)state;
    op_value a, b;
    a = cu_int(1), b = cu_real(1.0);
    assert_false(stm_op_value_equal(&a, &b)); /* types differ */
    a = cu_text("ab", 2), b = cu_blob("ab", 2);
    assert_false(stm_op_value_equal(&a, &b));
    b = cu_text("abc", 2);
    assert_true(stm_op_value_equal(&a, &b));
    b = cu_text("ab", 1);
    assert_false(stm_op_value_equal(&a, &b));
    a = cu_real(0.0), b = cu_real(-0.0);
    assert_false(stm_op_value_equal(&a, &b)); /* bitwise: a -0.0 written is kept */
    a = cu_real(NAN), b = cu_real(NAN);
    assert_true(stm_op_value_equal(&a, &b));
    a = cu_null(), b = cu_null();
    assert_true(stm_op_value_equal(&a, &b));
    a = cu_blob(NULL, 0), b = cu_blob("", 0);
    assert_true(stm_op_value_equal(&a, &b));
    a = cu_int(INT64_MIN), b = cu_int(INT64_MAX);
    assert_false(stm_op_value_equal(&a, &b));
}

/* Every value type through SQLite and back, keeping its type. */
static void test_op_value_bind_and_column(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT ?1, typeof(?1)", -1, &stmt, NULL), SQLITE_OK);
    const char nul_text[] = "a\0b";
    const unsigned char blob[] = {0, 1, 0, 255};
    const struct {
        op_value v;
        const char *sql_type;
    } cases[] = {
        {cu_null(), "null"},
        {cu_int(0), "integer"},
        {cu_int(INT64_MIN), "integer"},
        {cu_int(INT64_MAX), "integer"},
        {cu_real(-2.5), "real"},
        {cu_real(1e308), "real"},
        {cu_text("héllo", strlen("héllo")), "text"},
        {cu_text(nul_text, 3), "text"},
        {cu_text("", 0), "text"},
        {cu_text(NULL, 0), "text"}, /* empty text is text, not NULL */
        {cu_blob(blob, sizeof blob), "blob"},
        {cu_blob(NULL, 0), "blob"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sqlite3_reset(stmt);
        assert_int_equal(stm_op_value_bind(stmt, 1, &cases[i].v), SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        if (strcmp((const char *)sqlite3_column_text(stmt, 1), cases[i].sql_type) != 0)
            fail_msg("case %zu bound as %s, expected %s", i, sqlite3_column_text(stmt, 1),
                     cases[i].sql_type);
        op_value back;
        stm_op_value_column(stmt, 0, &back);
        assert_true(stm_op_value_equal(&back, &cases[i].v));
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_batch_owns_copies),
        cmocka_unit_test(test_op_clock_compare),
        cmocka_unit_test(test_op_value_equal),
        cmocka_unit_test(test_op_value_bind_and_column),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
