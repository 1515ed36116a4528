/* Tests of node/mesh's active set: known peers chosen up to k (the bits of how many it
 * knows), only trusted ones; a chosen peer that leaves, or never answers in its trial,
 * let go and replaced, and not chosen again at once; peers that dial in let in up to 2k
 * (those that list this node always, within the descriptors), the rest told it is full;
 * max_learned_peers and the descriptors bound k; and what an inactive peer does not do
 * (no HELLO, no revival by a message, no PING). No sockets: peers are moved by the
 * HELLOs they would send. */
#include "node/config.h"
#include "node/mesh.h"
#include "base/clock.h"
#include "testutil.h"
#include "wireutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static const peer_timing TIMING = {.window = 4,
                                   .batch_ops = 100,
                                   .reconnect_min_ms = 100,
                                   .reconnect_max_ms = 1000,
                                   .peer_timeout_ms = 5000,
                                   .heartbeat_ms = 1000,
                                   .lazy_ms = 1000};

#define TRIAL 6000
#define RETRY 6000

typedef struct {
    lineage_t *local; /* schemas/tasks at v4, the peers' too */
    peer_policy policy;
    mesh_t *m;
    stm_id self;
    int trusted_from; /* ids whose first byte is below this are not trusted */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->local = tu_lineage_dir("schemas/tasks");
    stm_config_policy_default(&f->policy);
    mesh_limits limits = {
        .max_learned = 8, .max_active = SIZE_MAX, .trial_ms = TRIAL, .retry_ms = RETRY};
    f->m = stm_mesh_new(&f->self, &TIMING, &limits, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stm_mesh_destroy(&f->m);
    stm_mesh_destroy(&f->m); /* safe twice */
    stm_lineage_destroy(&f->local);
    free(f);
    return 0;
}

static bool s_trusted(void *ctx, const stm_id *id)
{
    const fixture *f = ctx;
    return id->bytes[0] >= f->trusted_from;
}

/* Peer i's id: spread over the buckets (its first byte), never self's. */
static stm_id s_id(int i)
{
    stm_id id = {{0}};
    id.bytes[0] = (unsigned char)(i * 37 + 1);
    id.bytes[1] = (unsigned char)i;
    return id;
}

static peer_t *s_add_known(fixture *f, int i)
{
    stm_id id = s_id(i);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", 7000 + i);
    return stm_mesh_add(f->m, &id, endpoint, MESH_KNOWN);
}

/* p's HELLO, judged: CONNECTED. */
static void s_hello(fixture *f, peer_t *p, int64_t now)
{
    vector_t *v = stm_vector_new();
    buf_t msg = BUF_INIT;
    wu_encode_hello(&msg, stm_peer_id(p), stm_peer_endpoint(p), "", f->local, v, 0, NULL, 0,
                    false);
    wire_hello h;
    stm_error err = {0};
    assert_int_equal(stm_wire_decode_hello(msg.data, msg.len, &h, &err), STM_OK);
    stm_peer_on_hello(p, &h, f->local, &f->policy, now);
    stm_wire_hello_clear(&h);
    stm_buf_free(&msg);
    stm_vector_destroy(&v);
}

static size_t s_count(const fixture *f, mesh_role role)
{
    size_t count = 0;
    for (size_t i = 0; i < stm_mesh_count(f->m); i++)
        count += stm_mesh_role_at(f->m, i) == role;
    return count;
}

static peer_t *s_first(const fixture *f, mesh_role role)
{
    for (size_t i = 0; i < stm_mesh_count(f->m); i++)
        if (stm_mesh_role_at(f->m, i) == role)
            return stm_mesh_at(f->m, i);
    return NULL;
}

/* Every role agrees with the peer's being active (invariant 1). */
static void s_check_active(const fixture *f)
{
    for (size_t i = 0; i < stm_mesh_count(f->m); i++)
        assert_int_equal(stm_peer_active(stm_mesh_at(f->m, i)),
                         stm_mesh_role_at(f->m, i) != MESH_KNOWN);
}

static void test_known_peers_are_chosen_up_to_k(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 15; i++)
        s_add_known(f, i);
    assert_int_equal(stm_mesh_target(f->m), 4); /* 15: floor(log2 15) + 1 */
    assert_int_equal(s_count(f, MESH_CHOSEN), 0);
    assert_int_equal(stm_peer_hello_at(stm_mesh_at(f->m, 0)), INT64_MAX); /* not dialled */
    stm_mesh_choose(f->m, 100, s_trusted, f);
    assert_int_equal(s_count(f, MESH_CHOSEN), 4);
    assert_int_equal(s_count(f, MESH_KNOWN), 11);
    s_check_active(f);
    peer_t *c = s_first(f, MESH_CHOSEN);
    assert_int_equal(stm_peer_hello_at(c), 100); /* dialled at once */
    /* Choosing again changes nothing. */
    stm_mesh_choose(f->m, 200, s_trusted, f);
    assert_int_equal(s_count(f, MESH_CHOSEN), 4);
    /* One more known: 16 make k 5, and one more is chosen. */
    s_add_known(f, 15);
    stm_mesh_choose(f->m, 300, s_trusted, f);
    assert_int_equal(s_count(f, MESH_CHOSEN), 5);
}

