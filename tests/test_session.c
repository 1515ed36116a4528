/* Tests of sync/session and sync/inbound without sockets: node A sends what node B
 * lacks through buffers the test carries, B stores it and acknowledges. Covers the
 * window, acknowledging only after the commit, resending after lost ACKs, restarts
 * on HELLO, and vectors advancing until nothing is left. */
#include "dbutil.h"
#include "sync/apply.h"
#include "sync/codec.h"
#include "sync/feed.h"
#include "sync/inbound.h"
#include "sync/oplog.h"
#include "sync/session.h"
#include "sync/vector.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\n";

#define ROWS 5
#define WINDOW 2
#define TIMEOUT_MS 1000

/* An OPS on its way from A to B: its number and encoded batch. */
typedef struct {
    uint64_t seq;
    buf_t bytes;
} wire_msg;

/* An ACK on its way from B to A. */
typedef struct {
    uint64_t seq;
    vector_t *vector;
} wire_ack;

typedef struct {
    char *dir;
    char a_path[4200], b_path[4200];
    store_t *a, *b;
    feed_t *a_feed, *b_feed; /* what each sends, as a node keeps it (feed.h) */
    applier_t *b_applier;
    session_t *ab;      /* A's session with B: A sends */
    session_t *ba;      /* B's session with A: B receives */
    inbound_t *inbound; /* B's */
    wire_msg msgs[64];
    size_t nmsgs;
    wire_ack acks[64];
    size_t nacks;
    bool check_committed; /* the ack callback checks B's rows from another connection */
    long long committed_seen;
} fixture;

static void s_ok(stm_err rc, const stm_error *err)
{
    if (rc != STM_OK)
        fail_msg("%s", err->msg);
}

static vector_t *s_copy(const vector_t *v)
{
    vector_t *c = stm_vector_new();
    for (size_t i = 0; i < stm_vector_count(v); i++)
        stm_vector_set(c, &stm_vector_at(v, i)->origin, stm_vector_at(v, i)->seq);
    return c;
}

/* The rows of t in path, counted on a connection of its own: what is committed. */
static long long s_committed_rows(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    long long n = -1;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
        n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
}

/* A vector as a message carries it whole, taken by session s. */
static void s_take_whole(session_t *s, const vector_t *v)
{
    vector_msg m = {0};
    m.entries = s_copy(v);
    assert_int_equal(stm_session_take_vector(s, &m), SESSION_VECTOR_TAKEN);
}

/* A HELLO carrying vector v, whole. */
static void s_hello(session_t *s, const vector_t *v)
{
    s_take_whole(s, v);
    stm_session_on_hello(s);
}

/* Writes to A as the application would, collected by an applier telling A's feed (as a
 * node's does). */
static void s_write_a(fixture *f, const char *sql)
{
    du_exec(f->a_path, sql);
    stm_error err = {0};
    applier_t *a_applier = stm_applier_new(f->a, NULL, NULL);
    stm_applier_set_listener(a_applier, stm_feed_listener(f->a_feed));
    s_ok(stm_applier_catch_up(a_applier, &err), &err);
    stm_applier_destroy(&a_applier);
}

/* B's ack callback: what the node would put in an ACK message (B's vector whole, from
 * its feed, which the commit told). */
