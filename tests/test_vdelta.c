/* Tests of the vectors two peers exchange (sync/session.h, invariant 10; docs/protocol.md,
 * "Vector deltas"), without sockets: what one side's session hands out for its vector is
 * encoded, decoded and taken by the other's, as HELLOs, ACKs and VECTORs carry it. The
 * copies converge and stay equal while the vector changes; after the first exchange only
 * changed entries travel; a reconnection keeps deltas; a peer restarted without its
 * memory, a delta over another copy and a digest that does not match each bring the
 * whole vector, after which they converge again; vectors longer than one message go in
 * parts to a peer that takes them and cut (the entries of the highest seq) to one that
 * does not; the digest is the documented one. */
#include "sync/session.h"
#include "sync/vector.h"
#include "sync/vtrack.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "codecutil.h"

/* One side: its vector, and its session with the other. */
typedef struct {
    vtrack_t *mine;
    session_t *s;
} side;

static side s_side(bool deltas)
{
    side x = {stm_vtrack_new(), stm_session_new(4, 100)};
    stm_session_set_deltas(x.s, deltas);
    return x;
}

static void s_side_free(side *x)
{
    stm_vtrack_destroy(&x->mine);
    stm_session_destroy(&x->s);
}

/* A part as the wire gives it to the other side: its entries decoded (cut, as a reader
 * cuts them, over VECTOR_MAX_ENTRIES), the rest copied. */
static vector_msg s_receive(const vector_out *o)
{
    vector_msg m = {0};
    stm_error err = {0};
    assert_int_equal(stm_vector_decode_max(o->entries.data, o->entries.len, VECTOR_MAX_ENTRIES,
                                           &m.entries, &m.cut, &err),
                     STM_OK);
    m.delta = o->delta;
    m.base = o->base;
    m.has_digest = o->has_digest;
    m.digest = o->digest;
    m.more = o->more;
    m.part = o->part;
    return m;
}

/* What `from` sends `to` of its vector now (an ACK's, a HELLO's, VECTORs after it),
 * taken in order; the results of each take, and how many entries travelled. */
typedef struct {
    size_t parts, entries;
    bool asked;  /* some take asked for the whole */
    bool delta;  /* the first part was a delta */
} s_sent;

static s_sent s_send(side *from, side *to)
{
    s_sent r = {0};
    const vector_out *parts;
    r.parts = stm_session_vector_out(from->s, from->mine, &parts);
    r.delta = parts[0].delta;
    for (size_t i = 0; i < r.parts; i++) {
        vector_msg m = s_receive(&parts[i]);
        r.entries += stm_vector_count(m.entries);
        if (stm_session_take_vector(to->s, &m) == SESSION_VECTOR_ASK)
            r.asked = true;
        assert_null(m.entries); /* taken */
    }
    stm_session_vector_sent(from->s);
    return r;
}

/* to holds exactly from's vector, and knows it does (its digest). */
static void s_assert_holds(const side *to, const side *from)
{
    const vector_t *theirs = stm_session_theirs(to->s);
    size_t nonzero = 0;
    for (size_t i = 0; i < stm_vtrack_count(from->mine); i++) {
        const vector_entry *e = stm_vtrack_at(from->mine, i);
        assert_true(stm_vector_get(theirs, &e->origin) == e->seq);
        nonzero += e->seq > 0;
    }
    size_t held = 0;
    for (size_t i = 0; i < stm_vector_count(theirs); i++)
        held += stm_vector_at(theirs, i)->seq > 0;
    assert_int_equal(held, nonzero);
    vector_digest know, mine;
    assert_true(stm_session_knows_theirs(to->s, &know));
    stm_vtrack_digest(from->mine, &mine);
    assert_true(stm_vector_digest_equal(&know, &mine));
}