static void test_only_trusted_peers_are_chosen(void **state)
{
    fixture *f = *state;
    f->trusted_from = 256; /* none */
    for (int i = 0; i < 8; i++)
        s_add_known(f, i);
    stm_mesh_choose(f->m, 100, s_trusted, f);
    assert_int_equal(s_count(f, MESH_CHOSEN), 0);
    /* Trusted now (stemma trust add): the next choice looks again. */
    f->trusted_from = 0;
    stm_mesh_touch(f->m);
    stm_mesh_choose(f->m, 200, s_trusted, f);
    assert_int_equal(s_count(f, MESH_CHOSEN), 4);
}

/* All chosen peers of the mesh say HELLO at now (they connect), then BYE at now + 1. */
static void s_all_chosen_leave(fixture *f, int64_t now)
{
    for (size_t i = 0; i < stm_mesh_count(f->m); i++) {
        peer_t *p = stm_mesh_at(f->m, i);
        if (stm_mesh_role_at(f->m, i) != MESH_CHOSEN)
            continue;
        s_hello(f, p, now);
        stm_mesh_choose(f->m, now, s_trusted, f); /* seen connected in its role */
        assert_true(stm_peer_on_bye(p, now + 1));
    }
}

static void test_a_chosen_peer_that_leaves_is_replaced(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 3; i++)
        s_add_known(f, i);
    assert_int_equal(stm_mesh_target(f->m), 2);
    stm_mesh_choose(f->m, 100, s_trusted, f);
    assert_int_equal(s_count(f, MESH_CHOSEN), 2);
    peer_t *gone = s_first(f, MESH_CHOSEN), *spare = s_first(f, MESH_KNOWN);
    s_hello(f, gone, 200);
    stm_mesh_choose(f->m, 300, s_trusted, f);
    assert_true(stm_peer_on_bye(gone, 400));
    stm_mesh_choose(f->m, 500, s_trusted, f);
    /* Let go: known, inactive; the one it only knew chosen in its place at once. */
    assert_int_equal(stm_mesh_role_of(f->m, gone), MESH_KNOWN);
    assert_false(stm_peer_active(gone));
    assert_int_equal(stm_peer_hello_at(gone), INT64_MAX);
    assert_int_equal(stm_mesh_role_of(f->m, spare), MESH_CHOSEN);
    assert_int_equal(stm_peer_hello_at(spare), 500);
    assert_int_equal(s_count(f, MESH_CHOSEN), 2);
    s_check_active(f);
    /* A message from it revives nothing (peer.c, invariant 8). */
    stm_peer_heard(gone, 600);
    assert_int_equal(stm_peer_get_state(gone), PEER_GONE);
    /* The other two leave too: none is left to choose until the first's retry time. */
    s_all_chosen_leave(f, 700);
    stm_mesh_choose(f->m, 800, s_trusted, f);
    assert_int_equal(s_count(f, MESH_CHOSEN), 0);
    assert_int_equal(stm_mesh_choose_at(f->m), 500 + RETRY);
    stm_mesh_choose(f->m, 500 + RETRY - 1, s_trusted, f);
    assert_int_equal(stm_mesh_role_of(f->m, gone), MESH_KNOWN);
    stm_mesh_choose(f->m, 500 + RETRY, s_trusted, f);
    assert_int_equal(stm_mesh_role_of(f->m, gone), MESH_CHOSEN);
}