static void s_ack(void *ctx, void *sender, uint64_t seq, const opbatch_t *batch,
                  const apply_stats *stats)
{
    fixture *f = ctx;
    vector_t *vector = stm_vtrack_copy(stm_feed_vector(f->b_feed));
    assert_ptr_equal(sender, f->ba);
    if (f->check_committed)
        f->committed_seen = s_committed_rows(f->b_path);
    stm_session_on_stored(f->ba, stm_opbatch_count(batch), stats->parked);
    assert_true(f->nacks < 64);
    f->acks[f->nacks].seq = seq;
    f->acks[f->nacks].vector = vector;
    f->nacks++;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    snprintf(f->a_path, sizeof f->a_path, "%s/a.db", f->dir);
    snprintf(f->b_path, sizeof f->b_path, "%s/b.db", f->dir);
    f->a = du_setup(f->a_path, SCHEMA, NULL);
    f->b = du_setup(f->b_path, SCHEMA, NULL);
    for (int i = 1; i <= ROWS; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO t VALUES (%d, 'row %d')", i, i);
        du_exec(f->a_path, sql);
    }
    stm_error err = {0};
    applier_t *a_applier = stm_applier_new(f->a, NULL, NULL);
    s_ok(stm_applier_catch_up(a_applier, &err), &err);
    stm_applier_destroy(&a_applier);
    s_ok(stm_feed_open(f->a, &f->a_feed, &err), &err);
    s_ok(stm_feed_open(f->b, &f->b_feed, &err), &err);
    f->b_applier = stm_applier_new(f->b, NULL, NULL);
    stm_applier_set_listener(f->b_applier, stm_feed_listener(f->b_feed));
    /* One row change a batch, so that ROWS batches carry everything. */
    f->ab = stm_session_new(WINDOW, 1);
    f->ba = stm_session_new(WINDOW, 1);
    f->inbound = stm_inbound_new(50);
    stm_inbound_watch(f->inbound, f->b);
    /* Nothing goes before B's HELLO says what it holds. */
    assert_false(stm_session_wants_to_send(f->ab));
    vector_t *b_vector = NULL;
    s_ok(stm_vector_read(f->b, &b_vector, &err), &err);
    s_hello(f->ab, b_vector);
    stm_vector_destroy(&b_vector);
    *state = f;
    return 0;
}

