/* Tests of sync/oplog: operations recorded a row change a row, looked up, and read
 * back for a peer (exactly what its vector lacks, in causal order, in batches that
 * never split a row change), the counts, and damaged rows refused. Every database is
 * a real file in a scratch directory. */
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

/* Two remote writers. Their first byte names them in s_list: A sorts before B. */
static const stm_id A = {{0xA}};
static const stm_id B = {{0xB}};
static const stm_id VERSION = {{0x7}};

typedef struct {
    char *dir;
    char path[4200];
    store_t *store;
    oplog_t *log;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    snprintf(f->path, sizeof f->path, "%s/app.db", f->dir);
    f->store = du_setup(f->path, "CREATE TABLE t (id INTEGER PRIMARY KEY, x);", &VERSION);
    f->log = stm_oplog_new(f->store);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stm_oplog_destroy(&f->log);
    stm_oplog_destroy(&f->log); /* safe twice */
    stm_store_destroy(&f->store);
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

/* Records one row change of origin: n integer cells c0.. of row `seq` in table t with
 * sequences seq .. seq + n - 1 at clock hlc; n = 0 records a row delete. */
static stm_err s_try_append(fixture *f, const stm_id *origin, uint64_t seq, size_t n, uint64_t hlc,
                            stm_error *err)
{
    static const char *const names[] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"};
    op_t ops[8], *list[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < (n ? n : 1); i++) {
        op_t *op = &ops[i];
        memset(op, 0, sizeof *op);
        op->origin = *origin;
        op->seq = seq + i;
        op->hlc = hlc;
        op->version_id = VERSION;
        op->table = "t";
        op->pk.type = VALUE_INTEGER;
        op->pk.i = (int64_t)seq;
        if (n) {
            op->column = names[i];
            op->affinity = 'I';
            op->value.type = VALUE_INTEGER;
            op->value.i = (int64_t)(seq + i) * 10;
        }
        list[i] = op;
    }
    return stm_oplog_append(f->log, (const op_t *const *)list, n ? n : 1, "t", err);
}

static int64_t s_no(fixture *f, const stm_id *origin)
{
    int64_t no = 0;
    stm_error err = {0};
    s_ok(stm_store_id_number(f->store, origin, false, &no, &err), &err);
    return no;
}

/* s_try_append, which must succeed; then the origin's vector entry is set the way apply
 * sets it (held without a gap), so that readers find the origin. */
static void s_append(fixture *f, const stm_id *origin, uint64_t seq, size_t n, uint64_t hlc)
{
    stm_error err = {0};
    s_ok(s_try_append(f, origin, seq, n, hlc, &err), &err);
    uint64_t to = 0;
    s_ok(stm_oplog_contiguous(f->log, s_no(f, origin), 0, &to, &err), &err);
    du_vector_set(f->store, origin, to);
}

/* The operations of batch as "A1 A2 B1 ..." (origin's first byte in hex, then seq). */
static void s_list(const opbatch_t *batch, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < stm_opbatch_count(batch) && used < size; i++) {
        const op_t *op = stm_opbatch_at(batch, i);
        used += (size_t)snprintf(out + used, size - used, "%s%X%llu", i ? " " : "",
                                 op->origin.bytes[0], (unsigned long long)op->seq);
    }
}

/* Reads everything a reader from since (NULL: everything) hands out, in batches of
 * max_ops and max_bytes, and checks it against expect (as s_list writes it) and the
 * number of operations each call gave against calls ("3,3,0"; NULL: any). */
static void s_check(fixture *f, const vector_t *since, size_t max_ops, size_t max_bytes,
                    const char *expect, const char *calls)
{
    oplog_reader_t *reader = NULL;
    stm_error err = {0};
    s_ok(stm_oplog_reader_new(f->store, since, &reader, &err), &err);
    opbatch_t *all = stm_opbatch_new(), *batch = stm_opbatch_new();
    char got_calls[256], list[256];
    size_t got, used = 0;
    do {
        stm_opbatch_clear(batch);
        s_ok(stm_oplog_reader_next(reader, batch, max_ops, max_bytes, &got, &err), &err);
        assert_int_equal(got, stm_opbatch_count(batch));
        for (size_t i = 0; i < got; i++)
            stm_opbatch_add(all, stm_opbatch_at(batch, i));
        used += (size_t)snprintf(got_calls + used, sizeof got_calls - used, "%s%zu",
                                 used ? "," : "", got);
        assert_true(used < sizeof got_calls);
    } while (got);
    s_list(all, list, sizeof list);
    assert_string_equal(list, expect);
    if (calls)
        assert_string_equal(got_calls, calls);
    stm_opbatch_destroy(&batch);
    stm_opbatch_destroy(&all);
    stm_oplog_reader_destroy(&reader);
    assert_null(reader);
}