/* Raises k random entries of x's vector, some of them new origins. */
static void s_change(side *x, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        stm_id o = cu_id((unsigned)(cu_rand() % 5000));
        stm_vtrack_set(x->mine, &o, stm_vtrack_get(x->mine, &o) + 1 + cu_rand() % 7);
    }
    stm_vtrack_settle(x->mine);
}

/* The digest as docs/protocol.md defines it, written out: SipHash-2-4-128 of origin and
 * seq (big-endian) under "stemma vector v1", halves summed as little-endian numbers. */
static void test_the_digest_is_the_documented_one(void **state)
{
    (void)state;
    cu_seed(11);
    vtrack_t *vt = stm_vtrack_new();
    uint64_t lanes[2] = {0, 0};
    static const unsigned char key[16] = "stemma vector v1";
    for (unsigned i = 0; i < 300; i++) {
        stm_id o = cu_id(i);
        uint64_t seq = i % 10 == 0 ? 0 : 1 + cu_rand() % 1000000;
        stm_vtrack_set(vt, &o, 5); /* changed again below: the digest follows */
        stm_vtrack_set(vt, &o, seq);
        if (!seq)
            continue; /* absent */
        unsigned char m[40], h[16];
        memcpy(m, o.bytes, 32);
        for (int b = 0; b < 8; b++)
            m[32 + b] = (unsigned char)(seq >> (56 - 8 * b));
        crypto_shorthash_siphashx24(h, m, sizeof m, key);
        for (int k = 0; k < 2; k++) {
            uint64_t v = 0;
            for (int b = 7; b >= 0; b--)
                v = v << 8 | h[8 * k + b];
            lanes[k] += v;
        }
    }
    stm_vtrack_settle(vt);
    vector_digest d, of;
    stm_vtrack_digest(vt, &d);
    assert_true(d.lane[0] == lanes[0] && d.lane[1] == lanes[1]);
    /* The same counted over a copy, whatever the order entries were set in. */
    vector_t *copy = stm_vtrack_copy(vt);
    stm_vector_digest_of(copy, &of);
    assert_true(stm_vector_digest_equal(&d, &of));
    unsigned char bytes[VECTOR_DIGEST_BYTES];
    stm_vector_digest_bytes(&d, bytes);
    stm_vector_digest_from(&of, bytes);
    assert_true(stm_vector_digest_equal(&d, &of));
    vector_digest empty = {{0, 0}};
    vtrack_t *none = stm_vtrack_new();
    stm_vtrack_digest(none, &of);
    assert_true(stm_vector_digest_equal(&empty, &of));
    stm_vtrack_destroy(&none);
    stm_vector_destroy(&copy);
    stm_vtrack_destroy(&vt);
}

/* After the first exchange (whole), only the entries that changed travel, or none; the
 * copy stays equal at every step. */
static void test_deltas_converge(void **state)
{
    (void)state;
    cu_seed(1);
    side a = s_side(true), b = s_side(true);
    s_change(&a, 2000);
    s_sent first = s_send(&a, &b);
    assert_false(first.delta);
    assert_int_equal(first.entries, stm_vtrack_count(a.mine));
    s_assert_holds(&b, &a);
    for (int round = 0; round < 50; round++) {
        size_t k = round % 5 == 0 ? 0 : (size_t)(cu_rand() % 30);
        uint64_t gen = stm_vtrack_gen(a.mine);
        s_change(&a, k);
        size_t changed = stm_vtrack_changed_count(a.mine, gen);
        s_sent r = s_send(&a, &b);
        assert_true(r.delta);
        assert_false(r.asked);
        assert_int_equal(r.parts, 1);
        assert_int_equal(r.entries, changed); /* 0 when nothing changed: the digest */
        s_assert_holds(&b, &a);
    }
    s_side_free(&a);
    s_side_free(&b);
}

/* A reconnection: each side's HELLO says it holds the other's (vknow), so the next goes
 * as a delta, and the HELLO continues what was sent (no walk from the start). */
