/* Tests of sync/txn: each operation recorded once (held already, or twice in one
 * batch), the vector over gaps, the clock and the capture flag at commit, local writes
 * entering stemma_clock at the start, the schema read again (stm_txn_epoch), a rollback
 * that forgets, and collecting inside the caller's transaction. */
#include "dbutil.h"
#include "sync/oplog.h"
#include "sync/txn.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SCHEMA = "CREATE TABLE nums (id INTEGER PRIMARY KEY, v REAL);\n";

typedef struct {
    char *dir;
    char path[4200];
    store_t *store;
    oplog_t *log;
    txn_t *txn;
} fixture;

static void s_ok(stm_err rc, const stm_error *err)
{
    if (rc != STM_OK)
        fail_msg("%s", err->msg);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    snprintf(f->path, sizeof f->path, "%s/app.db", f->dir);
    f->store = du_setup(f->path, SCHEMA, NULL);
    f->log = stm_oplog_new(f->store);
    f->txn = stm_txn_new(f->store, f->log);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stm_txn_destroy(&f->txn);
    assert_null(f->txn);
    stm_txn_destroy(&f->txn); /* safe twice */
    stm_oplog_destroy(&f->log);
    stm_store_destroy(&f->store);
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* A write of v in nums row pk by origin (one byte repeated). */
static op_t s_op(unsigned char origin, uint64_t seq, uint64_t hlc, int64_t pk)
{
    op_t op;
    memset(&op, 0, sizeof op);
    memset(op.origin.bytes, origin, STM_ID_BYTES);
    op.seq = seq;
    op.hlc = hlc;
    op.table = "nums";
    op.pk.type = VALUE_INTEGER;
    op.pk.i = pk;
    op.column = "v";
    op.affinity = 'R';
    op.value.type = VALUE_REAL;
    op.value.r = 0.5 * (double)seq;
    return op;
}

/* Takes ops[0..n) (one row change) in its own transaction; returns how many were
 * new, adding the others to *present. */
static size_t s_take(fixture *f, op_t *ops, size_t n, uint64_t *present)
{
    const op_t *list[16];
    for (size_t i = 0; i < n; i++)
        list[i] = &ops[i];
    size_t fresh = 0;
    stm_error err = {0};
    s_ok(stm_txn_begin(f->txn, &err), &err);
    s_ok(stm_txn_take_new(f->txn, list, n, &fresh, present, &err), &err);
    s_ok(stm_txn_commit(f->txn, &err), &err);
    return fresh;
}

/* An origin (one byte repeated) as an SQL blob literal: x'b2b2...'. */
static const char *s_blob(unsigned char origin)
{
    static char lit[STM_ID_BYTES * 2 + 4];
    lit[0] = 'x';
    lit[1] = '\'';
    for (int i = 0; i < STM_ID_BYTES; i++)
        snprintf(lit + 2 + 2 * i, 3, "%02x", origin);
    lit[sizeof lit - 2] = '\'';
    lit[sizeof lit - 1] = '\0';
    return lit;
}

static long long s_vector(fixture *f, unsigned char origin)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT seq FROM stemma_vector WHERE origin = %s", s_blob(origin));
    return du_int(f->store, sql);
}

static void test_operations_are_recorded_once(void **state)
{
    fixture *f = *state;
    op_t ops[3] = {s_op(0xb2, 1, 1000, 1), s_op(0xb2, 2, 1000, 1), s_op(0xb2, 3, 1000, 1)};
    uint64_t present = 0;
    assert_int_equal(s_take(f, ops, 3, &present), 3);
    assert_int_equal(present, 0);
    assert_int_equal(s_vector(f, 0xb2), 3);
    /* Held already: nothing recorded, all present. */
    op_t again[3] = {s_op(0xb2, 1, 1000, 1), s_op(0xb2, 2, 1000, 1), s_op(0xb2, 3, 1000, 1)};
    assert_int_equal(s_take(f, again, 3, &present), 0);
    assert_int_equal(present, 3);
    /* The same sequence twice in one batch: once. */
    op_t twice[3] = {s_op(0xb2, 4, 2000, 2), s_op(0xb2, 4, 2000, 2), s_op(0xb2, 5, 2000, 2)};
    assert_int_equal(s_take(f, twice, 3, &present), 2);
    assert_int_equal(present, 4);
    assert_int_equal(twice[0].seq, 4);
    assert_int_equal(s_vector(f, 0xb2), 5);
    assert_int_equal(du_int(f->store, "SELECT sum(n) FROM stemma_oplog"), 5);
}

