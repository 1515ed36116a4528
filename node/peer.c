/* peer.c - one peer of the node (peer.h): its state machine, its DEALER, its
 * deadlines, and its half of the report; what it is sent and sends in parts is
 * peer_sync.c's.
 *
 * The state diagram. Each arrow names the functions that make the transition; no
 * other function changes the state, and stm_peer_set_state asserts that each change is
 * one of these. s_legal below is the same diagram as a table, and tests/test_peer.c
 * checks that the two agree, line by line of the legend.
 *
 *                              +--(c)--+
 *                              |       v
 *    [ CONNECTING ] ---(a)---> [ CONNECTED ]
 *          |                    |  ^  ^  |
 *         (b)                  (e)(f)(g)(d)
 *          |                    |  |  |  |
 *          v                    |  |  |  v
 *     [ REFUSED ] <-------------+  |  +-[ GONE ]
 *      |  |  ^  ^                  |       |
 *      |  |  |  +-------(h)--------)-------+
 *      |  +--+ (i)                 |
 *      +---------------(f)---------+
 *
 *   (a) CONNECTING -> CONNECTED  stm_peer_on_hello: its HELLO judged full or partial
 *   (b) CONNECTING -> REFUSED    stm_peer_on_hello: refused by us; stm_peer_on_refuse
 *   (c) CONNECTED -> CONNECTED   stm_peer_on_hello: a HELLO again, still accepted
 *   (d) CONNECTED -> GONE        stm_peer_on_silence: silent past peer_timeout_ms;
 *                                stm_peer_on_bye; stm_peer_deactivate: the node no
 *                                longer keeps it (mesh.h)
 *   (e) CONNECTED -> REFUSED     stm_peer_on_hello: refused; stm_peer_on_refuse;
 *                                stm_peer_rejudge: our database migrated, and our new
 *                                verdict refuses it
 *   (f) REFUSED -> CONNECTED     stm_peer_on_hello: accepted, and it has not refused us
 *                                (its refusal is lifted by a HELLO of its own, not
 *                                by a reply to ours)
 *   (g) GONE -> CONNECTED        stm_peer_on_hello: accepted; stm_peer_heard: any message,
 *                                when its last HELLO was accepted
 *   (h) GONE -> REFUSED          stm_peer_on_hello: refused; stm_peer_on_refuse
 *   (i) REFUSED -> REFUSED       stm_peer_on_hello: refused again, or its refusal stands
 *                                (a reply); stm_peer_on_refuse again
 *
 * Nothing returns to CONNECTING, and only a CONNECTED peer becomes GONE. A migration
 * of our own database (stm_peer_rejudge) changes only the verdicts of gone and refused
 * peers, never their state: they are judged again, properly, when they answer the
 * HELLO the node then sends them.
 *
 * Invariants (s_check asserts them after every transition):
 *
 *  1. CONNECTED: its HELLO is held, our verdict on it is full or partial, and it has
 *     not refused us (refused_by_peer is NULL).
 *  2. GONE: its HELLO is held (it was connected) and it has not refused us.
 *  3. CONNECTING: no HELLO of its own has been judged.
 *  4. Only a CONNECTED peer is sent operations and PINGs, and only its silence, its
 *     unacknowledged batches and its PING have deadlines (stm_peer_silent_at,
 *     stm_peer_resend_at, stm_peer_ping_at). A PING goes only on a link that carried
 *     nothing for heartbeat_ms: any message is a sign of life.
 *  5. HELLOs are retried, with backoff, to CONNECTING and GONE peers, to peers
 *     that refused us and to a REFUSED peer whose key is trusted again (its verdict
 *     not a refusal); a peer only we refused is not asked again until it says HELLO
 *     or our database migrates.
 *  6. The DEALER is opened at first need and lives as long as the peer, unless its
 *     key stops being trusted (stm_peer_distrust closes it; it is reopened only once
 *     the key is trusted again), or a CONNECTING or GONE peer has sent nothing for
 *     reconnect_max_ms since it was opened (stm_peer_redial: it is opened anew at that
 *     HELLO retry, since libzmq never redials after a refused CURVE handshake), or its
 *     beacon names another endpoint while it is not answering at its own
 *     (stm_peer_move). A distrusted peer is REFUSED and never CONNECTED.
 *  7. Messages go on the connection the peer opened to us (its route) while libzmq
 *     knows that connection, else on the DEALER: a peer that cannot be dialled (behind
 *     NAT, or binding nothing) is answered on its own connection, and one connection
 *     per pair carries everything both ways. A distrusted peer has no route.
 *  8. An inactive peer (stm_peer_deactivate: the node's mesh keeps it only as known,
 *     mesh.h) is never CONNECTED, has no DEALER, no route and no deadline, and is sent
 *     nothing but stm_peer_answer's answer to its HELLO, on the connection that HELLO
 *     came on; a message from it revives nothing. Only
 *     stm_peer_activate makes it active again. */