/* The same in batches large enough to take it all. */
static void s_expect(fixture *f, const vector_t *since, const char *expect)
{
    s_check(f, since, 1000, 1u << 20, expect, NULL);
}

/* The same from the vector {A: a, B: b}. */
static void s_expect_since(fixture *f, uint64_t a, uint64_t b, const char *expect)
{
    vector_t *since = stm_vector_new();
    stm_vector_set(since, &A, a);
    stm_vector_set(since, &B, b);
    s_expect(f, since, expect);
    stm_vector_destroy(&since);
}

static void test_append_and_fetch_give_back_every_field(void **state)
{
    fixture *f = *state;
    /* One row change of five cells, every kind of value (a NULL written is not a
     * delete), an awkward table name. */
    static const char text[] = "caf\xc3\xa9";
    static const unsigned char blob[] = {0, 1, 0xff};
    const char *names[] = {"n", "r", "s", "b", "z"};
    const char affs[] = {'I', 'R', 'T', 'B', 'N'};
    op_t ops[5], *list[5];
    for (int i = 0; i < 5; i++) {
        memset(&ops[i], 0, sizeof ops[i]);
        ops[i].origin = A;
        ops[i].seq = 11 + (uint64_t)i;
        ops[i].hlc = 12345;
        ops[i].version_id = VERSION;
        ops[i].table = "Odd \"t\"";
        ops[i].pk = (op_value){VALUE_TEXT, 0, 0, "key", 3};
        ops[i].column = names[i];
        ops[i].affinity = affs[i];
        list[i] = &ops[i];
    }
    ops[0].value = (op_value){VALUE_INTEGER, -42, 0, NULL, 0};
    ops[1].value = (op_value){VALUE_REAL, 0, 2.5, NULL, 0};
    ops[2].value = (op_value){VALUE_TEXT, 0, 0, text, sizeof text - 1};
    ops[3].value = (op_value){VALUE_BLOB, 0, 0, blob, sizeof blob};
    ops[4].value = (op_value){VALUE_NULL, 0, 0, NULL, 0};
    stm_error err = {0};
    s_ok(stm_oplog_append(f->log, (const op_t *const *)list, 5, "Odd \"t\"", &err), &err);
    /* The same sequence of another origin is another operation. */
    s_append(f, &B, 11, 1, 99);
    /* A row change costs one row. */
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_oplog"), 2);

    opbatch_t *out = stm_opbatch_new();
    bool found = false;
    for (int i = 0; i < 5; i++) {
        s_ok(stm_oplog_fetch(f->log, &A, 11 + (uint64_t)i, out, &found, &err), &err);
        assert_true(found);
        const op_t *op = stm_opbatch_at(out, (size_t)i);
        assert_true(stm_id_equal(&op->origin, &A));
        assert_int_equal(op->seq, 11 + i);
        assert_int_equal(op->hlc, 12345);
        assert_true(stm_id_equal(&op->version_id, &VERSION));
        assert_string_equal(op->table, "Odd \"t\"");
        assert_true(stm_op_value_equal(&op->pk, &ops[i].pk));
        assert_string_equal(op->column, names[i]);
        assert_int_equal(op->affinity, affs[i]);
        assert_true(stm_op_value_equal(&op->value, &ops[i].value));
        assert_false(stm_op_is_delete(op));
    }
    s_ok(stm_oplog_fetch(f->log, &B, 11, out, &found, &err), &err);
    assert_true(found);
    assert_true(stm_id_equal(&stm_opbatch_at(out, 5)->origin, &B));
    assert_int_equal(stm_opbatch_at(out, 5)->value.i, 110);

    /* Not held: below, above, another origin's, an origin never seen (which fetching
     * does not number). */
    const uint64_t missing[] = {0, 10, 16};
    for (size_t i = 0; i < 3; i++) {
        s_ok(stm_oplog_fetch(f->log, &A, missing[i], out, &found, &err), &err);
        assert_false(found);
    }
    s_ok(stm_oplog_fetch(f->log, &B, 12, out, &found, &err), &err);
    assert_false(found);
    stm_id nobody = {{0xEE}};
    long long ids = du_int(f->store, "SELECT count(*) FROM stemma_ids");
    s_ok(stm_oplog_fetch(f->log, &nobody, 1, out, &found, &err), &err);
    assert_false(found);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_ids"), ids);
    assert_int_equal(stm_opbatch_count(out), 6);
    stm_opbatch_destroy(&out);
}