/* A gap holds the vector back; filling it moves the vector over what was above. */
static void test_vector_counts_only_what_has_no_gap_below(void **state)
{
    fixture *f = *state;
    uint64_t present = 0;
    op_t late = s_op(0xb2, 5, 5000, 5);
    assert_int_equal(s_take(f, &late, 1, &present), 1);
    assert_int_equal(s_vector(f, 0xb2), 0);
    op_t early[4] = {s_op(0xb2, 1, 1000, 1), s_op(0xb2, 2, 1000, 1), s_op(0xb2, 3, 1000, 1),
                     s_op(0xb2, 4, 1000, 1)};
    assert_int_equal(s_take(f, early, 4, &present), 4);
    assert_int_equal(s_vector(f, 0xb2), 5);
    /* Held above the vector entry, found without the vector's help. */
    op_t late_again = s_op(0xb2, 5, 5000, 5);
    assert_int_equal(s_take(f, &late_again, 1, &present), 0);
    assert_int_equal(present, 1);
}

static void test_commit_moves_the_clock_and_turns_capture_on(void **state)
{
    fixture *f = *state;
    stm_error err = {0};
    uint64_t far = (uint64_t)1 << 50;
    op_t op = s_op(0xb2, 1, far, 1);
    const op_t *list[1] = {&op};
    size_t fresh = 0;
    uint64_t present = 0;
    s_ok(stm_txn_begin(f->txn, &err), &err);
    assert_int_equal(du_int(f->store, "SELECT applying FROM stemma_local"), 1);
    s_ok(stm_txn_take_new(f->txn, list, 1, &fresh, &present, &err), &err);
    s_ok(stm_txn_commit(f->txn, &err), &err);
    assert_int_equal(du_int(f->store, "SELECT applying FROM stemma_local"), 0);
    assert_true(du_int(f->store, "SELECT hlc FROM stemma_local") >= (long long)far);
}

/* The application's writes become operations at the start, and enter stemma_clock
 * before anything is compared with them (invariant 4). */
static void test_local_writes_enter_the_clock_at_the_start(void **state)
{
    fixture *f = *state;
    du_exec(f->path, "INSERT INTO nums (id, v) VALUES (7, 1.5)");
    stm_error err = {0};
    s_ok(stm_txn_begin(f->txn, &err), &err);
    assert_true(du_int(f->store, "SELECT seq FROM stemma_local") >= 1);
    txn_table *nums = stm_txn_table_find(f->txn, "NUMS"); /* any case */
    assert_non_null(nums);
    assert_null(stm_txn_table_find(f->txn, "stemma_clock"));
    assert_int_equal(stm_txn_table_keys(nums), 1);
    op_value pk = {.type = VALUE_INTEGER, .i = 7};
    bool found = false;
    s_ok(stm_txn_clock_read(f->txn, nums, &pk, &found, &err), &err);
    assert_true(found);
    const rowclock_entry *v = stm_rowclock_find(stm_txn_clock(f->txn), ROWCLOCK_CELL, "v");
    assert_non_null(v);
    stm_id me;
    int64_t my_no = 0;
    s_ok(stm_store_node_id(f->store, &me, &err), &err);
    s_ok(stm_store_id_number(f->store, &me, false, &my_no, &err), &err);
    assert_int_equal(v->origin, my_no);
    /* A key above every one with clocks has none, known without a lookup. */
    pk.i = 1000;
    s_ok(stm_txn_clock_read(f->txn, nums, &pk, &found, &err), &err);
    assert_false(found);
    assert_int_equal(stm_txn_clock(f->txn)->count, 0);
    /* Written back and read again. */
    stm_rowclock_set(stm_txn_clock(f->txn), ROWCLOCK_DELETE, NULL, 9000, my_no, 99);
    s_ok(stm_txn_clock_write(f->txn, nums, &pk, true, &err), &err);
    s_ok(stm_txn_clock_read(f->txn, nums, &pk, &found, &err), &err);
    assert_true(found);
    assert_non_null(stm_rowclock_find(stm_txn_clock(f->txn), ROWCLOCK_DELETE, NULL));
    s_ok(stm_txn_commit(f->txn, &err), &err);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_clock"), 2);
}