static void test_a_reconnection_keeps_deltas(void **state)
{
    (void)state;
    cu_seed(2);
    side a = s_side(true), b = s_side(true);
    s_change(&a, 500);
    s_send(&a, &b);
    s_change(&a, 10);
    /* b's HELLO to a: it knows a's vector as a last sent it. */
    vector_digest know;
    assert_true(stm_session_knows_theirs(b.s, &know));
    stm_session_told_knows(a.s, &know);
    s_sent r = s_send(&a, &b); /* a's answer */
    assert_true(r.delta);
    assert_true(r.entries <= 10);
    stm_session_on_hello(b.s);
    s_assert_holds(&b, &a);
    s_side_free(&a);
    s_side_free(&b);
}

/* What a sent while the connection went down was lost (a connection dialled anew drops
 * what waited in it): b's HELLO knows one of the vectors sent before, and a goes on with
 * a delta from that one, not the whole. */
static void test_a_reconnection_after_lost_messages_keeps_deltas(void **state)
{
    (void)state;
    cu_seed(7);
    side a = s_side(true), b = s_side(true);
    s_change(&a, 500);
    s_send(&a, &b);
    uint64_t gen = stm_vtrack_gen(a.mine);
    for (int lost = 0; lost < 3; lost++) { /* sent, never received */
        s_change(&a, 5);
        const vector_out *parts;
        stm_session_vector_out(a.s, a.mine, &parts);
    }
    vector_digest know;
    assert_true(stm_session_knows_theirs(b.s, &know));
    stm_session_told_knows(a.s, &know);
    s_change(&a, 2);
    s_sent r = s_send(&a, &b);
    assert_true(r.delta);
    assert_false(r.asked);
    assert_int_equal(r.entries, stm_vtrack_changed_count(a.mine, gen));
    s_assert_holds(&b, &a);
    s_side_free(&a);
    s_side_free(&b);
}

/* b restarted and lost what it held: its HELLO knows nothing of a's, so a's answer goes
 * whole; and a delta a sends a restarted b before hearing so is not taken: b asks, and
 * the whole one follows. Both converge. */
static void test_a_peer_restarted_without_its_memory_gets_the_whole(void **state)
{
    (void)state;
    cu_seed(3);
    side a = s_side(true), b = s_side(true);
    s_change(&a, 800);
    s_send(&a, &b);
    s_assert_holds(&b, &a);
    /* Restarted: a new session, knowing nothing. */
    stm_session_destroy(&b.s);
    b.s = stm_session_new(4, 100);
    stm_session_set_deltas(b.s, true);
    vector_digest know;
    assert_false(stm_session_knows_theirs(b.s, &know));
    stm_session_told_knows(a.s, NULL); /* its HELLO has no vknow */
    s_change(&a, 5);
    s_sent r = s_send(&a, &b);
    assert_false(r.delta);
    assert_int_equal(r.entries, stm_vtrack_count(a.mine));
    s_assert_holds(&b, &a);

    /* Again, but a sends before hearing b's HELLO: a delta over nothing b holds. */
    stm_session_destroy(&b.s);
    b.s = stm_session_new(4, 100);
    stm_session_set_deltas(b.s, true);
    s_change(&a, 5);
    r = s_send(&a, &b);
    assert_true(r.delta);
    assert_true(r.asked); /* b's VECTOR carries vneed */
    assert_false(stm_session_knows_theirs(b.s, &know));
    stm_session_vector_lost(a.s);
    r = s_send(&a, &b);
    assert_false(r.delta);
    assert_false(r.asked);
    s_assert_holds(&b, &a);
    /* Asked once until a whole one comes: another delta it cannot take asks nothing. */
    stm_session_destroy(&b.s);
    b.s = stm_session_new(4, 100);
    stm_session_set_deltas(b.s, true);
    s_change(&a, 3);
    assert_true(s_send(&a, &b).asked);
    s_change(&a, 3);
    assert_false(s_send(&a, &b).asked);
    s_side_free(&a);
    s_side_free(&b);
}