static void test_a_row_delete_is_one_operation(void **state)
{
    fixture *f = *state;
    s_append(f, &A, 1, 2, 10);
    s_append(f, &A, 3, 0, 20);
    opbatch_t *out = stm_opbatch_new();
    bool found = false;
    stm_error err = {0};
    s_ok(stm_oplog_fetch(f->log, &A, 3, out, &found, &err), &err);
    assert_true(found);
    const op_t *op = stm_opbatch_at(out, 0);
    assert_true(stm_op_is_delete(op));
    assert_null(op->column);
    assert_int_equal(op->pk.i, 3);
    assert_int_equal(op->hlc, 20);
    s_ok(stm_oplog_fetch(f->log, &A, 4, out, &found, &err), &err);
    assert_false(found);
    stm_opbatch_destroy(&out);
    s_expect(f, NULL, "A1 A2 A3");
}

static void test_holds_names_the_end_of_the_row_change(void **state)
{
    fixture *f = *state;
    s_append(f, &A, 1, 3, 10);
    s_append(f, &A, 5, 1, 20);
    s_append(f, &A, 6, 4, 30);
    int64_t a = s_no(f, &A);
    /* seq -> end of the row change holding it, 0 when none does */
    const uint64_t seq[] = {0, 1, 2, 3, 4, 5, 6, 8, 9, 10};
    const uint64_t end[] = {0, 3, 3, 3, 0, 5, 9, 9, 9, 0};
    stm_error err = {0};
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        uint64_t got = 77;
        s_ok(stm_oplog_holds(f->log, a, seq[i], &got, &err), &err);
        assert_int_equal(got, end[i]);
    }
    /* Another origin holds nothing of these. */
    s_append(f, &B, 20, 1, 40);
    uint64_t got = 77;
    s_ok(stm_oplog_holds(f->log, s_no(f, &B), 2, &got, &err), &err);
    assert_int_equal(got, 0);
}

static void test_contiguous_stops_at_the_first_gap(void **state)
{
    fixture *f = *state;
    s_append(f, &A, 1, 3, 10);
    s_append(f, &A, 4, 1, 20);
    s_append(f, &A, 6, 3, 30);
    s_append(f, &A, 9, 2, 40);
    int64_t a = s_no(f, &A);
    /* from -> highest held without a gap above it */
    const uint64_t from[] = {0, 2, 3, 4, 5, 7, 10, 11};
    const uint64_t to[] = {4, 4, 4, 4, 10, 10, 10, 11};
    stm_error err = {0};
    for (size_t i = 0; i < sizeof from / sizeof from[0]; i++) {
        uint64_t got = 77;
        s_ok(stm_oplog_contiguous(f->log, a, from[i], &got, &err), &err);
        assert_int_equal(got, to[i]);
    }
    /* The gap filled, it runs to the end. */
    s_append(f, &A, 5, 1, 50);
    uint64_t got = 0;
    s_ok(stm_oplog_contiguous(f->log, a, 0, &got, &err), &err);
    assert_int_equal(got, 10);
    s_ok(stm_oplog_contiguous(f->log, s_no(f, &A) + 100, 3, &got, &err), &err);
    assert_int_equal(got, 3);
}

/* The same row change twice is refused by the store, and the caller's transaction goes
 * on without it (apply checks with stm_oplog_holds first). */
static void test_a_duplicate_is_refused_and_the_transaction_goes_on(void **state)
{
    fixture *f = *state;
    stm_error err = {0};
    s_ok(stm_store_exec(f->store, "BEGIN IMMEDIATE", &err), &err);
    s_append(f, &A, 1, 2, 10);
    assert_int_equal(s_try_append(f, &A, 1, 2, 10, &err), STM_EDB);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "recording operations"));
    assert_non_null(strstr(err.msg, "UNIQUE"));
    s_append(f, &A, 3, 1, 20);
    s_ok(stm_store_exec(f->store, "COMMIT", &err), &err);
    uint64_t total = 0, parked = 0;
    s_ok(stm_oplog_counts(f->store, &total, &parked, &err), &err);
    assert_int_equal(total, 3);
    s_expect(f, NULL, "A1 A2 A3");
}

