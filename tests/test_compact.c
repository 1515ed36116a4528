/* Tests of compaction (sync/compact.h) and of what it leaves (oplog.h, "Gaps"): the
 * operations later writes replaced are pruned, and nothing else (the latest writes of
 * cells, deletes, rows deleted, incarnations kept aside, anything parked); not before
 * every known peer holds the later write (horizon.h); a peer that comes back after a
 * pruning receives pruned stand-ins and the current cells, and holds what the others
 * hold, as does a peer it passes them on to; pruned stand-ins travel and are held as
 * the protocol says. Every database is a real file in a scratch directory. */
#include "dbutil.h"
#include "sync/codec.h"
#include "sync/compact.h"
#include "sync/horizon.h"
#include "sync/oplog.h"
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
    "CREATE TABLE t (id TEXT PRIMARY KEY, x INTEGER NOT NULL, y TEXT NOT NULL, z TEXT);"
    "CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER);";

enum { NDB = 3 };

typedef struct {
    char *dir;
    char path[NDB][4200];
    store_t *s[NDB];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    for (int i = 0; i < NDB; i++) {
        snprintf(f->path[i], sizeof f->path[i], "%s/%c.db", f->dir, 'a' + i);
        f->s[i] = du_setup(f->path[i], SCHEMA, NULL);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < NDB; i++)
        stm_store_destroy(&f->s[i]);
    if (!getenv("KEEP")) tu_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void s_ok(stm_err rc, const stm_error *err)
{
    if (rc != STM_OK)
        fail_msg("%s", err->msg);
}

/* The operations database i holds in its oplog, read back (those pruned are stand-ins,
 * not counted; withheld ones are). */
static long long s_ops(fixture *f, int i)
{
    oplog_reader_t *r = NULL;
    stm_error err = {0};
    s_ok(stm_oplog_reader_new(f->s[i], NULL, &r, &err), &err);
    opbatch_t *b = stm_opbatch_new();
    long long n = 0;
    size_t got;
    do {
        stm_opbatch_clear(b);
        s_ok(stm_oplog_reader_next(r, b, 1000, 1u << 20, &got, &err), &err);
        n += (long long)stm_opbatch_count(b);
        for (size_t k = 0; k < stm_opbatch_withheld_count(b); k++)
            if (!stm_opbatch_withheld_at(b, k)->pruned)
                n += (long long)stm_opbatch_withheld_at(b, k)->n;
    } while (got);
    stm_opbatch_destroy(&b);
    stm_oplog_reader_destroy(&r);
    return n;
}

/* A whole pass over database i under horizon (NULL: no known peer). */
static compact_stats s_compact(fixture *f, int i, const vector_t *horizon)
{
    applier_t *a = stm_applier_new(f->s[i], NULL, NULL);
    compact_stats st = {0};
    stm_error err = {0};
    s_ok(stm_applier_compact_all(a, horizon, &st, &err), &err);
    stm_applier_destroy(&a);
    /* The counters followed (store.h). */
    store_counts c;
    s_ok(stm_store_counts(f->s[i], &c, &err), &err);
    assert_int_equal(c.operations, s_ops(f, i));
    return st;
}

static vector_t *s_vector(fixture *f, int i)
{
    vector_t *v = NULL;
    stm_error err = {0};
    s_ok(stm_vector_read(f->s[i], &v, &err), &err);
    return v;
}

/* Databases i and j hold the same rows and the same vector. */
static void s_assert_same(fixture *f, int i, int j)
{
    static const char *const q[] = {"SELECT * FROM t ORDER BY id", "SELECT * FROM p ORDER BY id"};
    for (size_t k = 0; k < 2; k++) {
        char *a = du_hash(f->s[i], q[k]), *b = du_hash(f->s[j], q[k]);
        if (strcmp(a, b) != 0)
            fail_msg("databases %d and %d differ on %s (%s)", i, j, q[k], f->dir);
        free(a);
        free(b);
    }
    vector_t *v[2] = {s_vector(f, i), s_vector(f, j)};
    for (int side = 0; side < 2; side++)
        for (size_t k = 0; k < stm_vector_count(v[side]); k++) {
            const vector_entry *e = stm_vector_at(v[side], k);
            assert_int_equal(e->seq, stm_vector_get(v[!side], &e->origin));
        }
    stm_vector_destroy(&v[0]);
    stm_vector_destroy(&v[1]);
}

static void test_replaced_operations_are_pruned_and_the_rest_kept(void **state)
{
    fixture *f = *state;
    /* r1: inserted (4 operations), x written twice more; r2: inserted, deleted,
     * inserted, deleted; r3 inserted and deleted once. */
    du_exec(f->path[0], "INSERT INTO t VALUES ('r1', 1, 'a', 'z')");
    du_ops(f->s[0]);
    du_exec(f->path[0], "UPDATE t SET x = 2 WHERE id = 'r1'");
    du_ops(f->s[0]);
    du_exec(f->path[0], "UPDATE t SET x = 3 WHERE id = 'r1'");
    du_ops(f->s[0]);
    for (int k = 0; k < 2; k++) {
        du_exec(f->path[0], "INSERT INTO t VALUES ('r2', 1, 'b', NULL)");
        du_ops(f->s[0]);
        du_exec(f->path[0], "DELETE FROM t WHERE id = 'r2'");
        du_ops(f->s[0]);
    }
    du_exec(f->path[0], "INSERT INTO t VALUES ('r3', 1, 'c', NULL)");
    du_ops(f->s[0]);
    du_exec(f->path[0], "DELETE FROM t WHERE id = 'r3'");
    du_ops(f->s[0]);
    long long before = s_ops(f, 0);
    assert_int_equal(before, 4 + 2 + 2 * 5 + 5);
    compact_stats st = s_compact(f, 0, NULL);
    /* r1's first two x; r2's first incarnation (its 4 cells, replaced by the second's)
     * and its first delete. r2's and r3's latest cells and deletes stay. */
    assert_int_equal(st.pruned, 2 + 4 + 1);
    assert_true(st.done);
    assert_int_equal(s_ops(f, 0), before - 7);
    assert_int_equal(du_int(f->s[0], "SELECT pruned FROM stemma_local"), 7);
    assert_int_equal(du_int(f->s[0], "SELECT compact_passes FROM stemma_local"), 1);
    /* The rows are untouched; a second pass finds nothing more. */
    assert_int_equal(du_int(f->s[0], "SELECT x FROM t WHERE id = 'r1'"), 3);
    st = s_compact(f, 0, NULL);
    assert_int_equal(st.pruned, 0);
    /* A database that never had any of it receives the current cells and holds the
     * same, and its vector moves past what was pruned. */
    du_sync(f->path[0], f->path[1]);
    s_assert_same(f, 0, 1);
    assert_int_equal(s_ops(f, 1), s_ops(f, 0));
    /* The gaps it took hold no row there (they continue what it held). */
    assert_int_equal(du_int(f->s[1], "SELECT count(*) FROM stemma_oplog WHERE tbl = '*'"), 0);
    /* And passed on by it, the same again. */
    du_sync(f->path[1], f->path[2]);
    s_assert_same(f, 0, 2);
}

/* The horizon: a replaced operation stays until every known peer holds the write that
 * replaced it; a peer silent past the horizon's keep no longer holds it back. */
static void test_a_known_peer_holds_pruning_back(void **state)
{
    fixture *f = *state;
    du_exec(f->path[0], "INSERT INTO t VALUES ('r1', 1, 'a', 'z')");
    du_sync(f->path[0], f->path[1]);
    du_exec(f->path[0], "UPDATE t SET x = 2 WHERE id = 'r1'");
    du_ops(f->s[0]);
    /* b is known and holds the insert, not the update. */
    vector_t *held = s_vector(f, 1), *horizon = NULL;
    stm_error err = {0};
    stm_id peer = {{0xbb}};
    s_ok(stm_store_exec(f->s[0], "BEGIN IMMEDIATE", &err), &err);
    s_ok(stm_horizon_note(f->s[0], &peer, held, 1000000, &err), &err);
    size_t known = 0;
    s_ok(stm_horizon_read(f->s[0], 1000000 + 50, 100, &horizon, &known, &err), &err);
    s_ok(stm_store_exec(f->s[0], "COMMIT", &err), &err);
    assert_int_equal(known, 1);
    assert_non_null(horizon);
    compact_stats st = s_compact(f, 0, horizon);
    assert_int_equal(st.pruned, 0);
    assert_int_equal(st.waiting, 1);
    stm_vector_destroy(&horizon);
    /* It takes the update: pruned. */
    du_sync(f->path[0], f->path[1]);
    stm_vector_destroy(&held);
    held = s_vector(f, 1);
    s_ok(stm_store_exec(f->s[0], "BEGIN IMMEDIATE", &err), &err);
    s_ok(stm_horizon_note(f->s[0], &peer, held, 1000000, &err), &err);
    s_ok(stm_horizon_read(f->s[0], 1000000 + 50, 100, &horizon, &known, &err), &err);
    s_ok(stm_store_exec(f->s[0], "COMMIT", &err), &err);
    st = s_compact(f, 0, horizon);
    assert_int_equal(st.pruned, 1);
    stm_vector_destroy(&horizon);
    /* Silent for longer than keep: forgotten, no horizon. */
    s_ok(stm_store_exec(f->s[0], "BEGIN IMMEDIATE", &err), &err);
    s_ok(stm_horizon_read(f->s[0], 1000000 + 101, 100, &horizon, &known, &err), &err);
    s_ok(stm_store_exec(f->s[0], "COMMIT", &err), &err);
    assert_null(horizon);
    assert_int_equal(known, 0);
    assert_int_equal(du_int(f->s[0], "SELECT count(*) FROM stemma_peers"), 0);
    stm_vector_destroy(&held);
}

/* What is parked stays whole, and so does what a row kept aside names. */
static void test_parked_and_aside_stay(void **state)
{
    fixture *f = *state;
    /* b lacks column z: a's writes of it park there. */
    stm_store_destroy(&f->s[1]);
    remove(f->path[1]);
    f->s[1] = du_setup(f->path[1],
                       "CREATE TABLE t (id TEXT PRIMARY KEY, x INTEGER NOT NULL, y TEXT NOT NULL);"
                       "CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER);",
                       NULL);
    du_exec(f->path[0], "INSERT INTO t VALUES ('r1', 1, 'a', 'z1')");
    du_sync(f->path[0], f->path[1]);
    du_exec(f->path[0], "UPDATE t SET z = 'z2', x = 2 WHERE id = 'r1'");
    du_sync(f->path[0], f->path[1]);
    assert_int_equal(du_int(f->s[1], "SELECT count(*) FROM stemma_parked"), 2);
    long long before = s_ops(f, 1);
    compact_stats st = s_compact(f, 1, NULL);
    /* The insert's x is replaced, but its row change has z parked: it stays whole. */
    assert_int_equal(st.pruned, 0);
    assert_int_equal(s_ops(f, 1), before);
    /* Rows made apart under one key: both incarnations' writes stay, the one aside
     * included, and an edit of the aside one replaces only its own. */
    du_exec(f->path[0], "INSERT INTO p (name) VALUES ('from a')");
    du_exec(f->path[2], "INSERT INTO p (name) VALUES ('from c')");
    du_sync(f->path[2], f->path[0]);
    assert_int_equal(du_int(f->s[0], "SELECT count(*) FROM stemma_conflicts WHERE alive = 1"), 1);
    st = s_compact(f, 0, NULL);
    assert_int_equal(st.pruned, 2); /* r1's first x and z */
    du_sync(f->path[0], f->path[2]);
    char *kept = du_conflicts(f->s[0]), *there = du_conflicts(f->s[2]);
    assert_string_equal(kept, there);
    free(kept);
    free(there);
}

/* A peer that comes back after a pruning it missed: pruned stand-ins and the current
 * cells; rows whose NOT NULL columns were last written apart arrive in pieces and are
 * put together. */
static void test_a_peer_back_after_pruning_gets_the_current_cells(void **state)
{
    fixture *f = *state;
    du_exec(f->path[0], "INSERT INTO t VALUES ('r1', 1, 'a', 'z'), ('r2', 1, 'b', NULL)");
    du_sync(f->path[0], f->path[1]);
    /* b away: x then y of r1 written apart, r2 deleted, r3 made and its columns each
     * written again, one at a time. */
    du_exec(f->path[0], "UPDATE t SET x = 2 WHERE id = 'r1'");
    du_ops(f->s[0]);
    du_exec(f->path[0], "UPDATE t SET y = 'a2' WHERE id = 'r1'");
    du_exec(f->path[0], "DELETE FROM t WHERE id = 'r2'");
    du_exec(f->path[0], "INSERT INTO t VALUES ('r3', 1, 'c', 'zz')");
    du_ops(f->s[0]);
    du_exec(f->path[0], "UPDATE t SET x = 3 WHERE id = 'r3'");
    du_ops(f->s[0]);
    du_exec(f->path[0], "UPDATE t SET y = 'c2' WHERE id = 'r3'");
    du_ops(f->s[0]);
    du_exec(f->path[0], "UPDATE t SET z = NULL WHERE id = 'r3'");
    du_ops(f->s[0]);
    compact_stats st = s_compact(f, 0, NULL);
    assert_true(st.pruned >= 5);
    /* c has never met anyone: it gets r3 in three pieces, none a whole row. */
    du_sync(f->path[0], f->path[2]);
    s_assert_same(f, 0, 2);
    assert_int_equal(du_int(f->s[2], "SELECT count(*) FROM stemma_parked"), 0);
    du_sync(f->path[0], f->path[1]);
    s_assert_same(f, 0, 1);
    assert_int_equal(du_int(f->s[1], "SELECT count(*) FROM stemma_parked"), 0);
}

/* Pruned stand-ins on the wire and in the oplog: a gap read as stand-ins of at most
 * CODEC_MAX_BATCH_OPS, the kind travelling in the ninth field; held without a row when
 * they continue what is held, as a row above a gap, which goes once the vector passes
 * it. */
static void test_pruned_stand_ins_travel_and_are_held(void **state)
{
    fixture *f = *state;
    stm_id o = {{0xd1}};
    opbatch_t *b = stm_opbatch_new();
    op_withheld w = {.origin = o, .seq = 1, .n = 5, .table = OP_PRUNED_TABLE, .pruned = true};
    stm_opbatch_add_withheld(b, &w);
    op_withheld big = {.origin = o, .seq = 9, .n = 2, .hlc = 5, .table = "t", .bytes = 1};
    stm_opbatch_add_withheld(b, &big);
    buf_t wire = BUF_INIT;
    stm_codec_encode_ops(b, 0, 0, &wire);
    opbatch_t *back = stm_opbatch_new();
    stm_error err = {0};
    s_ok(stm_codec_decode_ops(wire.data, wire.len, back, &err), &err);
    assert_int_equal(stm_opbatch_withheld_count(back), 2);
    assert_true(stm_opbatch_withheld_at(back, 0)->pruned);
    assert_false(stm_opbatch_withheld_at(back, 1)->pruned);
    stm_buf_free(&wire);
    /* 1-5 continue what a holds (nothing): no row; 9-10 withheld, above a gap. */
    apply_stats st = du_apply(f->s[0], back);
    assert_int_equal(st.pruned, 5);
    assert_int_equal(st.withheld, 2);
    vector_t *v = s_vector(f, 0);
    assert_int_equal(stm_vector_get(v, &o), 5);
    stm_vector_destroy(&v);
    assert_int_equal(du_int(f->s[0], "SELECT count(*) FROM stemma_oplog"), 1);
    /* Pruned 7-8 above the gap at 6: a row; then 6 comes, and the vector runs to 10. */
    stm_opbatch_clear(b);
    op_withheld w2 = {.origin = o, .seq = 7, .n = 2, .table = OP_PRUNED_TABLE, .pruned = true};
    stm_opbatch_add_withheld(b, &w2);
    du_apply(f->s[0], b);
    assert_int_equal(du_int(f->s[0], "SELECT count(*) FROM stemma_oplog WHERE tbl = '*'"), 1);
    stm_opbatch_clear(b);
    op_withheld w3 = {.origin = o, .seq = 6, .n = 1, .table = OP_PRUNED_TABLE, .pruned = true};
    stm_opbatch_add_withheld(b, &w3);
    du_apply(f->s[0], b);
    v = s_vector(f, 0);
    assert_int_equal(stm_vector_get(v, &o), 10);
    stm_vector_destroy(&v);
    /* Passed on: 1-8 pruned (gaps and the row), 9-10 withheld as they came. */
    opbatch_t *out = du_lacking(f->s[0], f->s[1]);
    uint64_t pruned = 0, withheld = 0;
    for (size_t i = 0; i < stm_opbatch_withheld_count(out); i++) {
        const op_withheld *x = stm_opbatch_withheld_at(out, i);
        if (x->pruned)
            pruned += x->n;
        else
            withheld += x->n;
    }
    assert_int_equal(pruned, 8);
    assert_int_equal(withheld, 2);
    stm_opbatch_destroy(&out);
    /* Compaction drops the pruned row, below the vector now; the withheld one stays
     * while a known peer lacks it. */
    vector_t *none = stm_vector_new();
    compact_stats cs = s_compact(f, 0, none);
    assert_int_equal(cs.standins, 1);
    assert_int_equal(du_int(f->s[0], "SELECT count(*) FROM stemma_oplog"), 1);
    stm_vector_destroy(&none);
    /* A gap of more than a stand-in holds goes in several. */
    stm_opbatch_clear(b);
    op_withheld huge = {.origin = o, .seq = 11, .n = 100000, .table = OP_PRUNED_TABLE,
                        .pruned = true};
    stm_opbatch_add_withheld(b, &huge);
    huge.seq += 100000;
    stm_opbatch_add_withheld(b, &huge);
    huge.seq += 100000;
    huge.n = 7;
    stm_opbatch_add_withheld(b, &huge);
    du_apply(f->s[0], b);
    out = du_lacking(f->s[0], f->s[2]);
    size_t count = 0;
    pruned = 0;
    for (size_t i = 0; i < stm_opbatch_withheld_count(out); i++)
        if (stm_opbatch_withheld_at(out, i)->pruned) {
            assert_true(stm_opbatch_withheld_at(out, i)->n <= CODEC_MAX_BATCH_OPS);
            pruned += stm_opbatch_withheld_at(out, i)->n;
            count++;
        }
    assert_int_equal(pruned, 8 + 200007);
    assert_int_equal(count, 4);
    stm_opbatch_destroy(&out);
    stm_opbatch_destroy(&b);
    stm_opbatch_destroy(&back);
}

/* What a reader of everything hands out of database i: *ops operations and *standins
 * stand-ins, in at most 100 calls (a reader that hands out stand-ins for ever fails). */
static void s_read_bounded(fixture *f, int i, size_t *ops, size_t *standins)
{
    oplog_reader_t *r = NULL;
    stm_error err = {0};
    s_ok(stm_oplog_reader_new(f->s[i], NULL, &r, &err), &err);
    opbatch_t *b = stm_opbatch_new();
    *ops = *standins = 0;
    size_t got = 0;
    int calls = 0;
    do {
        stm_opbatch_clear(b);
        s_ok(stm_oplog_reader_next(r, b, 1000, 1u << 20, &got, &err), &err);
        *ops += stm_opbatch_count(b);
        *standins += stm_opbatch_withheld_count(b);
        assert_true(++calls < 100);
    } while (got);
    stm_opbatch_destroy(&b);
    stm_oplog_reader_destroy(&r);
}

/* Sequences of this database's own origin it never issued (an operation of its origin
 * came from a peer far above its own: txn.h, invariant 5) are skipped, not pruned: a
 * reader hands out nothing for them, at once, however many they are, and compaction and
 * the upgrade from format 6 keep them so. */
static void test_skipped_sequences_are_not_pruned_ones(void **state)
{
    fixture *f = *state;
    du_exec(f->path[0], "INSERT INTO t VALUES ('r1', 1, 'a', 'z')");
    du_ops(f->s[0]);
    stm_id me;
    stm_error err = {0};
    s_ok(stm_store_node_id(f->s[0], &me, &err), &err);
    opbatch_t *b = stm_opbatch_new();
    op_t op = {.origin = me, .seq = (1ull << 62) - 1, .hlc = 5, .table = "t", .column = "z",
               .affinity = 'T', .pk = {.type = VALUE_TEXT, .bytes = "r9", .len = 2},
               .value = {.type = VALUE_TEXT, .bytes = "far", .len = 3}};
    stm_opbatch_add(b, &op);
    du_apply(f->s[0], b);
    stm_opbatch_destroy(&b);
    assert_int_equal(du_int(f->s[0], "SELECT count(*) FROM stemma_oplog WHERE cells = x'c1'"), 1);
    /* A peer that has nothing gets the four operations and the far one, no stand-in. */
    size_t ops, standins;
    s_read_bounded(f, 0, &ops, &standins);
    assert_int_equal(ops, 5);
    assert_int_equal(standins, 0);
    s_compact(f, 0, NULL);
    assert_int_equal(du_int(f->s[0], "SELECT count(*) FROM stemma_oplog WHERE cells = x'c1'"), 1);
    /* A database of format 6 with such a gap (and no mark): the upgrade marks it. */
    s_ok(stm_store_exec(f->s[0], "DELETE FROM stemma_oplog WHERE cells = x'c1'", &err), &err);
    stm_store_destroy(&f->s[0]);
    du_format_6(f->path[0]);
    f->s[0] = du_open(f->path[0]);
    applier_t *a = stm_applier_new(f->s[0], NULL, NULL);
    s_ok(stm_applier_catch_up(a, &err), &err); /* its first write transaction upgrades */
    stm_applier_destroy(&a);
    assert_int_equal(du_int(f->s[0], "SELECT format FROM stemma_local"), STORE_FORMAT);
    assert_int_equal(du_int(f->s[0], "SELECT count(*) FROM stemma_oplog WHERE cells = x'c1' AND "
                                     "seq = 5 AND n = 4611686018427387898"),
                     1);
    s_read_bounded(f, 0, &ops, &standins);
    assert_int_equal(standins, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_replaced_operations_are_pruned_and_the_rest_kept),
        T(test_a_known_peer_holds_pruning_back),
        T(test_parked_and_aside_stay),
        T(test_a_peer_back_after_pruning_gets_the_current_cells),
        T(test_pruned_stand_ins_travel_and_are_held),
        T(test_skipped_sequences_are_not_pruned_ones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
