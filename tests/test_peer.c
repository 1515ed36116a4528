/* Tests of node/peer: the table of legal transitions is the diagram written atop
 * peer.c; each function moves the peer as the diagram says; a migration of our own
 * judges peers again without reviving a gone or refused one; the deadlines the node's
 * timers run on. */
#include "node/config.h"
#include "node/peer.h"
#include "testutil.h"
#include "wireutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static const peer_timing TIMING = {.window = 4,
                                   .batch_ops = 100,
                                   .reconnect_min_ms = 100,
                                   .reconnect_max_ms = 1000,
                                   .peer_timeout_ms = 5000};

typedef struct {
    lineage_t *local;   /* schemas/tasks at v4 */
    lineage_t *v3;      /* the same history at v3: a peer one version behind */
    peer_policy policy; /* the default: v3 syncs fully */
    peer_policy strict; /* min_supported_version 4: v3 is refused */
    peer_t *p;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->local = tu_lineage_dir("schemas/tasks");
    f->v3 = stm_lineage_prefix(f->local, 3);
    stm_config_policy_default(&f->policy);
    stm_config_policy_default(&f->strict);
    f->strict.min_supported_version = 4;
    stm_id id = {{7}};
    f->p = stm_peer_new(&id, "tcp://127.0.0.1:7001", true, &TIMING, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stm_peer_destroy(&f->p);
    stm_peer_destroy(&f->p); /* safe twice */
    stm_lineage_destroy(&f->v3);
    stm_lineage_destroy(&f->local);
    free(f);
    return 0;
}


/* A HELLO from the peer (id 7), at v3, as the wire decodes it. */
static wire_hello s_hello(const fixture *f, bool reply)
{
    stm_id id = {{7}};
    vector_t *v = stm_vector_new();
    stm_vector_set(v, &id, 3);
    buf_t msg = BUF_INIT;
    wu_encode_hello(&msg, &id, "tcp://127.0.0.1:7001", "", f->v3, v, 0, NULL, 0, reply);
    wire_hello h;
    stm_error err = {0};
    assert_int_equal(stm_wire_decode_hello(msg.data, msg.len, &h, &err), STM_OK);
    stm_buf_free(&msg);
    stm_vector_destroy(&v);
    return h;
}

static void s_on_hello(fixture *f, bool reply, const peer_policy *policy, int64_t now)
{
    wire_hello h = s_hello(f, reply);
    stm_peer_on_hello(f->p, &h, f->local, policy, now);
    assert_null(h.lineage); /* taken */
}

static void s_refuse(fixture *f, const char *why)
{
    char *reason = strdup(why);
    stm_peer_on_refuse(f->p, &reason);
    assert_null(reason);
}

/* ---- the table is the diagram ---- */

static int s_state_of(const char *word, size_t len)
{
    static const char *const names[PEER_STATES] = {"CONNECTING", "CONNECTED", "GONE", "REFUSED"};
    for (int s = 0; s < PEER_STATES; s++)
        if (strlen(names[s]) == len && memcmp(names[s], word, len) == 0)
            return s;
    return -1;
}

static void test_table_matches_the_diagram(void **state)
{
    (void)state;
    char *text = tu_read("node/peer.c", NULL);
    assert_non_null(text);
    /* The legend's lines: " *   (x) FROM -> TO ..." */
    bool drawn[PEER_STATES][PEER_STATES] = {{false}};
    int arrows = 0;
    for (char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char letter, from[16], to[16];
        if (sscanf(line, " *   (%c) %15[A-Z] -> %15[A-Z]", &letter, from, to) != 3)
            continue;
        int a = s_state_of(from, strlen(from)), b = s_state_of(to, strlen(to));
        assert_true(a >= 0 && b >= 0);
        assert_false(drawn[a][b]); /* each arrow once in the legend */
        drawn[a][b] = true;
        arrows++;
        /* Its letter labels an arrow in the drawing too (and the legend). */
        char label[4] = {'(', letter, ')', '\0'};
        char *first = strstr(text, label);
        assert_non_null(first);
        assert_non_null(strstr(first + 3, label));
    }
    assert_true(arrows >= 8);
    for (int a = 0; a < PEER_STATES; a++)
        for (int b = 0; b < PEER_STATES; b++) {
            if (stm_peer_transition_legal((peer_state)a, (peer_state)b) != drawn[a][b])
                fail_msg("%s -> %s: the table says %s, the diagram %s",
                         stm_peer_state_name((peer_state)a), stm_peer_state_name((peer_state)b),
                         drawn[a][b] ? "no" : "yes", drawn[a][b] ? "yes" : "no");
        }
    /* What the design rests on. */
    for (int a = 0; a < PEER_STATES; a++)
        assert_false(stm_peer_transition_legal((peer_state)a, PEER_CONNECTING));
    assert_false(stm_peer_transition_legal(PEER_REFUSED, PEER_GONE));
    assert_false(stm_peer_transition_legal(PEER_CONNECTING, PEER_GONE));
    assert_false(stm_peer_transition_legal(PEER_GONE, PEER_GONE));
    assert_false(stm_peer_transition_legal(PEER_STATES, PEER_CONNECTED));
    free(text);
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(stm_peer_state_name(PEER_CONNECTING), "connecting");
    assert_string_equal(stm_peer_state_name(PEER_CONNECTED), "connected");
    assert_string_equal(stm_peer_state_name(PEER_GONE), "gone");
    assert_string_equal(stm_peer_state_name(PEER_REFUSED), "refused");
}

/* ---- each function moves the peer as the diagram says ---- */

static void test_meeting_silence_and_return(void **state)
{
    fixture *f = *state;
    peer_t *p = f->p;
    assert_int_equal(stm_peer_get_state(p), PEER_CONNECTING);
    assert_null(stm_peer_hello(p));
    assert_null(stm_peer_get_verdict(p));
    s_on_hello(f, false, &f->policy, 1000); /* (a) */
    assert_int_equal(stm_peer_get_state(p), PEER_CONNECTED);
    assert_int_equal(stm_peer_get_verdict(p)->sync, PEER_SYNC_FULL);
    assert_non_null(stm_peer_hello(p));
    s_on_hello(f, true, &f->policy, 1500); /* (c) */
    assert_int_equal(stm_peer_get_state(p), PEER_CONNECTED);
    assert_int_equal(stm_peer_silent_at(p), 1500 + TIMING.peer_timeout_ms + 1);
    stm_peer_on_silence(p, 7000); /* (d) */
    assert_int_equal(stm_peer_get_state(p), PEER_GONE);
    assert_int_equal(stm_peer_silent_at(p), INT64_MAX);
    assert_int_equal(stm_peer_hello_at(p), 7000);
    stm_peer_heard(p, 7100); /* (g) */
    assert_int_equal(stm_peer_get_state(p), PEER_CONNECTED);
    assert_true(stm_peer_on_bye(p, 8000)); /* (d) */
    assert_int_equal(stm_peer_get_state(p), PEER_GONE);
    assert_int_equal(stm_peer_hello_at(p), 8000 + TIMING.reconnect_min_ms);
    assert_false(stm_peer_on_bye(p, 8001)); /* gone already: no change */
    s_on_hello(f, false, &f->policy, 9000); /* (g) */
    assert_int_equal(stm_peer_get_state(p), PEER_CONNECTED);
    assert_int_equal(stm_peer_hello_at(p), INT64_MAX);
}

static void test_refusals_both_ways(void **state)
{
    fixture *f = *state;
    peer_t *p = f->p;
    s_on_hello(f, false, &f->strict, 100); /* (b): we refuse a v3 peer */
    assert_int_equal(stm_peer_get_state(p), PEER_REFUSED);
    assert_int_equal(stm_peer_get_verdict(p)->sync, PEER_SYNC_REFUSED);
    assert_null(stm_peer_refused_by(p));
    assert_int_equal(stm_peer_hello_at(p), INT64_MAX); /* not asked again: it says HELLO */
    s_on_hello(f, false, &f->strict, 200);         /* (i) */
    assert_int_equal(stm_peer_get_state(p), PEER_REFUSED);
    s_on_hello(f, false, &f->policy, 300); /* (f): our policy changed */
    assert_int_equal(stm_peer_get_state(p), PEER_CONNECTED);
    /* It refuses us (e); its answers to our HELLOs do not lift that (i); a HELLO of
     * its own does (f). */
    s_refuse(f, "unrelated schema histories");
    assert_int_equal(stm_peer_get_state(p), PEER_REFUSED);
    assert_string_equal(stm_peer_refused_by(p), "unrelated schema histories");
    assert_true(stm_peer_hello_at(p) < INT64_MAX); /* asked again, with backoff */
    char *again = strdup("unrelated schema histories");
    assert_false(stm_peer_on_refuse(p, &again)); /* the same reason: not news (i) */
    s_on_hello(f, true, &f->policy, 400);
    assert_int_equal(stm_peer_get_state(p), PEER_REFUSED);
    assert_non_null(stm_peer_refused_by(p));
    s_on_hello(f, false, &f->policy, 500);
    assert_int_equal(stm_peer_get_state(p), PEER_CONNECTED);
    assert_null(stm_peer_refused_by(p));
    /* A gone peer can be refused (h), and a refused one is never revived by a sign of
     * life, only by a HELLO. */
    stm_peer_on_silence(p, 6000);
    s_refuse(f, "no");
    assert_int_equal(stm_peer_get_state(p), PEER_REFUSED);
    stm_peer_heard(p, 6100);
    assert_int_equal(stm_peer_get_state(p), PEER_REFUSED);
}

static void test_refuse_before_hello(void **state)
{
    fixture *f = *state;
    s_refuse(f, "older than min_supported_version 9"); /* (b) */
    assert_int_equal(stm_peer_get_state(f->p), PEER_REFUSED);
    assert_null(stm_peer_hello(f->p));
}

/* A peer whose key this node stopped trusting stays refused whatever HELLO comes in
 * its name (an insecure node's senders only claim who they are); trusting it again
 * lets the next HELLO connect it. Before, such a HELLO connected it, distrusted. */
static void test_a_distrusted_peer_stays_refused(void **state)
{
    fixture *f = *state;
    s_on_hello(f, false, &f->policy, 1000);
    assert_int_equal(stm_peer_get_state(f->p), PEER_CONNECTED);
    stm_peer_distrust(f->p, "its key was removed (stemma peer remove)");
    assert_int_equal(stm_peer_get_state(f->p), PEER_REFUSED);
    s_on_hello(f, false, &f->policy, 2000);
    assert_int_equal(stm_peer_get_state(f->p), PEER_REFUSED);
    assert_non_null(stm_peer_distrusted(f->p));
    stm_peer_trust_again(f->p, 3000);
    s_on_hello(f, false, &f->policy, 4000);
    assert_int_equal(stm_peer_get_state(f->p), PEER_CONNECTED);
}

/* The defect this module fixed: after our database migrated, every peer that had
 * sent a HELLO was set CONNECTED, gone and refusing ones too. */
static void test_rejudging_revives_nobody(void **state)
{
    fixture *f = *state;
    peer_t *p = f->p;
    /* A gone peer stays gone; its verdict is new. */
    s_on_hello(f, false, &f->policy, 0);
    stm_peer_on_silence(p, 6000);
    stm_peer_rejudge(p, f->local, &f->strict);
    assert_int_equal(stm_peer_get_state(p), PEER_GONE);
    assert_int_equal(stm_peer_get_verdict(p)->sync, PEER_SYNC_REFUSED);
    /* ... and a sign of life does not revive it under a refusing verdict. */
    stm_peer_heard(p, 6100);
    assert_int_equal(stm_peer_get_state(p), PEER_GONE);
    stm_peer_rejudge(p, f->local, &f->policy);
    assert_int_equal(stm_peer_get_state(p), PEER_GONE);
    stm_peer_heard(p, 6200);
    assert_int_equal(stm_peer_get_state(p), PEER_CONNECTED);
    /* A connected peer our new verdict refuses is refused (e). */
    stm_peer_rejudge(p, f->local, &f->strict);
    assert_int_equal(stm_peer_get_state(p), PEER_REFUSED);
    /* A peer we refused stays refused when we would now accept it: its answer to our
     * new HELLO is judged. */
    stm_peer_rejudge(p, f->local, &f->policy);
    assert_int_equal(stm_peer_get_state(p), PEER_REFUSED);
    assert_int_equal(stm_peer_get_verdict(p)->sync, PEER_SYNC_FULL);
    s_on_hello(f, true, &f->policy, 7000);
    assert_int_equal(stm_peer_get_state(p), PEER_CONNECTED);
    /* A peer that refused us stays refused, whatever we think of it. */
    s_refuse(f, "the policy syncs nothing with ancestor peers");
    stm_peer_rejudge(p, f->local, &f->policy);
    assert_int_equal(stm_peer_get_state(p), PEER_REFUSED);
    assert_non_null(stm_peer_refused_by(p));
    /* A peer that never said HELLO is not judged at all. */
    peer_t *quiet = stm_peer_new(NULL, "tcp://127.0.0.1:7002", false, &TIMING, NULL);
    stm_peer_rejudge(quiet, f->local, &f->policy);
    assert_int_equal(stm_peer_get_state(quiet), PEER_CONNECTING);
    assert_null(stm_peer_get_verdict(quiet));
    assert_string_equal(stm_peer_short_id(quiet), "?");
    stm_peer_destroy(&quiet);
}

/* ---- deadlines ---- */

static void test_hello_backoff(void **state)
{
    fixture *f = *state;
    peer_t *p = f->p;
    assert_int_equal(stm_peer_hello_at(p), 0); /* at once */
    int64_t now = 0;
    int64_t expect[] = {100, 200, 400, 800, 1000, 1000};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        stm_peer_hello_sent(p, now, true);
        assert_int_equal(stm_peer_hello_at(p) - now, expect[i]);
    }
    /* An answer to an OPS that came too early waits the backoff, without doubling it. */
    stm_peer_hello_sent(p, 50000, false);
    assert_int_equal(stm_peer_hello_at(p), 51000);
    stm_peer_hello_sent(p, 60000, false);
    assert_int_equal(stm_peer_hello_at(p), 61000);
    /* A HELLO accepted resets it. */
    s_on_hello(f, false, &f->policy, 70000);
    stm_peer_on_silence(p, 80000);
    stm_peer_hello_sent(p, 80000, true);
    assert_int_equal(stm_peer_hello_at(p), 80000 + TIMING.reconnect_min_ms);
}