/* A delta whose result does not have the digest it says (a copy that drifted, a lost
 * message) is asked for whole, which brings both back in step. */
static void test_a_digest_that_does_not_match_falls_back_to_the_whole(void **state)
{
    (void)state;
    cu_seed(4);
    side a = s_side(true), b = s_side(true);
    s_change(&a, 300);
    s_send(&a, &b);
    s_change(&a, 4);
    const vector_out *parts;
    size_t n = stm_session_vector_out(a.s, a.mine, &parts);
    assert_int_equal(n, 1);
    assert_true(parts[0].delta);
    vector_msg m = s_receive(&parts[0]);
    m.digest.lane[1] ^= 1; /* not what b will count */
    assert_int_equal(stm_session_take_vector(b.s, &m), SESSION_VECTOR_ASK);
    vector_digest know;
    assert_false(stm_session_knows_theirs(b.s, &know));
    /* a answers vneed with the whole. */
    stm_session_vector_lost(a.s);
    s_sent r = s_send(&a, &b);
    assert_false(r.delta);
    s_assert_holds(&b, &a);
    /* A whole one whose digest is not the one b counts: b says so once and asks
     * nothing more (asking again would bring the same). */
    side c = s_side(true);
    stm_session_vector_lost(a.s);
    n = stm_session_vector_out(a.s, a.mine, &parts);
    m = s_receive(&parts[0]);
    m.digest.lane[0] ^= 1;
    assert_int_equal(stm_session_take_vector(c.s, &m), SESSION_VECTOR_DIFFERS);
    assert_false(stm_session_knows_theirs(c.s, &know));
    m = s_receive(&parts[0]);
    m.digest.lane[0] ^= 1;
    assert_int_equal(stm_session_take_vector(c.s, &m), SESSION_VECTOR_TAKEN);
    s_side_free(&a);
    s_side_free(&b);
    s_side_free(&c);
}

/* More origins than one message carries: to a peer that takes parts, the whole goes in
 * parts of VECTOR_PART_ENTRIES, each over the ones before it; to one that does not (an
 * older stemma, which refused more than VECTOR_MAX_ENTRIES), the VECTOR_MAX_ENTRIES of
 * the highest seq, which its reader takes; a reader given more keeps VECTOR_MAX_ENTRIES
 * of them and drops the rest, never refusing the message. */