#include "peer_internal.h"
#include "endpoint.h"
#include "inbox.h"
#include "parts.h"
#include "zsock.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

/* The diagram above as a table: s_legal[from][to]. */
static const bool s_legal[PEER_STATES][PEER_STATES] = {
    [PEER_CONNECTING] = {[PEER_CONNECTED] = true, [PEER_REFUSED] = true},
    [PEER_CONNECTED] = {[PEER_CONNECTED] = true, [PEER_GONE] = true, [PEER_REFUSED] = true},
    [PEER_GONE] = {[PEER_CONNECTED] = true, [PEER_REFUSED] = true},
    [PEER_REFUSED] = {[PEER_CONNECTED] = true, [PEER_REFUSED] = true},
};

bool stm_peer_transition_legal(peer_state from, peer_state to)
{
    return from < PEER_STATES && to < PEER_STATES && s_legal[from][to];
}

/* The reports' view of the states: the names are report.h's. */
static report_state s_report_state(peer_state s)
{
    switch (s) {
    case PEER_CONNECTING:
        return REPORT_CONNECTING;
    case PEER_CONNECTED:
        return REPORT_CONNECTED;
    case PEER_GONE:
        return REPORT_GONE;
    case PEER_REFUSED:
        return REPORT_REFUSED;
    }
    return REPORT_REFUSED;
}

const char *stm_peer_state_name(peer_state s)
{
    return stm_report_state_name(s_report_state(s));
}

/* The invariants above that hold of one peer at rest. */
static void s_check(const peer_t *p)
{
    switch (p->state) {
    case PEER_CONNECTED:
        assert(p->have_hello && p->verdict.sync != PEER_SYNC_REFUSED && !p->refused_by_peer &&
               !p->distrusted && p->active);
        break;
    case PEER_GONE:
        assert(p->have_hello && !p->refused_by_peer);
        break;
    case PEER_CONNECTING:
        assert(!p->have_hello);
        break;
    case PEER_REFUSED:
        break;
    }
    (void)p;
}

void stm_peer_set_state(peer_t *p, peer_state state)
{
    assert(stm_peer_transition_legal(p->state, state)); /* a bug in the node, never input */
    if (state != PEER_CONNECTED)
        stm_peer_links_eager(p); /* met again, links start eager */
    p->state = state;
    s_check(p);
}

peer_t *stm_peer_new(const stm_id *id, const char *endpoint, bool configured,
                     const peer_timing *timing, inbox_t *inbox)
{
    peer_t *p = stm_calloc(1, sizeof *p);
    p->inbox = inbox;
    if (id)
        stm_peer_set_id(p, id);
    else
        snprintf(p->short_id, sizeof p->short_id, "?");
    p->endpoint = stm_strdup(endpoint);
    p->configured = configured;
    p->active = true;
    p->timing = *timing;
    p->state = PEER_CONNECTING;
    p->session = stm_session_new(timing->window, (size_t)timing->batch_ops);
    p->parts = stm_parts_new();
    p->told = stm_vector_new();
    p->backoff_ms = timing->reconnect_min_ms;
    p->next_hello_ms = 0;
    return p;
}