static void test_a_chosen_peer_that_never_answers_is_let_go_after_its_trial(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 3; i++)
        s_add_known(f, i);
    assert_int_equal(stm_mesh_target(f->m), 2);
    stm_mesh_choose(f->m, 1000, s_trusted, f);
    assert_int_equal(s_count(f, MESH_CHOSEN), 2);
    peer_t *silent = s_first(f, MESH_CHOSEN);
    for (size_t i = 0; i < stm_mesh_count(f->m); i++)
        if (stm_mesh_role_at(f->m, i) == MESH_CHOSEN && stm_mesh_at(f->m, i) != silent)
            s_hello(f, stm_mesh_at(f->m, i), 1100);
    assert_int_equal(stm_mesh_choose_at(f->m), 1000 + TRIAL);
    stm_mesh_choose(f->m, 1000 + TRIAL - 1, s_trusted, f);
    assert_int_equal(stm_mesh_role_of(f->m, silent), MESH_CHOSEN);
    stm_mesh_choose(f->m, 1000 + TRIAL, s_trusted, f);
    assert_int_equal(stm_mesh_role_of(f->m, silent), MESH_KNOWN);
    assert_int_equal(s_count(f, MESH_CHOSEN), 2); /* the third in its place */
}

static void test_peers_that_dial_in_are_let_in_up_to_twice_k(void **state)
{
    fixture *f = *state;
    peer_t *p[12];
    for (int i = 0; i < 12; i++)
        p[i] = s_add_known(f, i);
    size_t k = stm_mesh_target(f->m);
    assert_int_equal(k, 4);
    /* None chosen yet (no choice ran): 2k let in, then full. */
    for (size_t i = 0; i < 2 * k; i++)
        assert_true(stm_mesh_admit(f->m, p[i], false, 100));
    assert_false(stm_mesh_admit(f->m, p[2 * k], false, 100));
    assert_int_equal(stm_mesh_role_of(f->m, p[2 * k]), MESH_KNOWN);
    assert_false(stm_peer_active(p[2 * k]));
    /* One that lists this node is let in all the same. */
    assert_true(stm_mesh_admit(f->m, p[2 * k + 1], true, 100));
    assert_int_equal(stm_mesh_role_of(f->m, p[2 * k + 1]), MESH_LISTED);
    assert_int_equal(s_count(f, MESH_DIALLED_IN), 2 * k);
    s_check_active(f);
    /* With 2k learned peers kept, the choice adds none. */
    stm_mesh_choose(f->m, 200, s_trusted, f);
    assert_int_equal(s_count(f, MESH_CHOSEN), 0);
    /* One that dialled in said it does not keep us: known again, and room for one. */
    stm_mesh_declined(f->m, p[0], 300);
    assert_int_equal(stm_mesh_role_of(f->m, p[0]), MESH_KNOWN);
    assert_true(stm_mesh_admit(f->m, p[2 * k], false, 400));
}

static void test_configured_peers_are_kept_and_count_only_against_descriptors(void **state)
{
    fixture *f = *state;
    stm_mesh_destroy(&f->m);
    /* Room for three active peers, two of them configured: one learned at most. */
    mesh_limits limits = {.max_learned = 8, .max_active = 3, .trial_ms = TRIAL, .retry_ms = RETRY};
    f->m = stm_mesh_new(&f->self, &TIMING, &limits, NULL);
    stm_id a = s_id(100), b = s_id(101);
    peer_t *pa = stm_mesh_add(f->m, &a, "tcp://127.0.0.1:1", MESH_CONFIGURED);
    stm_mesh_add(f->m, &b, "tcp://127.0.0.1:2", MESH_CONFIGURED);
    assert_true(stm_peer_active(pa) && stm_peer_configured(pa));
    assert_int_equal(stm_peer_hello_at(pa), 0);
    for (int i = 0; i < 8; i++)
        s_add_known(f, i);
    assert_int_equal(stm_mesh_target(f->m), 1);
    stm_mesh_choose(f->m, 100, s_trusted, f);
    assert_int_equal(s_count(f, MESH_CHOSEN), 1);
    /* Full: not even a peer that lists this node is let in. */
    peer_t *known = s_first(f, MESH_KNOWN);
    assert_false(stm_mesh_admit(f->m, known, true, 200));
    /* Configured peers are never let go, gone or not; and `stemma peer remove` makes
     * one known. */
    s_hello(f, pa, 300);
    assert_true(stm_peer_on_bye(pa, 400));
    stm_mesh_choose(f->m, 500, s_trusted, f);
    assert_int_equal(stm_mesh_role_of(f->m, pa), MESH_CONFIGURED);
    assert_true(stm_peer_hello_at(pa) < INT64_MAX);
    stm_mesh_set_configured(f->m, pa, false, 600);
    assert_int_equal(stm_mesh_role_of(f->m, pa), MESH_KNOWN);
    assert_false(stm_peer_configured(pa));
    stm_mesh_set_configured(f->m, pa, true, 700);
    assert_int_equal(stm_peer_hello_at(pa), 700);
}