static void test_more_origins_than_one_message_carries(void **state)
{
    (void)state;
    cu_seed(5);
    size_t count = VECTOR_MAX_ENTRIES + 1000;
    side a = s_side(true), b = s_side(true), old = s_side(false);
    for (size_t i = 0; i < count; i++) {
        stm_id o;
        randombytes_buf(o.bytes, sizeof o.bytes);
        stm_vtrack_set(a.mine, &o, i < 1000 ? 1 : 2 + cu_rand() % 50);
    }
    stm_vtrack_settle(a.mine);
    s_sent r = s_send(&a, &b);
    assert_int_equal(r.parts, (count + VECTOR_PART_ENTRIES - 1) / VECTOR_PART_ENTRIES);
    assert_int_equal(r.entries, count);
    s_assert_holds(&b, &a);
    /* Then deltas, as for any vector. */
    uint64_t gen = stm_vtrack_gen(a.mine);
    stm_id some = stm_vtrack_at(a.mine, 77)->origin;
    stm_vtrack_set(a.mine, &some, 1000);
    r = s_send(&a, &b);
    assert_true(r.delta);
    assert_int_equal(r.entries, stm_vtrack_changed_count(a.mine, gen));
    s_assert_holds(&b, &a);

    /* The older peer: one message, cut to the highest seqs, which a strict reader takes. */
    const vector_out *parts;
    assert_int_equal(stm_session_vector_out(old.s, a.mine, &parts), 1);
    assert_true(parts[0].part);
    assert_false(parts[0].has_digest);
    vector_t *got = NULL;
    stm_error err = {0};
    assert_int_equal(stm_vector_decode(parts[0].entries.data, parts[0].entries.len, &got, &err),
                     STM_OK);
    assert_int_equal(stm_vector_count(got), VECTOR_MAX_ENTRIES);
    for (size_t i = 0; i < stm_vector_count(got); i++)
        assert_true(stm_vector_at(got, i)->seq >= 2); /* the 1,000 of seq 1 left out */
    stm_vector_destroy(&got);

    /* A reader given all of them in one message keeps VECTOR_MAX_ENTRIES. */
    buf_t all = BUF_INIT;
    vector_t *copy = stm_vtrack_copy(a.mine);
    stm_vector_encode(copy, &all);
    size_t cut = 0;
    assert_int_equal(stm_vector_decode_max(all.data, all.len, VECTOR_MAX_ENTRIES, &got, &cut, &err),
                     STM_OK);
    assert_int_equal(stm_vector_count(got), VECTOR_MAX_ENTRIES);
    assert_int_equal(cut, count - VECTOR_MAX_ENTRIES);
    stm_vector_destroy(&got);
    /* Taken as a whole cut by its reader: held in part, nothing asked. */
    vector_msg m = {0};
    assert_int_equal(stm_vector_decode_max(all.data, all.len, VECTOR_MAX_ENTRIES, &m.entries,
                                           &m.cut, &err),
                     STM_OK);
    side c = s_side(false);
    assert_int_equal(stm_session_take_vector(c.s, &m), SESSION_VECTOR_TAKEN);
    assert_int_equal(stm_session_vectors_cut(c.s), count - VECTOR_MAX_ENTRIES);
    vector_digest know;
    assert_false(stm_session_knows_theirs(c.s, &know));
    stm_buf_free(&all);
    stm_vector_destroy(&copy);
    s_side_free(&a);
    s_side_free(&b);
    s_side_free(&old);
    s_side_free(&c);
}

/* Before a peer's HELLO says what it takes, the first vector sent it holds at most
 * VECTOR_PART_ENTRIES entries, marked as a part; once it says it takes parts, the whole
 * follows. */
static void test_a_first_hello_carries_one_part(void **state)
{
    (void)state;
    cu_seed(6);
    side a = {stm_vtrack_new(), stm_session_new(4, 100)}, b = s_side(true);
    for (size_t i = 0; i < VECTOR_PART_ENTRIES + 10; i++) {
        stm_id o;
        randombytes_buf(o.bytes, sizeof o.bytes);
        stm_vtrack_set(a.mine, &o, 1 + i % 3);
    }
    stm_vtrack_settle(a.mine);
    s_sent r = s_send(&a, &b);
    assert_int_equal(r.parts, 1);
    assert_int_equal(r.entries, VECTOR_PART_ENTRIES);
    vector_digest know;
    assert_false(stm_session_knows_theirs(b.s, &know));
    assert_false(stm_session_vector_synced(a.s));
    /* b's answer lists vdelta.v1 and has no vknow: the whole goes. */
    stm_session_set_deltas(a.s, true);
    stm_session_told_knows(a.s, NULL);
    r = s_send(&a, &b);
    assert_int_equal(r.parts, 2);
    s_assert_holds(&b, &a);
    s_side_free(&a);
    s_side_free(&b);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_digest_is_the_documented_one),
        cmocka_unit_test(test_deltas_converge),
        cmocka_unit_test(test_a_reconnection_keeps_deltas),
        cmocka_unit_test(test_a_reconnection_after_lost_messages_keeps_deltas),
        cmocka_unit_test(test_a_peer_restarted_without_its_memory_gets_the_whole),
        cmocka_unit_test(test_a_digest_that_does_not_match_falls_back_to_the_whole),
        cmocka_unit_test(test_more_origins_than_one_message_carries),
        cmocka_unit_test(test_a_first_hello_carries_one_part),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
