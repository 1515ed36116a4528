/* Tests of sync/feed and the reader that walks it (oplog.h): row changes in the order
 * they arrived, told by each transaction as it commits (and nothing of one rolled back);
 * at open, in order of clock; the vector kept with them; a reader kept between passes
 * that holds no statement between them; a long walk cut into slices; what another
 * program recorded found by comparing vectors. */
#include "dbutil.h"
#include "sync/compact.h"
#include "sync/feed.h"
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

#include "codecutil.h"

static const char *const SCHEMA = "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT);\n";

typedef struct {
    char *dir;
    char path[4200];
    store_t *store;
    feed_t *feed;
    applier_t *applier; /* tells the feed, as a node's does */
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
    snprintf(f->path, sizeof f->path, "%s/a.db", f->dir);
    f->store = du_setup(f->path, SCHEMA, NULL);
    stm_error err = {0};
    s_ok(stm_feed_open(f->store, &f->feed, &err), &err);
    f->applier = stm_applier_new(f->store, NULL, NULL);
    stm_applier_set_listener(f->applier, stm_feed_listener(f->feed));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stm_applier_destroy(&f->applier);
    stm_feed_destroy(&f->feed);
    stm_store_destroy(&f->store);
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Row changes of origin cu_id(origin), seqs first .. first + n - 1, one write of column
 * v each to key "k<origin>-<seq>", clocked from clock + seq. */
static opbatch_t *s_changes(unsigned origin, uint64_t first, uint64_t n, uint64_t clock)
{
    opbatch_t *b = stm_opbatch_new();
    char key[32];
    for (uint64_t s = first; s < first + n; s++) {
        snprintf(key, sizeof key, "k%u-%llu", origin, (unsigned long long)s);
        op_t op = cu_op(origin, s, "t", cu_text(key, strlen(key)), "v", 'T', cu_text("x", 1));
        op.hlc = (clock + s) << 16;
        stm_opbatch_add(b, &op);
    }
    return b;
}

/* Applies them with applier, in a transaction of its own. */
static void s_apply(applier_t *applier, unsigned origin, uint64_t first, uint64_t n, uint64_t clock)
{
    opbatch_t *b = s_changes(origin, first, n, clock);
    apply_stats st = {0};
    stm_error err = {0};
    s_ok(stm_applier_apply(applier, b, &st, &err), &err);
    stm_opbatch_destroy(&b);
}

static void s_assert_run(const feed_t *feed, size_t i, unsigned origin, uint64_t first,
                         uint64_t count, store_t *store)
{
    feed_run r = stm_feed_at(feed, i);
    stm_id id = cu_id(origin);
    int64_t no = 0;
    stm_error err = {0};
    s_ok(stm_store_id_number(store, &id, false, &no, &err), &err);
    assert_int_equal(r.origin, no);
    assert_int_equal(r.first, first);
    assert_int_equal(r.count, count);
    stm_id known;
    assert_true(stm_feed_origin(feed, r.origin, &known));
    assert_true(stm_id_equal(&known, &id));
}

/* Everything reader hands out now as "origin:seq" for operations (origin n of cu_id(n))
 * and "origin:first-last" for pruned stand-ins, each batch's operations first. */
static void s_walk(oplog_reader_t *r, buf_t *out)
{
    stm_buf_reset(out);
    opbatch_t *b = stm_opbatch_new();
    size_t got;
    stm_error err = {0};
    do {
        stm_opbatch_clear(b);
        s_ok(stm_oplog_reader_next(r, b, 1000, 1u << 20, &got, &err), &err);
        for (size_t i = 0; i < stm_opbatch_count(b); i++)
            stm_buf_printf(out, "%u:%llu ", (unsigned)stm_opbatch_at(b, i)->origin.bytes[0],
                           (unsigned long long)stm_opbatch_at(b, i)->seq);
        for (size_t i = 0; i < stm_opbatch_withheld_count(b); i++) {
            const op_withheld *w = stm_opbatch_withheld_at(b, i);
            assert_true(w->pruned);
            stm_buf_printf(out, "%u:%llu-%llu ", (unsigned)w->origin.bytes[0],
                           (unsigned long long)w->seq, (unsigned long long)(w->seq + w->n - 1));
        }
    } while (got);
    stm_opbatch_destroy(&b);
    stm_oplog_reader_rest(r);
}

/* In the order of arrival, not of clock: origin 2's changes are older than origin 1's
 * third but came after it. A feed opened anew orders what is stored by clock. */
static void test_row_changes_in_order_of_arrival(void **state)
{
    fixture *f = *state;
    s_apply(f->applier, 1, 1, 3, 100);
    s_apply(f->applier, 2, 1, 2, 50);
    s_apply(f->applier, 1, 4, 1, 100);
    s_apply(f->applier, 1, 5, 2, 100); /* continues the run before it */
    assert_int_equal(stm_feed_count(f->feed), 3);
    s_assert_run(f->feed, 0, 1, 1, 3, f->store);
    s_assert_run(f->feed, 1, 2, 1, 2, f->store);
    s_assert_run(f->feed, 2, 1, 4, 3, f->store);
    buf_t seen = BUF_INIT;
    oplog_reader_t *r = stm_oplog_reader_on(f->feed);
    s_walk(r, &seen);
    assert_string_equal(stm_buf_str(&seen), "1:1 1:2 1:3 2:1 2:2 1:4 1:5 1:6 ");
    stm_oplog_reader_destroy(&r);
    /* Loaded from the database: by clock (origin 2's first, at 51 and 52). */
    feed_t *loaded = NULL;
    stm_error err = {0};
    s_ok(stm_feed_open(f->store, &loaded, &err), &err);
    assert_int_equal(stm_feed_count(loaded), 2);
    s_assert_run(loaded, 0, 2, 1, 2, f->store);
    s_assert_run(loaded, 1, 1, 1, 6, f->store);
    /* The vector it keeps is the database's. */
    vector_t *v = NULL;
    s_ok(stm_vector_read(f->store, &v, &err), &err);
    for (size_t i = 0; i < stm_vector_count(v); i++) {
        const vector_entry *e = stm_vector_at(v, i);
        assert_true(stm_vtrack_get(stm_feed_vector(f->feed), &e->origin) == e->seq);
        assert_true(stm_vtrack_get(stm_feed_vector(loaded), &e->origin) == e->seq);
    }
    assert_int_equal(stm_vtrack_count(stm_feed_vector(f->feed)), stm_vector_count(v));
    stm_vector_destroy(&v);
    stm_feed_destroy(&loaded);
    stm_buf_free(&seen);
}

/* A transaction rolled back adds nothing, runs nor vector. */
static void test_a_rollback_adds_nothing(void **state)
{
    fixture *f = *state;
    s_apply(f->applier, 1, 1, 2, 100);
    uint64_t gen = stm_vtrack_gen(stm_feed_vector(f->feed));
    stm_error err = {0};
    s_ok(stm_applier_begin(f->applier, &err), &err);
    opbatch_t *b = s_changes(3, 1, 4, 200);
    apply_stats st = {0};
    s_ok(stm_applier_apply(f->applier, b, &st, &err), &err);
    stm_applier_rollback(f->applier);
    stm_opbatch_destroy(&b);
    assert_int_equal(stm_feed_count(f->feed), 1);
    assert_int_equal(stm_feed_changes(f->feed), 2);
    assert_true(stm_vtrack_gen(stm_feed_vector(f->feed)) == gen);
    stm_id three = cu_id(3);
    assert_int_equal(stm_vtrack_get(stm_feed_vector(f->feed), &three), 0);
    /* The next commit adds its own, and only them. */
    s_apply(f->applier, 3, 1, 1, 200);
    assert_int_equal(stm_feed_count(f->feed), 2);
    assert_int_equal(stm_vtrack_get(stm_feed_vector(f->feed), &three), 1);
}

/* A reader goes on from where it was: what arrives between passes is read, nothing
 * twice, and between passes it holds no statement on the connection. */
static void test_a_reader_is_kept_between_passes(void **state)
{
    fixture *f = *state;
    oplog_reader_t *r = stm_oplog_reader_on(f->feed);
    buf_t seen = BUF_INIT;
    s_apply(f->applier, 1, 1, 2, 100);
    s_walk(r, &seen);
    assert_string_equal(stm_buf_str(&seen), "1:1 1:2 ");
    for (sqlite3_stmt *q = sqlite3_next_stmt(stm_store_db(f->store), NULL); q;
         q = sqlite3_next_stmt(stm_store_db(f->store), q))
        assert_false(sqlite3_stmt_busy(q)); /* no read left open between passes */
    s_walk(r, &seen);
    assert_string_equal(stm_buf_str(&seen), "");
    s_apply(f->applier, 1, 3, 1, 100); /* grows the last run */
    s_apply(f->applier, 2, 1, 1, 100);
    s_walk(r, &seen);
    assert_string_equal(stm_buf_str(&seen), "1:3 2:1 ");
    /* Moved back (a lost batch), it reads again from there. */
    oplog_pos back = {0, 2};
    stm_oplog_reader_seek(r, back);
    s_walk(r, &seen);
    assert_string_equal(stm_buf_str(&seen), "1:2 1:3 2:1 ");
    stm_oplog_reader_destroy(&r);
    stm_buf_free(&seen);
}

static uint64_t s_holds_all(void *ctx, const stm_id *origin)
{
    (void)ctx;
    (void)origin;
    return UINT64_MAX >> 2;
}

static uint64_t s_holds_all_but_9(void *ctx, const stm_id *origin)
{
    stm_id nine = cu_id(9);
    (void)ctx;
    return stm_id_equal(origin, &nine) ? 0 : UINT64_MAX >> 2;
}

/* Runs the peer holds cost a lookup each, and after `budget` of them the walk stops to
 * let the node serve its sockets; called again, it goes on, and what the peer lacks at
 * the end is found. */
static void test_a_long_walk_is_cut_into_slices(void **state)
{
    fixture *f = *state;
    for (unsigned o = 10; o < 60; o++)
        s_apply(f->applier, o, 1, 1, 100 + o);
    s_apply(f->applier, 9, 1, 1, 500);
    assert_int_equal(stm_feed_count(f->feed), 51);
    oplog_reader_t *r = stm_oplog_reader_on(f->feed);
    stm_oplog_reader_held(r, s_holds_all, NULL);
    opbatch_t *b = stm_opbatch_new();
    size_t got, calls = 0;
    bool yielded;
    stm_error err = {0};
    do {
        s_ok(stm_oplog_reader_walk(r, b, 100, 1u << 20, 10, &got, &yielded, &err), &err);
        assert_int_equal(got, 0);
        calls++;
    } while (yielded);
    assert_int_equal(calls, 6); /* 51 runs, 10 a slice */
    /* From the start again, lacking origin 9's: five slices of nothing, then it. */
    stm_oplog_reader_seek(r, (oplog_pos){0, 0});
    stm_oplog_reader_held(r, s_holds_all_but_9, NULL);
    calls = 0;
    do {
        s_ok(stm_oplog_reader_walk(r, b, 100, 1u << 20, 10, &got, &yielded, &err), &err);
        calls++;
    } while (yielded && !got);
    assert_int_equal(got, 1);
    assert_int_equal(calls, 6);
    stm_oplog_reader_rest(r);
    stm_oplog_reader_destroy(&r);
    stm_opbatch_destroy(&b);
}

/* What another program records (stemma apply beside a node: an applier that does not
 * tell this feed) joins it when the feed is compared with the database; a comparison
 * that finds nothing changes nothing. */
static void test_what_another_program_records_joins_the_feed(void **state)
{
    fixture *f = *state;
    s_apply(f->applier, 1, 1, 2, 100);
    size_t changed = 99;
    stm_error err = {0};
    s_ok(stm_feed_sync(f->feed, &changed, &err), &err);
    assert_int_equal(changed, 0);
    store_t *other = du_open(f->path);
    applier_t *elsewhere = stm_applier_new(other, NULL, NULL);
    s_apply(elsewhere, 1, 3, 2, 100);
    s_apply(elsewhere, 4, 1, 3, 300);
    stm_applier_destroy(&elsewhere);
    stm_store_destroy(&other);
    assert_int_equal(stm_feed_count(f->feed), 1);
    oplog_reader_t *r = stm_oplog_reader_on(f->feed);
    buf_t seen = BUF_INIT;
    s_walk(r, &seen);
    assert_string_equal(stm_buf_str(&seen), "1:1 1:2 ");
    s_ok(stm_feed_sync(f->feed, &changed, &err), &err);
    assert_int_equal(changed, 2);
    s_walk(r, &seen);
    assert_true(strstr(stm_buf_str(&seen), "1:3 1:4 ") != NULL);
    assert_true(strstr(stm_buf_str(&seen), "4:1 4:2 4:3 ") != NULL);
    stm_id four = cu_id(4);
    assert_int_equal(stm_vtrack_get(stm_feed_vector(f->feed), &four), 3);
    s_ok(stm_feed_sync(f->feed, &changed, &err), &err);
    assert_int_equal(changed, 0);
    stm_oplog_reader_destroy(&r);
    stm_buf_free(&seen);
}

/* A feed read again (the database was put back in time under the node: its numbers may
 * name other ids, its runs be others) starts its readers over: their positions meant the
 * runs of before. */
static void test_a_feed_read_again_starts_its_readers_over(void **state)
{
    fixture *f = *state;
    s_apply(f->applier, 1, 1, 2, 100);
    s_apply(f->applier, 2, 1, 1, 50);
    oplog_reader_t *r = stm_oplog_reader_on(f->feed);
    buf_t seen = BUF_INIT;
    s_walk(r, &seen);
    assert_string_equal(stm_buf_str(&seen), "1:1 1:2 2:1 ");
    uint64_t epoch = stm_feed_epoch(f->feed);
    stm_error err = {0};
    s_ok(stm_feed_reload(f->feed, &err), &err);
    assert_true(stm_feed_epoch(f->feed) != epoch);
    assert_int_equal(stm_feed_count(f->feed), 2); /* by clock now: origin 2's first */
    s_walk(r, &seen);
    assert_string_equal(stm_buf_str(&seen), "2:1 1:1 1:2 ");
    stm_oplog_reader_destroy(&r);
    stm_buf_free(&seen);
}


/* Applies one write of column v to key "same" by origin at seq, in a transaction. */
static void s_write_same(applier_t *a, unsigned origin, uint64_t seq)
{
    opbatch_t *b = stm_opbatch_new();
    op_t op = cu_op(origin, seq, "t", cu_text("same", 4), "v", 'T', cu_text("x", 1));
    op.hlc = (1000 + 10 * origin + seq) << 16; /* later origins write later */
    stm_opbatch_add(b, &op);
    apply_stats st = {0};
    stm_error err = {0};
    s_ok(stm_applier_apply(a, b, &st, &err), &err);
    stm_opbatch_destroy(&b);
}

/* Applies a pruned stand-in for origin's first .. first + n - 1. */
static void s_pruned(applier_t *a, unsigned origin, uint64_t first, uint64_t n)
{
    opbatch_t *b = stm_opbatch_new();
    op_withheld w = {.origin = cu_id(origin), .seq = first, .n = n, .table = OP_PRUNED_TABLE,
                     .pruned = true};
    stm_opbatch_add_withheld(b, &w);
    apply_stats st = {0};
    stm_error err = {0};
    s_ok(stm_applier_apply(a, b, &st, &err), &err);
    stm_opbatch_destroy(&b);
}

/* The gaps compaction leaves (oplog.h, "Gaps") go on as pruned stand-ins, whoever made
 * them and however the feed learned of them: operations pruned before they came (held
 * with no row, told by the transaction, or recorded by another program and found by a
 * sync), rows pruned here, and all of it again in a feed opened anew. Without them a
 * peer's vector would stop below the gap for good. */
static void test_gaps_go_on_as_pruned_stand_ins(void **state)
{
    fixture *f = *state;
    s_pruned(f->applier, 5, 1, 4); /* continues what is held: no row */
    s_write_same(f->applier, 5, 5);
    s_write_same(f->applier, 6, 1);
    s_write_same(f->applier, 6, 2);
    s_write_same(f->applier, 6, 3);
    stm_id five = cu_id(5);
    int64_t no = 0;
    stm_error err = {0};
    s_ok(stm_store_id_number(f->store, &five, false, &no, &err), &err);
    char q[128];
    snprintf(q, sizeof q, "SELECT count(*) FROM stemma_oplog WHERE origin = %lld", (long long)no);
    assert_int_equal(du_int(f->store, q), 1); /* 5's fifth only */
    oplog_reader_t *r = stm_oplog_reader_on(f->feed);
    buf_t seen = BUF_INIT;
    s_walk(r, &seen);
    assert_non_null(strstr(stm_buf_str(&seen), "5:1-4 "));
    assert_non_null(strstr(stm_buf_str(&seen), "5:5 "));
    assert_non_null(strstr(stm_buf_str(&seen), "6:3 "));
    /* Compaction, no peer known, prunes 5's fifth and 6's first two writes (6's third
     * replaced them). */
    compact_stats cs = {0};
    s_ok(stm_applier_compact_all(f->applier, NULL, &cs, &err), &err);
    assert_true(cs.pruned >= 3); /* 5:5 and 6:1, 6:2 */
    stm_oplog_reader_seek(r, (oplog_pos){0, 0});
    s_walk(r, &seen);
    assert_non_null(strstr(stm_buf_str(&seen), "5:1-5 "));
    assert_non_null(strstr(stm_buf_str(&seen), "6:1-2 "));
    assert_non_null(strstr(stm_buf_str(&seen), "6:3 "));
    /* Another program takes origin 7's pruned 1-9 and its 10th; a sync finds them. */
    store_t *other = du_open(f->path);
    applier_t *elsewhere = stm_applier_new(other, NULL, NULL);
    s_pruned(elsewhere, 7, 1, 9);
    s_write_same(elsewhere, 7, 10);
    s_pruned(elsewhere, 7, 11, 2);
    stm_applier_destroy(&elsewhere);
    stm_store_destroy(&other);
    size_t changed;
    s_ok(stm_feed_sync(f->feed, &changed, &err), &err);
    s_walk(r, &seen);
    assert_non_null(strstr(stm_buf_str(&seen), "7:1-9 "));
    assert_non_null(strstr(stm_buf_str(&seen), "7:10 "));
    assert_non_null(strstr(stm_buf_str(&seen), "7:11-12 "));
    /* A feed opened anew (5 has no row left at all) finds every gap. */
    oplog_reader_t *fresh = NULL;
    s_ok(stm_oplog_reader_new(f->store, NULL, &fresh, &err), &err);
    s_walk(fresh, &seen);
    assert_non_null(strstr(stm_buf_str(&seen), "5:1-5 "));
    assert_non_null(strstr(stm_buf_str(&seen), "6:1-2 "));
    assert_non_null(strstr(stm_buf_str(&seen), "7:1-9 "));
    assert_non_null(strstr(stm_buf_str(&seen), "7:10 "));
    assert_non_null(strstr(stm_buf_str(&seen), "7:11-12 "));
    stm_oplog_reader_destroy(&fresh);
    stm_oplog_reader_destroy(&r);
    stm_buf_free(&seen);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_row_changes_in_order_of_arrival),
        T(test_a_rollback_adds_nothing),
        T(test_a_reader_is_kept_between_passes),
        T(test_a_long_walk_is_cut_into_slices),
        T(test_what_another_program_records_joins_the_feed),
        T(test_a_feed_read_again_starts_its_readers_over),
        T(test_gaps_go_on_as_pruned_stand_ins),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