static void test_resend_deadline_only_when_connected(void **state)
{
    fixture *f = *state;
    peer_t *p = f->p;
    assert_int_equal(stm_peer_resend_at(p), INT64_MAX);
    s_on_hello(f, false, &f->policy, 0);
    assert_int_equal(stm_peer_resend_at(p), INT64_MAX); /* nothing in flight */
    assert_int_equal(stm_session_in_flight(stm_peer_session(p)), 0);
    assert_true(stm_session_wants_to_send(stm_peer_session(p)));
}

/* ---- the DEALER ---- */

static void test_open_and_send(void **state)
{
    fixture *f = *state;
    void *ctx = zmq_ctx_new();
    stm_id me = {{1}};
    unsigned char secret[32] = {0};
    stm_error err = {0};
    /* Without its key a CURVE DEALER cannot be made. */
    peer_t *keyless = stm_peer_new(NULL, "tcp://127.0.0.1:7009", true, &TIMING, NULL);
    peer_self curve = {ctx, &me, secret, false};
    assert_int_equal(stm_peer_open(keyless, &curve, 0, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "its key is needed"));
    peer_self plain = {ctx, &me, NULL, true};
    assert_int_equal(stm_peer_open(keyless, &plain, 0, &err), STM_OK);
    assert_int_equal(stm_peer_open(keyless, &plain, 0, &err), STM_OK); /* open already */
    buf_t msg = BUF_INIT;
    stm_buf_puts(&msg, "STMW");
    assert_true(stm_peer_send(keyless, &msg)); /* queued until the connection is up */
    assert_int_equal(stm_peer_bytes_sent(keyless), 4);
    /* A bad endpoint says so. */
    peer_t *bad = stm_peer_new(NULL, "nonsense://x", true, &TIMING, NULL);
    assert_false(stm_peer_send(bad, &msg)); /* no DEALER yet */
    assert_int_equal(stm_peer_open(bad, &plain, 0, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "cannot connect"));
    assert_int_equal(stm_peer_open(f->p, &curve, 0, &err), STM_OK);
    /* Dialled anew only after reconnect_max_ms without a word from it, and only while
     * it has not answered (a CURVE handshake refused is never retried by libzmq). */
    assert_false(stm_peer_redial_due(f->p, TIMING.reconnect_max_ms - 1));
    assert_true(stm_peer_redial_due(f->p, TIMING.reconnect_max_ms));
    assert_true(stm_peer_redial(f->p));
    assert_false(stm_peer_redial_due(f->p, 10 * TIMING.reconnect_max_ms)); /* closed */
    assert_int_equal(stm_peer_open(f->p, &curve, 5000, &err), STM_OK);
    assert_false(stm_peer_redial_due(f->p, 5000 + TIMING.reconnect_max_ms - 1));
    assert_true(stm_peer_redial_due(f->p, 5000 + TIMING.reconnect_max_ms));
    assert_false(stm_peer_redial(f->p)); /* logged once until it is heard from */
    assert_int_equal(stm_peer_open(f->p, &curve, 9000, &err), STM_OK);
    stm_peer_heard(f->p, 9500);
    assert_false(stm_peer_redial_due(f->p, 9000 + TIMING.reconnect_max_ms));
    assert_true(stm_peer_redial_due(f->p, 9500 + TIMING.reconnect_max_ms));
    assert_true(stm_peer_redial(f->p));
    /* A connected peer is never redialled. */
    assert_int_equal(stm_peer_open(f->p, &curve, 20000, &err), STM_OK);
    s_on_hello(f, false, &f->policy, 20000);
    assert_int_equal(stm_peer_get_state(f->p), PEER_CONNECTED);
    assert_false(stm_peer_redial_due(f->p, 20000 + 100 * TIMING.reconnect_max_ms));
    stm_buf_free(&msg);
    stm_peer_destroy(&bad);
    stm_peer_destroy(&keyless);
    stm_peer_destroy(&f->p);
    zmq_ctx_term(ctx);
}