void stm_peer_destroy(peer_t **self_p)
{
    peer_t *p = *self_p;
    if (!p)
        return;
    stm_peer_close_dealer(p);
    free(p->endpoint);
    stm_wire_hello_clear(&p->hello);
    stm_peer_verdict_clear(&p->verdict);
    free(p->refused_by_peer);
    free(p->distrusted);
    stm_session_destroy(&p->session);
    stm_parts_destroy(&p->parts);
    stm_vector_destroy(&p->told);
    free(p);
    *self_p = NULL;
}

peer_state stm_peer_get_state(const peer_t *p)
{
    return p->state;
}

const stm_id *stm_peer_id(const peer_t *p)
{
    return p->id_known ? &p->id : NULL;
}

void stm_peer_set_id(peer_t *p, const stm_id *id)
{
    if (p->id_known)
        return;
    p->id = *id;
    p->id_known = true;
    stm_id_short(id, p->short_id);
}

bool stm_peer_configured(const peer_t *p)
{
    return p->configured;
}

void stm_peer_set_configured(peer_t *p, bool configured)
{
    p->configured = configured;
}

const char *stm_peer_endpoint(const peer_t *p)
{
    return p->endpoint;
}

const char *stm_peer_short_id(const peer_t *p)
{
    return p->short_id;
}

const wire_hello *stm_peer_hello(const peer_t *p)
{
    return p->have_hello ? &p->hello : NULL;
}

const peer_verdict *stm_peer_get_verdict(const peer_t *p)
{
    return p->have_hello ? &p->verdict : NULL;
}

const char *stm_peer_refused_by(const peer_t *p)
{
    return p->refused_by_peer;
}

time_t stm_peer_last_seen(const peer_t *p)
{
    return p->last_seen_wall;
}

session_t *stm_peer_session(peer_t *p)
{
    return p->session;
}

bulk_sync *stm_peer_bulk(peer_t *p)
{
    return &p->bulk;
}

uint64_t stm_peer_bytes_sent(const peer_t *p)
{
    return p->bytes_sent;
}

uint64_t stm_peer_bytes_of(const peer_t *p, unsigned type)
{
    return type < PEER_MESSAGE_TYPES ? p->bytes_by_type[type] : 0;
}

bool stm_peer_tell_once(peer_t *p, unsigned what)
{
    bool first = !(p->told_once & what);
    p->told_once |= what;
    return first;
}

/* ---- active or only known ---- */

bool stm_peer_active(const peer_t *p)
{
    return p->active;
}

void stm_peer_activate(peer_t *p, int64_t now_ms)
{
    if (p->active)
        return;
    p->active = true;
    p->next_hello_ms = now_ms;
    p->backoff_ms = p->timing.reconnect_min_ms;
    p->redialled = false;
}

void stm_peer_deactivate(peer_t *p)
{
    if (p->state == PEER_CONNECTED)
        stm_peer_set_state(p, PEER_GONE);
    p->active = false;
    p->route_len = 0;
    stm_peer_close_dealer(p); /* what waits in it goes nowhere: it is not kept */
}

/* ---- what it says ---- */

static void s_seen(peer_t *p, int64_t now_ms)
{
    p->redialled = false;
    p->last_seen_ms = now_ms;
    p->last_seen_wall = time(NULL);
}