static void test_the_reader_hands_out_exactly_what_the_peer_lacks(void **state)
{
    fixture *f = *state;
    s_append(f, &A, 1, 2, 10);
    s_append(f, &B, 1, 3, 15);
    s_append(f, &A, 3, 1, 20);
    s_append(f, &A, 4, 2, 30);
    s_expect(f, NULL, "A1 A2 B1 B2 B3 A3 A4 A5");

    struct {
        uint64_t a, b;
        const char *expect;
    } cases[] = {
        {0, 0, "A1 A2 B1 B2 B3 A3 A4 A5"},
        {3, 0, "B1 B2 B3 A4 A5"},
        {1, 2, "A2 B3 A3 A4 A5"}, /* both start inside a row change */
        {4, 3, "A5"},
        {5, 3, ""},
        {100, 100, ""}, /* a peer ahead of us */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_expect_since(f, cases[i].a, cases[i].b, cases[i].expect);
    /* Origins the peer names and we do not hold are nothing to send. */
    vector_t *since = stm_vector_new();
    stm_id other = {{0xC}};
    stm_vector_set(since, &other, 9);
    stm_vector_set(since, &B, 1);
    s_expect(f, since, "A1 A2 B2 B3 A3 A4 A5");
    stm_vector_destroy(&since);
}

/* Operations held above a gap (they came out of order) are sent too: the peer may
 * lack them, and a duplicate is harmless. */
static void test_the_reader_sends_what_lies_above_a_gap(void **state)
{
    fixture *f = *state;
    s_append(f, &A, 1, 2, 10);
    s_append(f, &A, 5, 2, 50);
    assert_int_equal(du_int(f->store, "SELECT seq FROM stemma_vector"), 2);
    s_expect(f, NULL, "A1 A2 A5 A6");
    s_expect_since(f, 2, 0, "A5 A6");
    s_expect_since(f, 5, 0, "A6");
}

/* Across origins, by clock: a write comes after the writes its writer had seen. */
static void test_the_reader_merges_origins_by_clock(void **state)
{
    fixture *f = *state;
    s_append(f, &B, 1, 1, 20);
    s_append(f, &A, 1, 1, 10);
    s_append(f, &A, 2, 2, 30);
    s_append(f, &B, 2, 1, 40);
    s_append(f, &A, 4, 1, 50);
    s_append(f, &B, 3, 1, 60);
    s_expect(f, NULL, "A1 B1 A2 A3 B2 A4 B3");
    /* The same in batches of one row change. */
    s_check(f, NULL, 1, 1u << 20, "A1 B1 A2 A3 B2 A4 B3", "1,1,2,1,1,1,0");
}

static void test_batches_keep_to_their_limits_and_never_split_a_row_change(void **state)
{
    fixture *f = *state;
    for (uint64_t seq = 1; seq <= 9; seq += 3)
        s_append(f, &A, seq, 3, seq);
    const char *all = "A1 A2 A3 A4 A5 A6 A7 A8 A9";
    struct {
        size_t max_ops;
        const char *calls;
    } cases[] = {
        {1, "3,3,3,0"}, {3, "3,3,3,0"}, {4, "6,3,0"}, {6, "6,3,0"}, {7, "9,0"}, {100, "9,0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_check(f, NULL, cases[i].max_ops, 1u << 20, all, cases[i].calls);
    }
    /* A row change partly held by the peer is sent from where it lacks it. */
    vector_t *since = stm_vector_new();
    stm_vector_set(since, &A, 1);
    s_check(f, since, 2, 1u << 20, "A2 A3 A4 A5 A6 A7 A8 A9", "2,3,3,0");
    stm_vector_destroy(&since);
    /* Bytes: one row change at least, whatever the limit. */
    s_check(f, NULL, 100, 1, all, "3,3,3,0");
}

static void test_batches_keep_to_the_byte_limit(void **state)
{
    fixture *f = *state;
    /* Ten writes of a 1,000-byte value, one row change each. */
    char big[1000];
    memset(big, 'x', sizeof big);
    stm_error err = {0};
    for (uint64_t seq = 1; seq <= 10; seq++) {
        op_t op;
        memset(&op, 0, sizeof op);
        op.origin = A;
        op.seq = seq;
        op.hlc = seq;
        op.version_id = VERSION;
        op.table = "t";
        op.pk = (op_value){VALUE_INTEGER, (int64_t)seq, 0, NULL, 0};
        op.column = "x";
        op.affinity = 'T';
        op.value = (op_value){VALUE_TEXT, 0, 0, big, sizeof big};
        const op_t *list[1] = {&op};
        s_ok(stm_oplog_append(f->log, list, 1, "t", &err), &err);
    }
    du_vector_set(f->store, &A, 10);
    /* Under 2,500 bytes a third value still goes in; then the batch is full. */
    s_check(f, NULL, 100, 2500, "A1 A2 A3 A4 A5 A6 A7 A8 A9 A10", "3,3,3,1,0");
}

/* Local writes are read once they are operations: a reader does not collect what the
 * capture triggers queued (stm_applier_catch_up does). */
static void test_local_writes_are_read_once_collected(void **state)
{
    fixture *f = *state;
    du_exec(f->path, "INSERT INTO t VALUES (1, 'one'), (2, 'two')");
    s_expect(f, NULL, "");

    applier_t *applier = stm_applier_new(f->store, NULL, NULL);
    stm_error err = {0};
    s_ok(stm_applier_catch_up(applier, &err), &err);
    stm_applier_destroy(&applier);
    oplog_reader_t *reader = NULL;
    s_ok(stm_oplog_reader_new(f->store, NULL, &reader, &err), &err);
    opbatch_t *batch = stm_opbatch_new();
    size_t got = 0;
    s_ok(stm_oplog_reader_next(reader, batch, 100, 1u << 20, &got, &err), &err);
    assert_int_equal(got, 4); /* id and x of each row, a row change a row */
    stm_id me;
    s_ok(stm_store_node_id(f->store, &me, &err), &err);
    for (size_t i = 0; i < got; i++) {
        const op_t *op = stm_opbatch_at(batch, i);
        assert_true(stm_id_equal(&op->origin, &me));
        assert_int_equal(op->seq, i + 1);
        assert_string_equal(op->table, "t");
        assert_int_equal(op->pk.i, (int64_t)(i / 2 + 1));
        assert_string_equal(op->column, i % 2 ? "x" : "id");
    }
    /* A peer that has them gets nothing. */
    vector_t *since = stm_vector_new();
    stm_vector_set(since, &me, 4);
    oplog_reader_t *after = NULL;
    s_ok(stm_oplog_reader_new(f->store, since, &after, &err), &err);
    stm_opbatch_clear(batch);
    s_ok(stm_oplog_reader_next(after, batch, 100, 1u << 20, &got, &err), &err);
    assert_int_equal(got, 0);
    stm_oplog_reader_destroy(&after);
    stm_vector_destroy(&since);
    stm_opbatch_destroy(&batch);
    stm_oplog_reader_destroy(&reader);
}

/* A stored row change damaged on disk is refused whole: nothing of it is handed out,
 * and the message names the table and the sequence. */
static void test_a_damaged_row_change_is_refused_whole(void **state)
{
    fixture *f = *state;
    const char *const damage[] = {
        "UPDATE stemma_oplog SET n = 4",                         /* fewer cells than n */
        "UPDATE stemma_oplog SET n = 2",                         /* cells left over */
        "UPDATE stemma_oplog SET n = 0",                         /* no operation */
        "UPDATE stemma_oplog SET cells = x'c1'",                 /* not MessagePack */
        "UPDATE stemma_oplog SET cells = NULL, n = 3",           /* a delete of three */
        "UPDATE stemma_oplog SET cells = x'a16300a16300a16300'", /* affinity 0 */
        /* a column name over OP_MAX_NAME_BYTES */
        "UPDATE stemma_oplog SET cells = x'da0401' || zeroblob(1025) || x'49c0', n = 1",
    };
    stm_error err = {0};
    for (size_t i = 0; i < sizeof damage / sizeof damage[0]; i++) {
        s_ok(stm_store_exec(f->store, "DELETE FROM stemma_oplog", &err), &err);
        s_append(f, &A, 5, 3, 10);
        s_ok(stm_store_exec(f->store, damage[i], &err), &err);
        oplog_reader_t *reader = NULL;
        s_ok(stm_oplog_reader_new(f->store, NULL, &reader, &err), &err);
        opbatch_t *batch = stm_opbatch_new();
        size_t got = 99;
        stm_error_clear(&err);
        assert_int_equal(stm_oplog_reader_next(reader, batch, 100, 1u << 20, &got, &err),
                         STM_ECORRUPT);
        assert_int_equal(stm_opbatch_count(batch), 0);
        assert_non_null(strstr(err.msg, "stemma_oplog"));
        assert_non_null(strstr(err.msg, "sequence 5 is damaged"));
        bool found = true;
        if (!strstr(damage[i], "n = 0")) { /* (then nothing holds 5) */
            assert_int_equal(stm_oplog_fetch(f->log, &A, 5, batch, &found, &err), STM_ECORRUPT);
            assert_false(found);
            assert_int_equal(stm_opbatch_count(batch), 0);
        }
        stm_opbatch_destroy(&batch);
        stm_oplog_reader_destroy(&reader);
    }
    /* A schema version number stemma_ids does not have. */
    s_ok(stm_store_exec(f->store, "DELETE FROM stemma_oplog", &err), &err);
    s_append(f, &A, 5, 3, 10);
    s_ok(stm_store_exec(f->store, "UPDATE stemma_oplog SET version = 999", &err), &err);
    opbatch_t *batch = stm_opbatch_new();
    bool found = true;
    assert_int_equal(stm_oplog_fetch(f->log, &A, 5, batch, &found, &err), STM_ECORRUPT);
    assert_non_null(strstr(err.msg, "no id numbered 999"));
    assert_false(found);
    stm_opbatch_destroy(&batch);
}

static void s_park(fixture *f, uint64_t seq, const char *reason)
{
    char hex[STM_ID_HEX_LEN + 1], sql[512];
    stm_id_to_hex(&A, hex);
    snprintf(sql, sizeof sql, "INSERT INTO stemma_parked VALUES (x'%s', %llu, 'schema', '%s')", hex,
             (unsigned long long)seq, reason);
    stm_error err = {0};
    s_ok(stm_store_exec(f->store, sql, &err), &err);
}

static void test_counts_are_of_operations_and_parked_reasons_most_common_first(void **state)
{
    fixture *f = *state;
    uint64_t total = 9, parked = 9;
    park_reason *reasons = NULL;
    size_t count = 9;
    stm_error err = {0};
    s_ok(stm_oplog_counts(f->store, &total, &parked, &err), &err);
    assert_int_equal(total, 0);
    assert_int_equal(parked, 0);
    s_ok(stm_park_reasons(f->store, 10, &reasons, &count, &err), &err);
    assert_int_equal(count, 0);
    stm_park_reasons_free(&reasons, count);
    assert_null(reasons);

    s_append(f, &A, 1, 4, 10);
    s_append(f, &A, 5, 0, 20);
    s_append(f, &B, 1, 2, 30);
    /* Reasons: "no column x" x3, "no table y" x1, "a check failed" x3 (a tie: by name). */
    s_park(f, 1, "no column x");
    s_park(f, 2, "no column x");
    s_park(f, 3, "no column x");
    s_park(f, 4, "no table y");
    s_park(f, 5, "a check failed");
    s_park(f, 6, "a check failed");
    s_park(f, 7, "a check failed");
    s_ok(stm_oplog_counts(f->store, &total, &parked, &err), &err);
    assert_int_equal(total, 7); /* operations, not row changes */
    assert_int_equal(parked, 7);

    s_ok(stm_park_reasons(f->store, 10, &reasons, &count, &err), &err);
    assert_int_equal(count, 3);
    assert_string_equal(reasons[0].reason, "a check failed");
    assert_int_equal(reasons[0].count, 3);
    assert_string_equal(reasons[1].reason, "no column x");
    assert_int_equal(reasons[1].count, 3);
    assert_string_equal(reasons[2].reason, "no table y");
    assert_int_equal(reasons[2].count, 1);
    stm_park_reasons_free(&reasons, count);
    assert_null(reasons);

    s_ok(stm_park_reasons(f->store, 2, &reasons, &count, &err), &err);
    assert_int_equal(count, 2);
    assert_string_equal(reasons[1].reason, "no column x");
    stm_park_reasons_free(&reasons, count);
    s_ok(stm_park_reasons(f->store, 0, &reasons, &count, &err), &err);
    assert_int_equal(count, 0);
    stm_park_reasons_free(&reasons, count);
    stm_park_reasons_free(&reasons, count); /* safe twice */
}

/* Records one row change of origin A at seq: one blob cell of len bytes in row seq. */
static void s_append_blob(fixture *f, uint64_t seq, size_t len, uint64_t hlc)
{
    void *blob = calloc(1, len);
    op_t op;
    memset(&op, 0, sizeof op);
    op.origin = A;
    op.seq = seq;
    op.hlc = hlc;
    op.version_id = VERSION;
    op.table = "t";
    op.pk = (op_value){.type = VALUE_INTEGER, .i = (int64_t)seq};
    op.column = "x";
    op.affinity = 'B';
    op.value = (op_value){.type = VALUE_BLOB, .bytes = blob, .len = len};
    const op_t *list[] = {&op};
    stm_error err = {0};
    s_ok(stm_oplog_append(f->log, list, 1, "t", &err), &err);
    free(blob);
    uint64_t to = 0;
    s_ok(stm_oplog_contiguous(f->log, s_no(f, &A), 0, &to, &err), &err);
    du_vector_set(f->store, &A, to);
}

/* Reads all from since (NULL: all) with the given limit (0: the default) and batch
 * bytes: the operations and stand-ins as "A1 A2 [A3+1 here] ...", and what each call
 * covered. */
static void s_read_all(fixture *f, const vector_t *since, uint64_t limit, size_t max_bytes,
                       char *list, size_t size, char *calls, size_t calls_size)
{
    oplog_reader_t *reader = NULL;
    stm_error err = {0};
    s_ok(stm_oplog_reader_new(f->store, since, &reader, &err), &err);
    if (limit)
        stm_oplog_reader_set_limit(reader, limit, OP_MAX_VALUE_BYTES);
    opbatch_t *batch = stm_opbatch_new();
    size_t got, used = 0, cused = 0;
    list[0] = calls[0] = '\0';
    do {
        stm_opbatch_clear(batch);
        s_ok(stm_oplog_reader_next(reader, batch, 1000, max_bytes, &got, &err), &err);
        assert_int_equal(got, stm_opbatch_covered(batch));
        for (size_t i = 0; i < stm_opbatch_count(batch); i++) {
            const op_t *op = stm_opbatch_at(batch, i);
            used += (size_t)snprintf(list + used, size - used, "%s%X%llu", used ? " " : "",
                                     op->origin.bytes[0], (unsigned long long)op->seq);
        }
        for (size_t i = 0; i < stm_opbatch_withheld_count(batch); i++) {
            const op_withheld *w = stm_opbatch_withheld_at(batch, i);
            used += (size_t)snprintf(list + used, size - used, "%s[%X%llu+%llu%s]",
                                     used ? " " : "", w->origin.bytes[0],
                                     (unsigned long long)w->seq, (unsigned long long)w->n,
                                     w->here ? " here" : "");
        }
        cused += (size_t)snprintf(calls + cused, calls_size - cused, "%s%zu", cused ? "," : "",
                                  got);
        assert_true(used < size && cused < calls_size);
    } while (got);
    stm_opbatch_destroy(&batch);
    stm_oplog_reader_destroy(&reader);
}

/* A row change over the reader's limit is read as a stand-in, without its values; one
 * over the batch size comes alone; a stand-in received and stored is read back as one
 * (not this database's to withhold), from any point inside it. */
static void test_row_changes_too_large_are_read_as_stand_ins(void **state)
{
    fixture *f = *state;
    s_append(f, &A, 1, 2, 10);
    s_append_blob(f, 3, 20000, 20);
    s_append(f, &A, 4, 2, 30);
    char list[512], calls[64];
    /* Under the limit: every operation, the large one alone in its batch. */
    s_read_all(f, NULL, 0, 5000, list, sizeof list, calls, sizeof calls);
    assert_string_equal(list, "A1 A2 A3 A4 A5");
    assert_string_equal(calls, "2,1,2,0");
    /* Over it: a stand-in in its place, which is small and goes with the rest. */
    s_read_all(f, NULL, 10000, 5000, list, sizeof list, calls, sizeof calls);
    assert_string_equal(list, "A1 A2 A4 A5 [A3+1 here]");
    assert_string_equal(calls, "5,0");
    /* Under the limit but with a value over the most a peer decodes: a stand-in too. */
    oplog_reader_t *values = NULL;
    stm_error verr = {0};
    s_ok(stm_oplog_reader_new(f->store, NULL, &values, &verr), &verr);
    stm_oplog_reader_set_limit(values, 1u << 30, 10000);
    opbatch_t *vb = stm_opbatch_new();
    size_t vgot = 0;
    s_ok(stm_oplog_reader_next(values, vb, 1000, 1u << 20, &vgot, &verr), &verr);
    assert_int_equal(vgot, 5);
    assert_int_equal(stm_opbatch_count(vb), 4);
    assert_int_equal(stm_opbatch_withheld_count(vb), 1);
    assert_true(stm_opbatch_withheld_at(vb, 0)->here);
    assert_int_equal(stm_opbatch_withheld_at(vb, 0)->seq, 3);
    stm_opbatch_destroy(&vb);
    stm_oplog_reader_destroy(&values);
    /* Its size is told from the stored row: at least what it takes, not much more. */
    oplog_reader_t *reader = NULL;
    stm_error err = {0};
    vector_t *since = stm_vector_new();
    stm_vector_set(since, &A, 2);
    s_ok(stm_oplog_reader_new(f->store, since, &reader, &err), &err);
    stm_oplog_reader_set_limit(reader, 10000, OP_MAX_VALUE_BYTES);
    opbatch_t *batch = stm_opbatch_new();
    size_t got = 0;
    s_ok(stm_oplog_reader_next(reader, batch, 1, 1u << 20, &got, &err), &err);
    assert_int_equal(got, 1);
    assert_int_equal(stm_opbatch_withheld_count(batch), 1);
    const op_withheld *w = stm_opbatch_withheld_at(batch, 0);
    assert_true(w->bytes > 20000 && w->bytes < 22000);
    assert_string_equal(w->table, "t");
    assert_int_equal(w->pk.i, 3);
    assert_int_equal(w->hlc, 20);
    assert_true(stm_id_equal(&w->version_id, &VERSION));
    stm_opbatch_destroy(&batch);
    stm_oplog_reader_destroy(&reader);
    stm_vector_destroy(&since);

    /* A stand-in received for B1-3, stored, then B4: held, read back as a stand-in
     * from wherever a peer stands inside it, counted, and not fetched as operations. */
    op_withheld in = {.origin = B, .seq = 1, .n = 3, .hlc = 40, .version_id = VERSION,
                      .table = "t", .pk = {.type = VALUE_TEXT, .bytes = "k", .len = 1},
                      .bytes = 300000000, .here = true};
    s_ok(stm_oplog_append_withheld(f->log, &in, 1, 3, "t", &err), &err);
    s_append(f, &B, 4, 1, 50);
    s_read_all(f, NULL, 0, 1u << 20, list, sizeof list, calls, sizeof calls);
    assert_string_equal(list, "A1 A2 A3 A4 A5 B4 [B1+3]");
    since = stm_vector_new();
    stm_vector_set(since, &A, 5);
    stm_vector_set(since, &B, 1);
    s_read_all(f, since, 0, 1u << 20, list, sizeof list, calls, sizeof calls);
    assert_string_equal(list, "B4 [B2+2]");
    stm_vector_destroy(&since);
    int64_t b = s_no(f, &B);
    uint64_t end = 0;
    s_ok(stm_oplog_holds(f->log, b, 2, &end, &err), &err);
    assert_int_equal(end, 3);
    opbatch_t *out = stm_opbatch_new();
    bool found = true;
    s_ok(stm_oplog_fetch(f->log, &B, 2, out, &found, &err), &err);
    assert_false(found);
    assert_int_equal(stm_opbatch_count(out), 0);
    stm_opbatch_destroy(&out);
    uint64_t total = 0, parked = 0, withheld = 0;
    s_ok(stm_oplog_counts_withheld(f->store, &total, &parked, &withheld, &err), &err);
    assert_int_equal(total, 9);
    assert_int_equal(withheld, 3);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_append_and_fetch_give_back_every_field),
        T(test_a_row_delete_is_one_operation),
        T(test_holds_names_the_end_of_the_row_change),
        T(test_contiguous_stops_at_the_first_gap),
        T(test_a_duplicate_is_refused_and_the_transaction_goes_on),
        T(test_the_reader_hands_out_exactly_what_the_peer_lacks),
        T(test_the_reader_sends_what_lies_above_a_gap),
        T(test_the_reader_merges_origins_by_clock),
        T(test_batches_keep_to_their_limits_and_never_split_a_row_change),
        T(test_batches_keep_to_the_byte_limit),
        T(test_local_writes_are_read_once_collected),
        T(test_a_damaged_row_change_is_refused_whole),
        T(test_counts_are_of_operations_and_parked_reasons_most_common_first),
        T(test_row_changes_too_large_are_read_as_stand_ins),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
