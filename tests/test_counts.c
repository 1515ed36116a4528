/* Tests of the store's counters (sync/store.h, "Counters"): what `stemma stats` and a
 * node's report read in one row equals what a scan of the tables counts, after every
 * kind of write that moves them (local writes collected, operations applied, stand-ins,
 * parking by reason and parking again for another, retries, conflicts kept and
 * discarded, a transaction rolled back), and after a database of format 6 is brought
 * up to date. Every database is a real file in a scratch directory. */
#include "dbutil.h"
#include "sync/apply.h"
#include "sync/oplog.h"
#include "sync/park.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SCHEMA =
    "CREATE TABLE t (id TEXT PRIMARY KEY, x INTEGER NOT NULL, y TEXT);"
    "CREATE TABLE p (id INTEGER PRIMARY KEY, n INTEGER);";

typedef struct {
    char *dir;
    char a[4200], b[4200];
    store_t *sa, *sb;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    snprintf(f->a, sizeof f->a, "%s/a.db", f->dir);
    snprintf(f->b, sizeof f->b, "%s/b.db", f->dir);
    f->sa = du_setup(f->a, SCHEMA, NULL);
    f->sb = du_setup(f->b, SCHEMA, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stm_store_destroy(&f->sa);
    stm_store_destroy(&f->sb);
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void s_ok(stm_err rc, const stm_error *err)
{
    if (rc != STM_OK)
        fail_msg("%s", err->msg);
}

/* The counters equal what the tables hold, counted the slow way; and the reasons'
 * counts, what a GROUP BY finds. */
static void s_check(store_t *s)
{
    store_counts c;
    stm_error err = {0};
    s_ok(stm_store_counts(s, &c, &err), &err);
    assert_int_equal(c.operations, du_int(s, "SELECT coalesce(sum(n), 0) FROM stemma_oplog"));
    assert_int_equal(c.withheld, du_int(s, "SELECT coalesce(sum(n), 0) FROM stemma_oplog WHERE "
                                           "substr(cells, 1, 1) = x'81'"));
    assert_int_equal(c.parked, du_int(s, "SELECT count(*) FROM stemma_parked"));
    assert_int_equal(c.conflicts,
                     du_int(s, "SELECT count(*) FROM stemma_conflicts WHERE alive = 1"));
    park_reason *reasons = NULL;
    size_t n = 0;
    s_ok(stm_park_reasons(s, 10, &reasons, &n, &err), &err);
    assert_int_equal(n, du_int(s, "SELECT count(DISTINCT reason) FROM stemma_parked"));
    for (size_t i = 0; i < n; i++) {
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM stemma_parked WHERE reason = '%s'",
                 reasons[i].reason);
        assert_int_equal(reasons[i].count, du_int(s, sql));
        if (i)
            assert_true(reasons[i].count <= reasons[i - 1].count);
    }
    stm_park_reasons_free(&reasons, n);
}

/* One write of origin 0xc1 to row id of t: column (x, y, or "z", which t lacks) set to
 * value, at clock hlc, sequence seq. */
static void s_add(opbatch_t *b, uint64_t seq, uint64_t hlc, const char *id, const char *column,
                  const char *value)
{
    op_t op;
    memset(&op, 0, sizeof op);
    memset(op.origin.bytes, 0xc1, STM_ID_BYTES);
    op.seq = seq;
    op.hlc = hlc;
    op.table = "t";
    op.pk = (op_value){.type = VALUE_TEXT, .bytes = id, .len = strlen(id)};
    op.column = column;
    op.affinity = strcmp(column, "x") == 0 ? 'I' : 'T';
    op.value = (op_value){.type = VALUE_TEXT, .bytes = value, .len = strlen(value)};
    if (op.affinity == 'I')
        op.value = (op_value){.type = VALUE_INTEGER, .i = atoi(value)};
    stm_opbatch_add(b, &op);
}

static void test_counters_follow_every_write(void **state)
{
    fixture *f = *state;
    /* Local writes, collected. */
    du_exec(f->a, "INSERT INTO t VALUES ('r1', 1, 'one'), ('r2', 2, 'two');"
                  "UPDATE t SET y = 'uno' WHERE id = 'r1'; DELETE FROM t WHERE id = 'r2';"
                  "INSERT INTO p (n) VALUES (1), (2);");
    du_ops(f->sa);
    s_check(f->sa);
    /* Applied elsewhere. */
    du_sync(f->a, f->b);
    s_check(f->sb);
    /* Rows made apart under one key: conflicts kept, on both. */
    du_exec(f->b, "INSERT INTO p (n) VALUES (3)");
    du_exec(f->a, "INSERT INTO p (n) VALUES (4)");
    du_sync(f->a, f->b);
    du_sync(f->b, f->a);
    assert_true(du_int(f->sa, "SELECT count(*) FROM stemma_conflicts WHERE alive = 1") > 0);
    s_check(f->sa);
    s_check(f->sb);
    /* Parked for a missing column and for a constraint (a row without x); then the
     * row's x comes, and what waited for it applies. */
    opbatch_t *b = stm_opbatch_new();
    s_add(b, 1, 1000, "r9", "z", "zed");
    s_add(b, 2, 1001, "r8", "y", "lonely");
    s_add(b, 3, 1002, "r7", "z", "zed");
    du_apply(f->sb, b);
    assert_int_equal(du_int(f->sb, "SELECT count(*) FROM stemma_parked"), 3);
    s_check(f->sb);
    stm_opbatch_clear(b);
    s_add(b, 4, 1003, "r8", "x", "8");
    apply_stats st = du_apply(f->sb, b);
    assert_int_equal(st.replayed, 1);
    s_check(f->sb);
    /* A transaction rolled back counts nothing. */
    stm_error err = {0};
    applier_t *ap = stm_applier_new(f->sb, NULL, NULL);
    s_ok(stm_applier_begin(ap, &err), &err);
    stm_opbatch_clear(b);
    s_add(b, 5, 1004, "r6", "z", "zed");
    s_add(b, 6, 1005, "r5", "x", "5");
    st = (apply_stats){0};
    s_ok(stm_applier_apply(ap, b, &st, &err), &err);
    stm_applier_rollback(ap);
    stm_applier_destroy(&ap);
    s_check(f->sb);
    /* A stand-in: held, withheld. */
    stm_opbatch_clear(b);
    op_withheld w = {.seq = 5, .n = 3, .hlc = 1006, .table = "t", .bytes = 1u << 30};
    memset(w.origin.bytes, 0xc1, STM_ID_BYTES);
    w.pk = (op_value){.type = VALUE_TEXT, .bytes = "big", .len = 3};
    stm_opbatch_add_withheld(b, &w);
    du_apply(f->sb, b);
    s_check(f->sb);
    assert_int_equal(du_int(f->sb, "SELECT withheld FROM stemma_local"), 3);
    /* Conflicts no longer alive, and gone. */
    s_ok(stm_store_exec(f->sa, "UPDATE stemma_conflicts SET alive = 0", &err), &err);
    s_check(f->sa);
    s_ok(stm_store_exec(f->sa, "DELETE FROM stemma_conflicts", &err), &err);
    s_check(f->sa);
    stm_opbatch_destroy(&b);
}

/* A database of format 6 is read as it is (its counts scanned) and brought to format 7
 * by its first write transaction, which counts what it holds once. */
static void test_format_6_is_counted_once_and_upgraded(void **state)
{
    fixture *f = *state;
    du_exec(f->a, "INSERT INTO t VALUES ('r1', 1, 'one'), ('r2', 2, 'two');");
    du_ops(f->sa);
    opbatch_t *b = stm_opbatch_new();
    s_add(b, 1, 1000, "r9", "z", "zed");
    du_apply(f->sa, b);
    stm_opbatch_destroy(&b);
    store_counts before;
    stm_error err = {0};
    s_ok(stm_store_counts(f->sa, &before, &err), &err);
    stm_store_destroy(&f->sa);
    du_format_6(f->a);
    f->sa = du_open(f->a);
    store_counts scanned;
    s_ok(stm_store_counts(f->sa, &scanned, &err), &err);
    assert_int_equal(scanned.operations, before.operations);
    assert_int_equal(scanned.parked, 1);
    du_exec(f->a, "UPDATE t SET y = 'uno' WHERE id = 'r1'");
    du_ops(f->sa);
    assert_int_equal(du_int(f->sa, "SELECT format FROM stemma_local"), STORE_FORMAT);
    s_check(f->sa);
    assert_int_equal(du_int(f->sa, "SELECT ops FROM stemma_local"), before.operations + 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_counters_follow_every_write),
        T(test_format_6_is_counted_once_and_upgraded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