void stm_peer_on_hello(peer_t *p, wire_hello *h, const lineage_t *local, const peer_policy *policy,
                       int64_t now_ms)
{
    assert(p->active); /* the node lets a peer in (mesh.h) before it hears it */
    stm_peer_set_id(p, &h->node_id);
    /* A peer met by a peer list or its own HELLO may move; one we were told about is
     * reached where we were told. */
    if (strcmp(p->endpoint, h->endpoint) != 0 && !p->configured &&
        stm_endpoint_dialable(h->endpoint)) {
        free(p->endpoint);
        p->endpoint = stm_strdup(h->endpoint);
    }
    s_seen(p, now_ms);
    stm_wire_hello_clear(&p->hello);
    p->hello = *h;
    memset(h, 0, sizeof *h);
    p->have_hello = true;
    p->reads_route = p->reads_parts = false;
    bool mesh = false, vdelta = false;
    for (size_t i = 0; i < p->hello.ncapabilities; i++) {
        if (strcmp(p->hello.capabilities[i], WIRE_CAP_ROUTE) == 0)
            p->reads_route = true;
        if (strcmp(p->hello.capabilities[i], WIRE_CAP_PARTS) == 0)
            p->reads_parts = true;
        mesh = mesh || strcmp(p->hello.capabilities[i], WIRE_CAP_MESH) == 0;
        vdelta = vdelta || strcmp(p->hello.capabilities[i], WIRE_CAP_VDELTA) == 0;
    }
    p->reads_prune = mesh && vdelta;
    /* A conversation starts anew (it restarted, migrated, or met us): both ways eager,
     * until a duplicate prunes again. Not at an answer: a PRUNE may follow one. */
    if (!p->hello.reply)
        stm_peer_links_eager(p);
    /* A peer that puts parts together takes a row change up to WIRE_MAX_BATCH; an older
     * one, what one message holds (its inbox's limit), and no value over 16 MiB (its
     * decoder's). Larger ones go as stand-ins. */
    if (p->reads_parts)
        stm_session_set_limit(p->session, WIRE_MAX_BATCH, OP_MAX_VALUE_BYTES);
    else
        stm_session_set_limit(p->session, WIRE_MAX_MESSAGE - WIRE_OPS_OVERHEAD,
                              WIRE_LEGACY_MAX_VALUE);
    /* A peer that refused us answers our HELLOs and then refuses again: its answer does
     * not undo the refusal. A HELLO of its own (it migrated, or restarted) does. */
    if (!p->hello.reply) {
        free(p->refused_by_peer);
        p->refused_by_peer = NULL;
    }
    stm_peer_verdict_clear(&p->verdict);
    stm_judge_hello(local, p->hello.lineage, policy, &p->verdict);
    stm_session_on_hello(p->session); /* its vector was taken (dispatch.c) */
    if (!p->refused_by_peer)
        p->backoff_ms = p->timing.reconnect_min_ms; /* a refusing peer is asked less often */
    /* A peer whose key this node stopped trusting stays refused whatever its HELLO says
     * (invariant 6): only stm_peer_trust_again lifts that. */
    bool refused = p->verdict.sync == PEER_SYNC_REFUSED || p->refused_by_peer || p->distrusted;
    stm_peer_set_state(p, refused ? PEER_REFUSED : PEER_CONNECTED);
}

bool stm_peer_on_refuse(peer_t *p, char **reason)
{
    bool news = !p->refused_by_peer || strcmp(p->refused_by_peer, *reason) != 0;
    free(p->refused_by_peer);
    p->refused_by_peer = *reason;
    *reason = NULL;
    stm_peer_set_state(p, PEER_REFUSED);
    return news;
}

bool stm_peer_on_bye(peer_t *p, int64_t now_ms)
{
    if (p->state != PEER_CONNECTED)
        return false;
    stm_peer_set_state(p, PEER_GONE);
    p->next_hello_ms = now_ms + p->timing.reconnect_min_ms;
    return true;
}

void stm_peer_heard(peer_t *p, int64_t now_ms)
{
    if (!p->active)
        return; /* invariant 8 */
    s_seen(p, now_ms);
    if (p->state == PEER_GONE && p->verdict.sync != PEER_SYNC_REFUSED)
        stm_peer_set_state(p, PEER_CONNECTED);
}

void stm_peer_rejudge(peer_t *p, const lineage_t *local, const peer_policy *policy)
{
    if (!p->have_hello)
        return;
    stm_peer_verdict_clear(&p->verdict);
    stm_judge_hello(local, p->hello.lineage, policy, &p->verdict);
    if (p->state == PEER_CONNECTED && p->verdict.sync == PEER_SYNC_REFUSED)
        stm_peer_set_state(p, PEER_REFUSED);
}

void stm_peer_follow(peer_t *p, const lens_set_t *lenses, const lineage_t *set, admit_t *admit,
                     const peer_policy *policy)
{
    if (!p->have_hello)
        return;
    const lineage_version *head = stm_lineage_head(p->hello.lineage);
    size_t upto = 0;
    const lens_branch *b = admit && head ? stm_admit_branch(admit, &head->id, &upto) : NULL;
    stm_judge_follow(&p->verdict, lenses, set, b, upto, policy);
}