static void test_max_learned_peers_bounds_k(void **state)
{
    fixture *f = *state;
    stm_mesh_destroy(&f->m);
    mesh_limits limits = {
        .max_learned = 0, .max_active = SIZE_MAX, .trial_ms = TRIAL, .retry_ms = RETRY};
    f->m = stm_mesh_new(&f->self, &TIMING, &limits, NULL);
    peer_t *p[6];
    for (int i = 0; i < 6; i++)
        p[i] = s_add_known(f, i);
    assert_int_equal(stm_mesh_target(f->m), 0);
    stm_mesh_choose(f->m, 100, s_trusted, f);
    assert_int_equal(s_count(f, MESH_CHOSEN), 0);
    assert_false(stm_mesh_admit(f->m, p[0], false, 200)); /* only those that list it */
    assert_true(stm_mesh_admit(f->m, p[1], true, 200));
}

/* A PING only on a link that carried nothing for heartbeat_ms; none to a peer not
 * connected or not kept. */
static void test_pings_go_only_on_idle_links(void **state)
{
    fixture *f = *state;
    peer_t *p = s_add_known(f, 1);
    stm_mesh_choose(f->m, 100, s_trusted, f);
    assert_int_equal(stm_mesh_role_of(f->m, p), MESH_CHOSEN);
    assert_int_equal(stm_peer_ping_at(p), INT64_MAX); /* connecting */
    s_hello(f, p, 200);
    assert_true(stm_peer_ping_at(p) <= 200 + TIMING.heartbeat_ms);
    stm_peer_ping(p, 5000); /* no socket yet: tried all the same, not again at once */
    assert_int_equal(stm_peer_ping_at(p), 5000 + TIMING.heartbeat_ms);
    /* A message that leaves (queued on its DEALER, which dials a port nothing listens
     * on) puts its PING off by a heartbeat from then. */
    void *ctx = zmq_ctx_new();
    peer_self self = {.ctx = ctx, .id = &f->self, .insecure = true};
    stm_error err = {0};
    assert_int_equal(stm_peer_open(p, &self, 5000, &err), STM_OK);
    buf_t msg = BUF_INIT;
    stm_wire_encode_empty(&msg, WIRE_BYE);
    int64_t before = stm_monotime_ms();
    assert_true(stm_peer_send(p, &msg));
    int64_t after = stm_monotime_ms();
    stm_buf_free(&msg);
    assert_true(stm_peer_ping_at(p) >= before + TIMING.heartbeat_ms);
    assert_true(stm_peer_ping_at(p) <= after + TIMING.heartbeat_ms);
    /* Not kept any more: no PING, and its DEALER closed. */
    stm_mesh_declined(f->m, p, after);
    assert_int_equal(stm_peer_ping_at(p), INT64_MAX);
    assert_null(stm_peer_socket(p));
    stm_mesh_destroy(&f->m); /* its sockets closed before the context ends */
    zmq_ctx_term(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_known_peers_are_chosen_up_to_k, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_trusted_peers_are_chosen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_chosen_peer_that_leaves_is_replaced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_chosen_peer_that_never_answers_is_let_go_after_its_trial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peers_that_dial_in_are_let_in_up_to_twice_k, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_configured_peers_are_kept_and_count_only_against_descriptors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_learned_peers_bounds_k, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pings_go_only_on_idle_links, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