static void s_drop_wire(fixture *f)
{
    for (size_t i = 0; i < f->nmsgs; i++)
        stm_buf_free(&f->msgs[i].bytes);
    f->nmsgs = 0;
    for (size_t i = 0; i < f->nacks; i++)
        stm_vector_destroy(&f->acks[i].vector);
    f->nacks = 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    s_drop_wire(f);
    stm_inbound_destroy(&f->inbound);
    stm_session_destroy(&f->ab);
    stm_session_destroy(&f->ba);
    stm_applier_destroy(&f->b_applier);
    stm_feed_destroy(&f->a_feed);
    stm_feed_destroy(&f->b_feed);
    stm_store_destroy(&f->a);
    stm_store_destroy(&f->b);
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* A sends what it may (as the node's pump does): returns how many batches left. */
static size_t s_pump(fixture *f, int64_t now)
{
    if (!stm_session_wants_to_send(f->ab))
        return 0;
    stm_error err = {0};
    size_t sent = 0;
    for (;;) {
        buf_t out = BUF_INIT;
        uint64_t seq = 0;
        size_t count = 0;
        bool yielded;
        s_ok(stm_session_next_batch(f->ab, f->a_feed, &out, &seq, &count, &yielded, &err), &err);
        if (count == 0) {
            stm_buf_free(&out);
            break;
        }
        assert_true(f->nmsgs < 64);
        f->msgs[f->nmsgs].seq = seq;
        f->msgs[f->nmsgs].bytes = out;
        f->nmsgs++;
        stm_session_batch_sent(f->ab, now);
        sent++;
    }
    stm_session_rest(f->ab);
    return sent;
}

/* B receives every OPS on the wire (as the node's inbox does) and empties it. */
static void s_deliver_ops(fixture *f)
{
    for (size_t i = 0; i < f->nmsgs; i++) {
        opbatch_t *batch = NULL;
        stm_error err = {0};
        s_ok(stm_session_on_ops(f->ba, f->msgs[i].bytes.data, f->msgs[i].bytes.len, &batch, &err),
             &err);
        assert_true(
            stm_inbound_add(f->inbound, f->ba, f->msgs[i].seq, &batch, f->msgs[i].bytes.len));
        assert_null(batch);
        stm_buf_free(&f->msgs[i].bytes);
    }
    f->nmsgs = 0;
}

/* A receives every ACK on the wire. */
static void s_deliver_acks(fixture *f, int64_t now)
{
    for (size_t i = 0; i < f->nacks; i++) {
        s_take_whole(f->ab, f->acks[i].vector);
        stm_vector_destroy(&f->acks[i].vector);
        stm_session_on_ack(f->ab, f->acks[i].seq, now);
    }
    f->nacks = 0;
}

static stm_id s_node_id(store_t *store)
{
    stm_id id;
    stm_error err = {0};
    s_ok(stm_store_node_id(store, &id, &err), &err);
    return id;
}

static uint64_t s_ops_of(store_t *store)
{
    uint64_t total = 0, parked = 0;
    stm_error err = {0};
    s_ok(stm_oplog_counts(store, &total, &parked, &err), &err);
    return total;
}

static void test_window_is_respected(void **state)
{
    fixture *f = *state;
    assert_true(stm_session_wants_to_send(f->ab));
    assert_int_equal(s_pump(f, 10), WINDOW);
    assert_int_equal(stm_session_in_flight(f->ab), WINDOW);
    assert_false(stm_session_wants_to_send(f->ab));
    assert_int_equal(s_pump(f, 11), 0);
    /* One ACK frees one place. */
    s_deliver_ops(f);
    assert_true(stm_inbound_store(f->inbound, f->b_applier, f->b, s_ack, f));
    assert_int_equal(f->nacks, WINDOW);
    stm_vector_destroy(&f->acks[1].vector);
    f->nacks = 1;
    s_deliver_acks(f, 20);
    assert_int_equal(stm_session_in_flight(f->ab), WINDOW - 1);
    assert_int_equal(s_pump(f, 21), 1);
    assert_int_equal(stm_session_in_flight(f->ab), WINDOW);
    /* The window is full: nothing is handed out. */
    stm_error err = {0};
    buf_t out = BUF_INIT;
    uint64_t seq;
    size_t count = 99;
    bool yielded;
    s_ok(stm_session_next_batch(f->ab, f->a_feed, &out, &seq, &count, &yielded, &err), &err);
    assert_int_equal(count, 0);
    assert_int_equal(out.len, 0);
    stm_buf_free(&out);
}

static void test_acknowledged_only_after_commit(void **state)
{
    fixture *f = *state;
    assert_int_equal(s_pump(f, 0), WINDOW);
    s_deliver_ops(f);
    /* Another program holds B's write lock: the attempt fails, nothing is acknowledged,
     * and everything waits. */
    sqlite3 *holder = NULL;
    assert_int_equal(sqlite3_open(f->b_path, &holder), SQLITE_OK);
    assert_int_equal(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_false(stm_inbound_store(f->inbound, f->b_applier, f->b, s_ack, f));
    assert_int_equal(f->nacks, 0);
    assert_int_equal(stm_inbound_count(f->inbound), WINDOW);
    assert_true(stm_inbound_failing(f->inbound));
    assert_false(stm_inbound_failing_io(f->inbound));
    assert_int_equal(stm_inbound_busy_failures(f->inbound), 1);
    assert_true(stm_inbound_due_at(f->inbound) > 0 && stm_inbound_due_at(f->inbound) < INT64_MAX);
    assert_int_equal(s_committed_rows(f->b_path), 0);
    assert_int_equal(sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(holder);
    /* The next attempt stores both; when each ACK is made, its rows are committed
     * (another connection sees them). */
    f->check_committed = true;
    assert_true(stm_inbound_store(f->inbound, f->b_applier, f->b, s_ack, f));
    assert_int_equal(f->nacks, WINDOW);
    assert_int_equal(f->committed_seen, WINDOW);
    assert_int_equal(f->acks[0].seq, 1);
    assert_int_equal(f->acks[1].seq, 2);
    assert_int_equal(stm_inbound_count(f->inbound), 0);
    assert_false(stm_inbound_failing(f->inbound));
    assert_int_equal(stm_inbound_due_at(f->inbound), INT64_MAX);
    /* Each ACK carries the vector after the commit: both batches of A's. */
    stm_id a_id = s_node_id(f->a);
    assert_true(stm_vector_get(f->acks[0].vector, &a_id) > 0);
    assert_int_equal(stm_vector_get(f->acks[0].vector, &a_id),
                     stm_vector_get(f->acks[1].vector, &a_id));
}

static void test_resend_after_acks_are_lost(void **state)
{
    fixture *f = *state;
    assert_int_equal(s_pump(f, 1000), WINDOW);
    assert_int_equal(stm_session_resend_at(f->ab, TIMEOUT_MS), 1000 + TIMEOUT_MS + 1);
    s_deliver_ops(f);
    assert_true(stm_inbound_store(f->inbound, f->b_applier, f->b, s_ack, f));
    /* Both ACKs are lost: A hears nothing, its window stays full until the deadline. */
    wire_ack late = f->acks[0];
    stm_vector_destroy(&f->acks[1].vector);
    f->nacks = 0;
    assert_false(stm_session_wants_to_send(f->ab));
    stm_session_resend(f->ab);
    assert_int_equal(stm_session_in_flight(f->ab), 0);
    assert_int_equal(stm_session_resend_at(f->ab, TIMEOUT_MS), INT64_MAX);
    /* Sent again from what B last said it holds (nothing): the same rows, new numbers. */
    assert_int_equal(s_pump(f, 3000), WINDOW);
    assert_int_equal(f->msgs[0].seq, 3);
    assert_int_equal(f->msgs[1].seq, 4);
    s_deliver_ops(f);
    assert_true(stm_inbound_store(f->inbound, f->b_applier, f->b, s_ack, f));
    assert_int_equal(stm_session_ops_received(f->ba), stm_session_ops_sent(f->ab));
    /* The late ACK of a forgotten batch says what B holds but frees no place. */
    s_take_whole(f->ab, late.vector);
    stm_vector_destroy(&late.vector);
    stm_session_on_ack(f->ab, late.seq, 3100);
    assert_int_equal(stm_session_in_flight(f->ab), WINDOW);
    s_deliver_acks(f, 3200);
    assert_int_equal(stm_session_in_flight(f->ab), 0);
    /* Storing the same rows twice changed nothing. */
    assert_int_equal(s_committed_rows(f->b_path), WINDOW);
}

static void test_vectors_advance_until_nothing_is_left(void **state)
{
    fixture *f = *state;
    stm_error err = {0};
    stm_id a_id = s_node_id(f->a);
    const vtrack_t *mine = stm_feed_vector(f->a_feed);
    uint64_t total = s_ops_of(f->a);
    assert_true(total >= ROWS);
    assert_int_equal(stm_session_behind(f->ab, mine), total);
    int64_t now = 0;
    uint64_t before = 0;
    for (int round = 0; round < 10 && stm_session_wants_to_send(f->ab); round++) {
        s_pump(f, ++now);
        s_deliver_ops(f);
        stm_inbound_store(f->inbound, f->b_applier, f->b, s_ack, f);
        s_deliver_acks(f, ++now);
        uint64_t got = stm_vector_get(stm_session_theirs(f->ab), &a_id);
        assert_true(got >= before); /* never back */
        before = got;
    }
    assert_false(stm_session_wants_to_send(f->ab));
    assert_int_equal(stm_session_behind(f->ab, mine), 0);
    assert_int_equal(stm_vector_get(stm_session_theirs(f->ab), &a_id), stm_vtrack_get(mine, &a_id));
    assert_int_equal(stm_session_ops_sent(f->ab), total);
    assert_int_equal(stm_session_ops_received(f->ba), total);
    assert_int_equal(stm_session_parked(f->ba), 0);
    assert_int_equal(s_committed_rows(f->b_path), ROWS);
    /* A HELLO with B's vector starts again from it and finds nothing to send. */
    vector_t *b_vector = NULL;
    s_ok(stm_vector_read(f->b, &b_vector, &err), &err);
    s_hello(f->ab, b_vector);
    assert_true(stm_session_wants_to_send(f->ab));
    assert_int_equal(s_pump(f, ++now), 0);
    assert_false(stm_session_wants_to_send(f->ab));
    /* A local write makes more to send. */
    stm_session_mark_more(f->ab);
    assert_true(stm_session_wants_to_send(f->ab));
    stm_vector_destroy(&b_vector);
}

static void test_hello_forgets_batches_in_flight(void **state)
{
    fixture *f = *state;
    assert_int_equal(s_pump(f, 5), WINDOW);
    vector_t *empty = stm_vector_new();
    s_hello(f->ab, empty);
    stm_vector_destroy(&empty);
    assert_int_equal(stm_session_in_flight(f->ab), 0);
    assert_int_equal(stm_session_resend_at(f->ab, TIMEOUT_MS), INT64_MAX);
    s_drop_wire(f);
    /* Numbers go on; the rows go again from the start. */
    assert_int_equal(s_pump(f, 6), WINDOW);
    assert_int_equal(f->msgs[0].seq, WINDOW + 1);
}

/* No echo: what A sent B is A's, so B's session with A never reads it back, even when
 * A's HELLO was older than A's writes; and an operation above a gap raises nothing. */
static void test_what_a_peer_sent_is_not_sent_back(void **state)
{
    fixture *f = *state;
    stm_error err = {0};
    /* A's HELLO to B said it held nothing (it was sent before A wrote). */
    vector_t *empty = stm_vector_new();
    s_hello(f->ba, empty);
    stm_vector_destroy(&empty);
    int64_t now = 0;
    for (int round = 0; round < 10 && stm_session_wants_to_send(f->ab); round++) {
        s_pump(f, ++now);
        s_deliver_ops(f);
        stm_inbound_store(f->inbound, f->b_applier, f->b, s_ack, f);
        s_deliver_acks(f, ++now);
    }
    assert_int_equal(s_committed_rows(f->b_path), ROWS);
    /* B has every row of A's, and would send A what A lacks: nothing. */
    stm_session_mark_more(f->ba);
    assert_true(stm_session_wants_to_send(f->ba));
    buf_t out = BUF_INIT;
    uint64_t seq = 0;
    size_t count = 0;
    bool yielded;
    s_ok(stm_session_next_batch(f->ba, f->b_feed, &out, &seq, &count, &yielded, &err), &err);
    assert_int_equal(count, 0);
    stm_buf_free(&out);
    stm_session_rest(f->ba);
    stm_id a_id = s_node_id(f->a);
    /* What A sent raised nothing A said (its vector is still the empty one of its
     * HELLO), only what B knows A holds. */
    assert_int_equal(stm_vector_get(stm_session_theirs(f->ba), &a_id), 0);

    /* A batch above a gap: B's session with a fresh peer C learns nothing from it. */
    session_t *bc = stm_session_new(WINDOW, 1);
    vector_t *none = stm_vector_new();
    s_hello(bc, none);
    stm_vector_destroy(&none);
    opbatch_t *gap = stm_opbatch_new();
    op_t op = {0};
    op.origin = a_id;
    op.seq = 3;
    op.table = "t";
    op.column = "v";
    op.affinity = 'T';
    op.hlc = 1;
    op.pk.type = VALUE_INTEGER;
    op.pk.i = 1;
    op.value.type = VALUE_NULL;
    stm_opbatch_add(gap, &op);
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(gap, 0, 1, &enc);
    opbatch_t *decoded = NULL;
    s_ok(stm_session_on_ops(bc, enc.data, enc.len, &decoded, &err), &err);
    assert_int_equal(stm_vector_get(stm_session_theirs(bc), &a_id), 0);
    /* ... so C is still sent A's operations 1 and 2, and 3 too. */
    buf_t to_c = BUF_INIT;
    s_ok(stm_session_next_batch(bc, f->b_feed, &to_c, &seq, &count, &yielded, &err), &err);
    assert_true(count > 0);
    assert_int_equal(stm_opbatch_at(stm_session_pending(bc), 0)->seq, 1);
    stm_session_rest(bc);
    stm_buf_free(&to_c);
    stm_opbatch_destroy(&decoded);
    stm_opbatch_destroy(&gap);
    stm_buf_free(&enc);
    stm_session_destroy(&bc);
}

static void test_malformed_and_full(void **state)
{
    fixture *f = *state;
    opbatch_t *batch = (opbatch_t *)f; /* set to NULL on failure */
    stm_error err = {0};
    assert_int_equal(stm_session_on_ops(f->ba,
                                        "\x81\xa3"
                                        "bad",
                                        5, &batch, &err),
                     STM_EPROTO);
    assert_null(batch);
    assert_true(err.msg[0] != '\0');
    /* A queue at its bound refuses a batch and counts it. */
    for (int i = 0; i < INBOUND_MAX_BATCHES; i++) {
        batch = stm_opbatch_new();
        assert_true(stm_inbound_add(f->inbound, f->ba, (uint64_t)i + 1, &batch, 10));
    }
    assert_true(stm_inbound_full(f->inbound, 10));
    batch = stm_opbatch_new();
    assert_false(stm_inbound_add(f->inbound, f->ba, 99, &batch, 10));
    assert_null(batch);
    assert_int_equal(stm_inbound_deferred(f->inbound), 1);
    assert_int_equal(stm_inbound_count(f->inbound), INBOUND_MAX_BATCHES);
}

/* A row change over the session's limit goes as a stand-in (invariant 7): B holds its
 * operations as withheld, its vector moves past them, the rows after it arrive, and
 * nothing is sent again for ever. */
static void test_a_row_change_over_the_limit_goes_as_a_stand_in(void **state)
{
    fixture *f = *state;
    stm_error err = {0};
    /* Row 3 grows to 200 kB, over a limit of 100 kB; rows 6 and 7 come after it. */
    s_write_a(f, "UPDATE t SET v = printf('%.*c', 200000, 'x') WHERE id = 3;"
                 "INSERT INTO t VALUES (6, 'six'), (7, 'seven')");
    stm_session_set_limit(f->ab, 100000, OP_MAX_VALUE_BYTES);
    int64_t now = 0;
    size_t here = 0;
    for (int round = 0; round < 20 && stm_session_wants_to_send(f->ab); round++) {
        /* Pumped by hand to look at each batch as it leaves. */
        for (;;) {
            buf_t out = BUF_INIT;
            uint64_t seq = 0;
            size_t count = 0;
            bool yielded;
            s_ok(stm_session_next_batch(f->ab, f->a_feed, &out, &seq, &count, &yielded, &err),
                 &err);
            if (count == 0) {
                stm_buf_free(&out);
                break;
            }
            assert_true(out.len < 100000); /* nothing over the limit leaves */
            const opbatch_t *pending = stm_session_pending(f->ab);
            for (size_t i = 0; i < stm_opbatch_withheld_count(pending); i++) {
                const op_withheld *w = stm_opbatch_withheld_at(pending, i);
                assert_true(w->here);
                assert_string_equal(w->table, "t");
                assert_int_equal(w->pk.i, 3);
                assert_int_equal(w->n, 1);
                assert_true(w->bytes > 200000);
                here++;
            }
            f->msgs[f->nmsgs].seq = seq;
            f->msgs[f->nmsgs].bytes = out;
            f->nmsgs++;
            stm_session_batch_sent(f->ab, ++now);
        }
        stm_session_rest(f->ab);
        s_deliver_ops(f);
        stm_inbound_store(f->inbound, f->b_applier, f->b, s_ack, f);
        s_deliver_acks(f, ++now);
    }
    assert_int_equal(here, 1);
    assert_false(stm_session_wants_to_send(f->ab));
    /* B has every row, row 3 as it was before the update (that write was withheld). */
    assert_int_equal(s_committed_rows(f->b_path), 7);
    assert_int_equal(du_int(f->b, "SELECT length(v) FROM t WHERE id = 3"), 5);
    /* Its vector holds all of A's: nothing is behind, so nothing comes again. */
    const vtrack_t *mine = stm_feed_vector(f->a_feed);
    assert_int_equal(stm_session_behind(f->ab, mine), 0);
    stm_id a_id = s_node_id(f->a);
    vector_t *b_vector = NULL;
    s_ok(stm_vector_read(f->b, &b_vector, &err), &err);
    assert_int_equal(stm_vector_get(b_vector, &a_id), stm_vtrack_get(mine, &a_id));
    uint64_t total = 0, parked = 0, withheld = 0;
    s_ok(stm_oplog_counts_withheld(f->b, &total, &parked, &withheld, &err), &err);
    assert_int_equal(withheld, 1);
    assert_int_equal(total, s_ops_of(f->a));
    /* A HELLO from B starts again from its vector: nothing is left to send. */
    s_hello(f->ab, b_vector);
    assert_int_equal(s_pump(f, ++now), 0);
    /* B sends the stand-in on to C, which holds it as withheld in turn (it travels
     * on as a stand-in, never as operations, and is not B's to tell: `here` unset). */
    session_t *bc = stm_session_new(WINDOW, 1000);
    vector_t *none = stm_vector_new();
    s_hello(bc, none);
    stm_vector_destroy(&none);
    buf_t out = BUF_INIT;
    uint64_t seq = 0;
    size_t count = 0;
    bool yielded;
    s_ok(stm_session_next_batch(bc, f->b_feed, &out, &seq, &count, &yielded, &err), &err);
    assert_int_equal(count, total);
    const opbatch_t *relayed = stm_session_pending(bc);
    assert_int_equal(stm_opbatch_withheld_count(relayed), 1);
    assert_false(stm_opbatch_withheld_at(relayed, 0)->here);
    assert_true(stm_opbatch_withheld_at(relayed, 0)->bytes > 200000);
    assert_int_equal(stm_opbatch_count(relayed), total - 1);
    stm_buf_free(&out);
    stm_session_destroy(&bc);
    stm_vector_destroy(&b_vector);
}

/* A large batch (one large row change) goes only into an empty window and nothing
 * follows it until it is acknowledged (invariant 8); a sign that it is being received
 * moves the resend deadline, and once all of it arrived the peer is given time to store
 * it (invariant 9). */
static void test_a_large_batch_travels_alone(void **state)
{
    fixture *f = *state;
    stm_error err = {0};
    /* Collected one after the other, so that the small write comes after the large. */
    s_write_a(f, "UPDATE t SET v = printf('%.*c', 20000000, 'x') WHERE id = 2");
    s_write_a(f, "UPDATE t SET v = 'five' WHERE id = 5");
    session_t *ab = stm_session_new(4, 1000);
    vector_t *b_vector = NULL;
    s_ok(stm_vector_read(f->b, &b_vector, &err), &err);
    s_hello(ab, b_vector);
    stm_vector_destroy(&b_vector);
    buf_t out = BUF_INIT;
    uint64_t seq = 0;
    size_t count = 0;
    bool yielded;
    /* The rows before it go in a batch of their own, which leaves. */
    s_ok(stm_session_next_batch(ab, f->a_feed, &out, &seq, &count, &yielded, &err), &err);
    assert_true(count > 0 && out.len < SESSION_LARGE_BYTES);
    stm_session_batch_sent(ab, 1000);
    /* The large one waits for an empty window, and the session waits with it. */
    s_ok(stm_session_next_batch(ab, f->a_feed, &out, &seq, &count, &yielded, &err), &err);
    assert_int_equal(count, 0);
    assert_false(stm_session_wants_to_send(ab));
    stm_session_rest(ab);
    stm_session_on_ack(ab, 1, 1100);
    assert_true(stm_session_wants_to_send(ab));
    s_ok(stm_session_next_batch(ab, f->a_feed, &out, &seq, &count, &yielded, &err), &err);
    assert_int_equal(count, 1);
    assert_true(out.len > 20000000);
    assert_int_equal(stm_opbatch_count(stm_session_pending(ab)), 1);
    stm_session_batch_sent(ab, 2000);
    assert_false(stm_session_wants_to_send(ab)); /* it travels alone */
    /* Resent after the timeout, unless the peer says it is receiving it. */
    assert_int_equal(stm_session_resend_at(ab, TIMEOUT_MS), 2000 + TIMEOUT_MS + 1);
    stm_session_on_received(ab, seq, 1 << 20, 2500);
    assert_int_equal(stm_session_resend_at(ab, TIMEOUT_MS), 2500 + TIMEOUT_MS + 1);
    stm_session_on_received(ab, 0, 1 << 20, 2600); /* of no batch in flight: nothing */
    assert_int_equal(stm_session_resend_at(ab, TIMEOUT_MS), 2500 + TIMEOUT_MS + 1);
    /* All of it arrived: it is being stored, a timeout more for each 16 MiB (and its
     * silence is given as long: node/peer.c). */
    assert_int_equal(stm_session_storing_ms(ab, TIMEOUT_MS), 0);
    stm_session_on_received(ab, seq, out.len, 3000);
    assert_int_equal(stm_session_storing_ms(ab, TIMEOUT_MS),
                     TIMEOUT_MS * (int64_t)(out.len / SESSION_STORE_BYTES));
    assert_int_equal(stm_session_resend_at(ab, TIMEOUT_MS),
                     3000 + TIMEOUT_MS + TIMEOUT_MS * (int64_t)(out.len / SESSION_STORE_BYTES) + 1);
    stm_session_on_ack(ab, seq, 4000);
    assert_int_equal(stm_session_in_flight(ab), 0);
    assert_true(stm_session_wants_to_send(ab));
    /* What follows goes as usual. */
    s_ok(stm_session_next_batch(ab, f->a_feed, &out, &seq, &count, &yielded, &err), &err);
    assert_int_equal(count, 1);
    stm_session_batch_sent(ab, 4100);
    assert_true(stm_session_wants_to_send(ab));
    stm_buf_free(&out);
    stm_session_destroy(&ab);
}

/* The inbound queue takes one batch over its byte bound when it is empty: a large row
 * change is stored, alone, rather than refused for ever. */
static void test_the_inbound_queue_takes_one_large_batch_when_empty(void **state)
{
    fixture *f = *state;
    opbatch_t *batch = stm_opbatch_new();
    assert_false(stm_inbound_full(f->inbound, INBOUND_MAX_BYTES * 2));
    assert_true(stm_inbound_add(f->inbound, f->ba, 1, &batch, INBOUND_MAX_BYTES * 2));
    batch = stm_opbatch_new();
    assert_true(stm_inbound_full(f->inbound, 10));
    assert_false(stm_inbound_add(f->inbound, f->ba, 2, &batch, 10));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_window_is_respected),
        T(test_acknowledged_only_after_commit),
        T(test_resend_after_acks_are_lost),
        T(test_vectors_advance_until_nothing_is_left),
        T(test_hello_forgets_batches_in_flight),
        T(test_what_a_peer_sent_is_not_sent_back),
        T(test_malformed_and_full),
        T(test_a_row_change_over_the_limit_goes_as_a_stand_in),
        T(test_a_large_batch_travels_alone),
        T(test_the_inbound_queue_takes_one_large_batch_when_empty),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