void stm_peer_distrust(peer_t *p, const char *reason)
{
    buf_t msg = BUF_INIT;
    stm_wire_encode_refuse(&msg, reason);
    stm_peer_send(p, &msg);
    stm_buf_free(&msg);
    p->route_len = 0; /* what comes on it from now on is dropped (node.c) */
    if (p->outbox) {
        /* The REFUSE leaves in the background after the close, for a second at most
         * (the context's end waits no longer for it either). */
        int linger = PEER_DISTRUST_LINGER_MS;
        zmq_setsockopt(p->outbox, ZMQ_LINGER, &linger, sizeof linger);
        stm_peer_close_dealer(p);
    }
    free(p->distrusted);
    p->distrusted = stm_strdup(reason);
    stm_peer_set_state(p, PEER_REFUSED);
}

void stm_peer_trust_again(peer_t *p, int64_t now_ms)
{
    if (!p->distrusted)
        return;
    free(p->distrusted);
    p->distrusted = NULL;
    p->next_hello_ms = now_ms;
    p->backoff_ms = p->timing.reconnect_min_ms;
}

const char *stm_peer_distrusted(const peer_t *p)
{
    return p->distrusted;
}

/* ---- lazy links ---- */

void stm_peer_links_eager(peer_t *p)
{
    p->lazy = p->pruned = false;
    p->graft_from = 0;
}

void stm_peer_on_prune(peer_t *p)
{
    p->lazy = true;
    p->told_gen = 0; /* it hears our vector at once */
}

void stm_peer_on_graft(peer_t *p)
{
    p->lazy = false;
    stm_session_mark_more(p->session); /* its vector came: what it lacks goes at once */
}

bool stm_peer_wants_vector(const peer_t *p, uint64_t gen)
{
    return p->lazy && p->state == PEER_CONNECTED && p->told_gen != gen;
}

void stm_peer_told_vector(peer_t *p, uint64_t gen)
{
    p->told_gen = gen;
}

bool stm_peer_prune(peer_t *p)
{
    if (p->pruned || !p->reads_prune || p->state != PEER_CONNECTED)
        return false;
    buf_t msg = BUF_INIT;
    stm_wire_encode_empty(&msg, WIRE_PRUNE);
    p->pruned = stm_peer_send(p, &msg);
    stm_buf_free(&msg);
    p->graft_from = 0;
    return p->pruned;
}

bool stm_peer_sends_eagerly(const peer_t *p)
{
    return p->state == PEER_CONNECTED && !p->pruned;
}

bool stm_peer_check_graft(peer_t *p, const vtrack_t *mine, int64_t now_ms)
{
    if (!p->pruned || p->state != PEER_CONNECTED || !stm_session_holds_more(p->session, mine)) {
        p->graft_from = 0;
        return false;
    }
    uint64_t gen = stm_vtrack_gen(mine);
    if (!p->graft_from || gen != p->graft_gen) {
        /* It holds more; the wait starts, or starts again as long as we move on. */
        p->graft_from = now_ms;
        p->graft_gen = gen;
        return false;
    }
    return now_ms >= p->graft_from + p->timing.lazy_ms;
}

int64_t stm_peer_graft_at(const peer_t *p)
{
    return p->pruned && p->graft_from ? p->graft_from + p->timing.lazy_ms : INT64_MAX;
}

void stm_peer_graft(peer_t *p, const vector_out *graft)
{
    buf_t msg = BUF_INIT;
    stm_wire_encode_graft(&msg, graft);
    if (stm_peer_send(p, &msg))
        p->pruned = false;
    p->graft_from = 0;
    stm_buf_free(&msg);
}

/* ---- deadlines ---- */

int64_t stm_peer_hello_at(const peer_t *p)
{
    /* Refused: asked again when it refused us, or when only its key kept it out and
     * that is trusted again (invariant 5). */
    bool refused_ask =
        p->state == PEER_REFUSED && !p->distrusted &&
        (p->refused_by_peer || !p->have_hello || p->verdict.sync != PEER_SYNC_REFUSED);
    bool asking = p->state == PEER_CONNECTING || p->state == PEER_GONE || refused_ask;
    return asking && p->active ? p->next_hello_ms : INT64_MAX;
}