/* A beacon from another endpoint moves only a peer not configured, not answering where it
 * is (none to dial, or silent for reconnect_max_ms since dialled), never a connected one. */
static void test_a_beacon_moves_only_a_silent_discovered_peer(void **state)
{
    fixture *f = *state;
    void *ctx = zmq_ctx_new();
    stm_id me = {{1}}, id = {{7}};
    unsigned char secret[32] = {0};
    stm_error err = {0};
    peer_self curve = {ctx, &me, secret, false};
    /* Configured: reached where node.toml says, whatever beacons say. */
    assert_false(stm_peer_move(f->p, "tcp://10.0.0.9:7420", 100000));
    assert_string_equal(stm_peer_endpoint(f->p), "tcp://127.0.0.1:7001");

    /* Dialled in (no endpoint of its own): dialled where its beacon comes from at once. */
    peer_t *p = stm_peer_new(&id, "", false, &TIMING, NULL);
    assert_false(stm_peer_move(p, "", 0)); /* the same */
    assert_true(stm_peer_move(p, "tcp://10.0.0.9:7420", 500));
    assert_string_equal(stm_peer_endpoint(p), "tcp://10.0.0.9:7420");
    assert_int_equal(stm_peer_hello_at(p), 500);
    /* Dialled there, not silent long enough yet: it stays. */
    assert_int_equal(stm_peer_open(p, &curve, 1000, &err), STM_OK);
    assert_false(stm_peer_move(p, "tcp://10.0.0.8:7420", 1000 + TIMING.reconnect_max_ms - 1));
    assert_true(stm_peer_move(p, "tcp://10.0.0.8:7420", 1000 + TIMING.reconnect_max_ms));
    assert_string_equal(stm_peer_endpoint(p), "tcp://10.0.0.8:7420");
    assert_null(stm_peer_socket(p)); /* closed: the next HELLO dials there */
    /* Connected: never moved. */
    assert_int_equal(stm_peer_open(p, &curve, 5000, &err), STM_OK);
    wire_hello h = s_hello(f, false);
    stm_peer_on_hello(p, &h, f->local, &f->policy, 5000);
    assert_int_equal(stm_peer_get_state(p), PEER_CONNECTED);
    assert_false(stm_peer_move(p, "tcp://10.0.0.7:7420", 100000));
    stm_peer_destroy(&p);
    stm_peer_destroy(&f->p);
    zmq_ctx_term(ctx);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_table_matches_the_diagram),
        T(test_state_names),
        T(test_meeting_silence_and_return),
        T(test_refusals_both_ways),
        T(test_refuse_before_hello),
        T(test_a_distrusted_peer_stays_refused),
        T(test_rejudging_revives_nobody),
        T(test_hello_backoff),
        T(test_resend_deadline_only_when_connected),
        T(test_open_and_send),
        T(test_a_beacon_moves_only_a_silent_discovered_peer),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