static void test_epoch_moves_when_the_schema_changes(void **state)
{
    fixture *f = *state;
    stm_error err = {0};
    s_ok(stm_txn_begin(f->txn, &err), &err);
    s_ok(stm_txn_commit(f->txn, &err), &err);
    uint64_t before = stm_txn_epoch(f->txn);
    assert_null(stm_txn_table_find(f->txn, "tags"));
    s_ok(stm_txn_begin(f->txn, &err), &err);
    s_ok(stm_txn_commit(f->txn, &err), &err);
    assert_true(stm_txn_epoch(f->txn) == before);
    du_migrate(f->store, "CREATE TABLE tags (name TEXT PRIMARY KEY, label TEXT);");
    s_ok(stm_txn_begin(f->txn, &err), &err);
    assert_true(stm_txn_epoch(f->txn) != before);
    txn_table *tags = stm_txn_table_find(f->txn, "tags");
    assert_non_null(tags);
    assert_int_equal(stm_txn_table_keys(tags), 1);
    assert_string_equal(stm_catalog_table_name(stm_txn_table_def(tags)), "tags");
    s_ok(stm_txn_commit(f->txn, &err), &err);
}

/* Rolled back: nothing recorded, and the ids numbered inside are forgotten, so the
 * next transaction numbers them again (invariant 7). */
static void test_rollback_forgets(void **state)
{
    fixture *f = *state;
    op_t ops[2] = {s_op(0xc3, 1, 1000, 1), s_op(0xc3, 2, 1000, 1)};
    const op_t *list[2] = {&ops[0], &ops[1]};
    size_t fresh = 0;
    uint64_t present = 0;
    stm_error err = {0};
    s_ok(stm_txn_begin(f->txn, &err), &err);
    s_ok(stm_txn_take_new(f->txn, list, 2, &fresh, &present, &err), &err);
    assert_int_equal(fresh, 2);
    stm_txn_rollback(f->txn);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_oplog"), 0);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM stemma_ids WHERE id = %s", s_blob(0xc3));
    assert_int_equal(du_int(f->store, sql), 0);
    assert_int_equal(s_take(f, ops, 2, &present), 2);
    assert_int_equal(present, 0);
    assert_int_equal(s_vector(f, 0xc3), 2);
    /* Recorded under the number the id has now, not the one rolled back. */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM stemma_oplog o JOIN stemma_ids i ON i.no = o.origin "
             "WHERE i.id = %s",
             s_blob(0xc3));
    assert_int_equal(du_int(f->store, sql), 1);
}

/* A migration's transaction: local changes recorded under the old schema, nothing
 * committed by stm_txn_collect itself. */
static void test_collect_inside_the_callers_transaction(void **state)
{
    fixture *f = *state;
    du_exec(f->path, "INSERT INTO nums (id, v) VALUES (1, 2.0), (2, 3.0)");
    stm_error err = {0};
    s_ok(stm_store_exec(f->store, "BEGIN IMMEDIATE", &err), &err);
    s_ok(stm_txn_collect(f->txn, &err), &err);
    assert_true(du_int(f->store, "SELECT count(*) FROM stemma_oplog") >= 2);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_clock"), 2);
    s_ok(stm_store_exec(f->store, "ROLLBACK", &err), &err);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_oplog"), 0);
    stm_store_forget_ids(f->store);
    s_ok(stm_store_exec(f->store, "BEGIN IMMEDIATE", &err), &err);
    s_ok(stm_txn_collect(f->txn, &err), &err);
    s_ok(stm_store_exec(f->store, "COMMIT", &err), &err);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_clock"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_operations_are_recorded_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vector_counts_only_what_has_no_gap_below, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_commit_moves_the_clock_and_turns_capture_on, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_local_writes_enter_the_clock_at_the_start, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_epoch_moves_when_the_schema_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_forgets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collect_inside_the_callers_transaction, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