void stm_peer_hello_sent(peer_t *p, int64_t now_ms, bool retry)
{
    p->next_hello_ms = now_ms + p->backoff_ms;
    if (retry)
        p->backoff_ms = p->backoff_ms * 2 > p->timing.reconnect_max_ms ? p->timing.reconnect_max_ms
                                                                       : p->backoff_ms * 2;
}

int64_t stm_peer_silent_at(const peer_t *p)
{
    /* Gone once more than peer_timeout_ms have passed; longer while it stores a large
     * batch of ours, which keeps its loop from answering (sync/session.h, invariant 9). */
    if (p->state != PEER_CONNECTED)
        return INT64_MAX;
    return p->last_seen_ms + p->timing.peer_timeout_ms +
           stm_session_storing_ms(p->session, p->timing.peer_timeout_ms) + 1;
}

void stm_peer_on_silence(peer_t *p, int64_t now_ms)
{
    stm_peer_set_state(p, PEER_GONE);
    p->next_hello_ms = now_ms;
    p->backoff_ms = p->timing.reconnect_min_ms;
    stm_log_event(STM_LOG_WARN, "peer-gone", p->short_id, "silent for %d ms",
                  p->timing.peer_timeout_ms);
}

int64_t stm_peer_ping_at(const peer_t *p)
{
    if (p->state != PEER_CONNECTED)
        return INT64_MAX;
    int64_t last = p->last_sent_ms > p->ping_tried_ms ? p->last_sent_ms : p->ping_tried_ms;
    return last + p->timing.heartbeat_ms;
}

void stm_peer_ping(peer_t *p, int64_t now_ms)
{
    p->ping_tried_ms = now_ms; /* a full queue is not tried again at once */
    buf_t ping = BUF_INIT;
    stm_wire_encode_empty(&ping, WIRE_PING);
    stm_peer_send(p, &ping);
    stm_buf_free(&ping);
}

int64_t stm_peer_resend_at(const peer_t *p)
{
    return p->state == PEER_CONNECTED ? stm_session_resend_at(p->session, p->timing.peer_timeout_ms)
                                      : INT64_MAX;
}

void stm_peer_resend(peer_t *p)
{
    stm_log_event(STM_LOG_INFO, "resend", p->short_id,
                  "%d batches unacknowledged, nothing heard of them for %d ms or more: sending "
                  "again from what it last said it holds",
                  stm_session_in_flight(p->session), p->timing.peer_timeout_ms);
    stm_session_resend(p->session); /* unacknowledged: send again from what it holds */
}

void stm_peer_report(const peer_t *p, report_peer *rp, const vtrack_t *mine)
{
    memset(rp, 0, sizeof *rp);
    rp->id = p->id;
    rp->id_known = p->id_known;
    rp->endpoint = p->endpoint;
    rp->dialled_in_from = stm_peer_routed(p) && p->address[0] ? p->address : NULL;
    rp->state = s_report_state(p->state);
    if (p->state == PEER_CONNECTED)
        rp->link = p->lazy && p->pruned ? "lazy, pruned"
                   : p->lazy            ? "lazy"
                   : p->pruned          ? "pruned"
                                        : "eager";
    if (p->have_hello) {
        rp->schema_set = p->hello.schema_set;
        rp->name = p->hello.name && p->hello.name[0] ? p->hello.name : NULL;
        rp->lineage = p->hello.lineage;
        rp->verdict = &p->verdict;
        rp->behind = stm_session_behind(p->session, mine);
    }
    rp->refused_by_peer = p->refused_by_peer;
    rp->distrusted = p->distrusted;
    rp->ops_sent = stm_session_ops_sent(p->session);
    rp->ops_received = stm_session_ops_received(p->session);
    rp->parked = stm_session_parked(p->session);
    rp->withheld = p->withheld;
    rp->last_seen = p->last_seen_wall;
}
