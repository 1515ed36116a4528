/* dispatch.c - what a message from a peer does: a REFUSE, OPS queued to store,
 * RECEIVED, ACK, VECTOR, PRUNE and GRAFT, BYE; a HELLO goes to meet.c. node.c holds the
 * loop that reads the sockets and the timers; all share the node's struct through
 * node_internal.h. Dispatch only records (node.c, invariant 2): what it decides to send
 * leaves at once, what it decides to store waits for the inbound timer. */
#include "node_internal.h"
#include "endpoint.h"
#include "peer.h"
#include "wire.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/clock.h"
#include "sync/apply.h"
#include "sync/inbound.h"
#include "sync/session.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* Counts a message dropped from the mesh, by why (stemma stats). */
void stm_node_drop(node_t *n, report_drop why)
{
    stm_control_drop(&n->drops, why);
}

stm_err stm_node_open_peer(node_t *n, peer_t *p, stm_error *err)
{
    peer_self self = {n->ctx, &n->id, n->secret, n->insecure};
    return stm_peer_open(p, &self, stm_monotime_ms(), err);
}

/* ---- vectors (docs/protocol.md, "Vector deltas") ---- */

/* Our vector as the next message to p carries it (sync/session.h, invariant 10): the
 * parts, of which the first goes in that message; said once when it is cut for an older
 * peer. */
size_t stm_node_vector_out(node_t *n, peer_t *p, const vector_out **parts)
{
    size_t count = stm_session_vector_out(stm_peer_session(p),
                                          stm_feed_vector(stm_local_feed(n->local)), parts);
    if ((*parts)[0].part && stm_session_older(stm_peer_session(p)) &&
        stm_peer_tell_once(p, PEER_TOLD_CUT_OUT))
        stm_log_event(STM_LOG_WARN, "origins", stm_peer_short_id(p),
                      "this node's vector has more than %u entries, more than this peer's "
                      "stemma takes in one message (it does not list %s): it is sent the %u "
                      "of the highest sequence, and sends again what it thinks this node "
                      "lacks of the others; upgrade it (said once per peer)",
                      VECTOR_MAX_ENTRIES, WIRE_CAP_VDELTA, VECTOR_MAX_ENTRIES);
    return count;
}

/* The parts after the first, in VECTOR messages. */
void stm_node_send_parts(peer_t *p, const vector_out *parts, size_t count)
{
    buf_t msg = BUF_INIT;
    for (size_t i = 0; i < count; i++) {
        stm_buf_reset(&msg);
        stm_wire_encode_vector(&msg, &parts[i], false);
        stm_peer_send(p, &msg);
    }
    stm_buf_free(&msg);
}

/* Our whole vector to p, in VECTOR messages: it asked, or does not hold it. */
void stm_node_send_whole(node_t *n, peer_t *p)
{
    stm_session_vector_lost(stm_peer_session(p));
    const vector_out *parts;
    size_t count = stm_node_vector_out(n, p, &parts);
    stm_node_send_parts(p, parts, count);
    stm_session_vector_sent(stm_peer_session(p));
}

/* Taken as a stemma before vector deltas takes it, by a node told not to use them
 * ([sync] vector_deltas = false): whole, whatever else the message says. */
void stm_node_as_older(const node_t *n, vector_msg *m)
{
    if (n->deltas)
        return;
    m->delta = m->has_digest = m->more = m->part = false;
}

/* What a vector part of p's came to (stm_session_take_vector): asked for whole when it
 * could not be taken; a peer counting digests otherwise is said once. */
void stm_node_vector_taken(node_t *n, peer_t *p, session_vector r, uint64_t cut_before)
{
    session_t *s = stm_peer_session(p);
    if (r == SESSION_VECTOR_ASK) {
        buf_t msg = BUF_INIT;
        stm_wire_encode_vector(&msg, NULL, true);
        stm_peer_send(p, &msg);
        stm_buf_free(&msg);
    } else if (r == SESSION_VECTOR_DIFFERS) {
        stm_log_event(STM_LOG_WARN, "vector", stm_peer_short_id(p),
                      "its whole vector came with a digest that is not the one this node "
                      "counts for it: its stemma counts digests otherwise, so vectors go "
                      "whole between the two (said once)");
    }
    if (stm_session_vectors_cut(s) > cut_before && stm_peer_tell_once(p, PEER_TOLD_CUT_IN))
        stm_log_event(STM_LOG_WARN, "origins", stm_peer_short_id(p),
                      "it sent a vector of more than %u entries in one message (an older "
                      "stemma): the rest were dropped, so it may be sent operations it holds "
                      "again; upgrade it (said once per peer)",
                      VECTOR_MAX_ENTRIES);
    (void)n;
}

/* ---- what peers say ---- */

static void s_on_refuse(node_t *n, peer_t *p, const void *data, size_t len)
{
    char *reason = NULL;
    stm_error err = {0};
    if (stm_wire_decode_refuse(data, len, &reason, &err) != STM_OK) {
        stm_node_drop(n, REPORT_DROP_REFUSE);
        stm_log_event(STM_LOG_WARN, "malformed", stm_peer_short_id(p), "%s", err.msg);
        return;
    }
    if (stm_peer_on_refuse(p, &reason))
        stm_log_event(STM_LOG_WARN, "refused-by-peer", stm_peer_short_id(p), "%s",
                      stm_peer_refused_by(p));
}

/* Told by the inbound queue of each batch stored, after the commit: the ACK carries our
 * vector as the commit left it (the feed's, told by the transaction), as a delta over
 * the one last sent to a peer that takes them. */
static void s_ack(void *ctx, void *sender, uint64_t seq, const opbatch_t *batch,
                  const apply_stats *stats)
{
    node_t *n = ctx;
    n->stored.applied += stats->applied;
    n->stored.present += stats->present;
    n->stored.parked += stats->parked;
    n->stored.replayed += stats->replayed;
    n->stored.withheld += stats->withheld;
    peer_t *p = sender; /* peers live as long as the node, so as long as the queue */
    stm_session_on_stored(stm_peer_session(p), stm_opbatch_count(batch), stats->parked);
    /* Mostly held already: another peer sends it first, and this one may send lazily
     * (peer.h, "lazy links"), so that an operation crosses each link about once; but
     * not the last peer that sends eagerly (the first copy may have come from one that
     * was pruned, its batches in flight). */
    uint64_t news = stats->applied + stats->parked + stats->withheld + stats->pruned;
    if (stats->present > news && stm_node_eager_besides(n, p))
        stm_peer_prune(p);
    stm_bulk_stored(stm_peer_bulk(p), stm_peer_session(p), stm_feed_vector(stm_local_feed(n->local)),
                    stm_peer_short_id(p), stm_monotime_ms());
    const vector_out *parts;
    size_t nparts = stm_node_vector_out(n, p, &parts);
    buf_t msg = BUF_INIT;
    stm_wire_encode_ack(&msg, seq, &parts[0]);
    stm_peer_send(p, &msg);
    stm_buf_free(&msg);
    stm_node_send_parts(p, parts + 1, nparts - 1);
    stm_session_vector_sent(stm_peer_session(p));
}

/* Our vector to each peer that pruned us, as it changes: it grafts us when it lacks what
 * we hold and its other path does not bring it (peer.h, "lazy links"). */
void stm_node_tell_vectors(node_t *n)
{
    uint64_t gen = stm_vtrack_gen(stm_feed_vector(stm_local_feed(n->local)));
    for (size_t i = 0; i < stm_mesh_count(n->mesh); i++) {
        peer_t *p = stm_mesh_at(n->mesh, i);
        if (!stm_peer_wants_vector(p, gen))
            continue;
        const vector_out *parts;
        size_t count = stm_node_vector_out(n, p, &parts);
        stm_node_send_parts(p, parts, count);
        stm_session_vector_sent(stm_peer_session(p));
        stm_peer_told_vector(p, gen);
    }
}

void stm_node_store_inbound(node_t *n)
{
    if (stm_inbound_failing_io(n->inbound))
        stm_local_reopen_if_readonly(n->local);
    /* The application's bulk write is collected first, a slice a turn (the store's
     * transaction would take all of it at once, the write lock and memory with it): what
     * came in waits, and the inbound timer, still due, brings it back each turn. */
    if (stm_inbound_count(n->inbound) && stm_local_collect_first(n->local)) {
        stm_mesh_mark_more(n->mesh); /* what was collected goes out meanwhile */
        return;
    }
    /* What came in travels on to the other peers. */
    n->stored = (apply_stats){0};
    if (stm_inbound_store(n->inbound, stm_local_applier(n->local), stm_local_store(n->local), s_ack,
                          n)) {
        stm_mesh_mark_more(n->mesh);
        stm_node_tell_applied(n, &n->stored);
    }
}

static void s_on_ops(node_t *n, peer_t *p, const void *data, size_t len)
{
    wire_ops m;
    stm_error err = {0};
    if (stm_wire_decode_ops(data, len, &m, &err) != STM_OK) {
        stm_node_drop(n, REPORT_DROP_OPS);
        stm_log_event(STM_LOG_WARN, "malformed", stm_peer_short_id(p), "%s", err.msg);
        return;
    }
    uint64_t seq = m.seq;
    const void *batch_bytes = m.batch;
    size_t batch_len = m.batch_len;
    peer_state state = stm_peer_get_state(p);
    if (state != PEER_CONNECTED) {
        /* It judged our HELLO before we had its answer: ask again. It starts sending
         * from our vector when it gets this, so nothing is lost by ignoring these. */
        if (state == PEER_CONNECTING || state == PEER_GONE) {
            stm_node_send_hello(n, p, false);
            stm_peer_hello_sent(p, stm_monotime_ms(), false);
        }
        return;
    }
    /* A part of a batch sent in parts: taken until the batch is whole (parts.h). Parts
     * that cannot be put together are neither damaged nor unknown: counted apart. */
    if (m.parts) {
        uint64_t dropped = 0;
        const char *why = NULL;
        parts_result r = stm_peer_on_part(p, &m, &batch_bytes, &batch_len, &dropped, &why);
        n->drops.by_kind[REPORT_DROP_PARTS] += dropped;
        if (r == PARTS_DROPPED)
            stm_log_event(STM_LOG_WARN, "parts", stm_peer_short_id(p),
                          "batch %llu: %s; dropped, and its sender sends it again",
                          (unsigned long long)seq, why);
        if (r != PARTS_DONE)
            return;
    }
    opbatch_t *batch = NULL;
    stm_err decoded = stm_session_on_ops(stm_peer_session(p), batch_bytes, batch_len, &batch, &err);
    if (m.parts)
        stm_peer_parts_done(p); /* decoded: the batch owns its bytes */
    if (decoded != STM_OK) {
        stm_node_drop(n, REPORT_DROP_BATCH);
        stm_log_event(STM_LOG_WARN, "malformed", stm_peer_short_id(p), "%s", err.msg);
        return;
    }
    /* Batches received in one pass of the loop are stored in one transaction by the
     * inbound timer. When too many wait already, store them now; if that fails, this
     * one is left to its sender (stm_inbound_add counts it as deferred). */
    if (stm_inbound_full(n->inbound, batch_len) && !stm_inbound_failing(n->inbound))
        stm_node_store_inbound(n);
    stm_inbound_add(n->inbound, p, seq, &batch, batch_len);
}

/* It has this much of a batch we send in parts: the batch is not lost yet. */
static void s_on_received(node_t *n, peer_t *p, const void *data, size_t len)
{
    uint64_t seq, bytes;
    stm_error err = {0};
    if (stm_wire_decode_received(data, len, &seq, &bytes, &err) != STM_OK) {
        stm_node_drop(n, REPORT_DROP_RECEIVED);
        stm_log_event(STM_LOG_WARN, "malformed", stm_peer_short_id(p), "%s", err.msg);
        return;
    }
    stm_session_on_received(stm_peer_session(p), seq, bytes, stm_monotime_ms());
}

static void s_on_ack(node_t *n, peer_t *p, const void *data, size_t len)
{
    uint64_t seq;
    vector_msg v;
    stm_error err = {0};
    if (stm_wire_decode_ack(data, len, &seq, &v, &err) != STM_OK) {
        stm_node_drop(n, REPORT_DROP_ACK);
        stm_log_event(STM_LOG_WARN, "malformed", stm_peer_short_id(p), "%s", err.msg);
        return;
    }
    session_t *s = stm_peer_session(p);
    uint64_t cut_before = stm_session_vectors_cut(s);
    stm_node_as_older(n, &v);
    session_vector taken = stm_session_take_vector(s, &v);
    stm_session_on_ack(s, seq, stm_monotime_ms());
    stm_node_vector_taken(n, p, taken, cut_before);
}

/* It stopped getting what we hold from another: its vector, and what it lacks again. */
static void s_on_graft(node_t *n, peer_t *p, const void *data, size_t len)
{
    vector_msg v;
    stm_error err = {0};
    if (stm_wire_decode_graft(data, len, &v, &err) != STM_OK) {
        stm_node_drop(n, REPORT_DROP_VECTOR);
        stm_log_event(STM_LOG_WARN, "malformed", stm_peer_short_id(p), "%s", err.msg);
        return;
    }
    session_t *s = stm_peer_session(p);
    uint64_t cut_before = stm_session_vectors_cut(s);
    stm_node_as_older(n, &v);
    stm_node_vector_taken(n, p, stm_session_take_vector(s, &v), cut_before);
    stm_vector_msg_clear(&v);
    stm_peer_on_graft(p);
}

/* (node_internal.h) A GRAFT to p when it is due (peer.h, "lazy links"). */
void stm_node_check_graft(node_t *n, peer_t *p)
{
    if (!stm_peer_check_graft(p, stm_feed_vector(stm_local_feed(n->local)), stm_monotime_ms()))
        return;
    const vector_out *parts;
    size_t count = stm_node_vector_out(n, p, &parts);
    stm_peer_graft(p, &parts[0]);
    stm_node_send_parts(p, parts + 1, count - 1);
    stm_session_vector_sent(stm_peer_session(p));
}

/* A part of its vector, or a request for ours whole. */
static void s_on_vector(node_t *n, peer_t *p, const void *data, size_t len)
{
    vector_msg v;
    bool has_vector, need;
    stm_error err = {0};
    if (stm_wire_decode_vector(data, len, &v, &has_vector, &need, &err) != STM_OK) {
        stm_node_drop(n, REPORT_DROP_VECTOR);
        stm_log_event(STM_LOG_WARN, "malformed", stm_peer_short_id(p), "%s", err.msg);
        return;
    }
    session_t *s = stm_peer_session(p);
    if (has_vector) {
        uint64_t cut_before = stm_session_vectors_cut(s);
        stm_node_vector_taken(n, p, stm_session_take_vector(s, &v), cut_before);
        stm_node_check_graft(n, p);
    }
    stm_vector_msg_clear(&v);
    if (need)
        stm_node_send_whole(n, p);
}

/* One message, from the inbox (from NULL) or from the DEALER to peer from: its header
 * checked, then handed to its handler. */
void stm_node_dispatch(node_t *n, peer_t *from, const inbox_msg *m)
{
    /* A connection admitted before its key was removed (stemma trust remove) stays
     * open in libzmq: what comes on it is dropped here, by the key ZAP admitted. An
     * answer on our own DEALER passed no ZAP handler: its key is asked here, trusted
     * on first use as ZAP would. */
    bool trusted = !m->verified || (from ? stm_zap_admit(n->zap, &m->sender)
                                         : stm_zap_is_trusted(n->zap, &m->sender));
    if (!trusted) {
        stm_node_drop(n, REPORT_DROP_UNTRUSTED);
        return;
    }
    /* Removed, then trusted again by ZAP on first use (a new connection): its peer is
     * no longer refused for its key, before its HELLO is judged. Only a sender ZAP
     * admitted counts: an insecure node's senders only claim who they are, so a peer
     * removed there stays removed until `stemma peer add`. */
    peer_t *p = from ? from : m->has_sender ? stm_mesh_find(n->mesh, &m->sender) : NULL;
    if (p && !from && m->verified && stm_peer_distrusted(p))
        stm_peer_trust_again(p, stm_monotime_ms());
    const char *who = p ? stm_peer_short_id(p) : NULL;
    int version, type;
    stm_error err = {0};
    if (stm_wire_header(m->data, m->len, &version, &type, &err) != STM_OK) {
        stm_node_drop(n, REPORT_DROP_NOT_STEMMA);
        stm_log_event(STM_LOG_WARN, "malformed", who, "%s", err.msg);
        return;
    }
    if (version != WIRE_VERSION) {
        stm_node_drop(n, REPORT_DROP_VERSION);
        stm_log_event(STM_LOG_WARN, "protocol-version", who,
                      "a message of protocol version %d (this node speaks %d): ignored", version,
                      WIRE_VERSION);
        return;
    }
    if (type == WIRE_HELLO) {
        stm_node_on_hello(n, p, m);
        return;
    }
    if (!p) {
        stm_node_drop(n, REPORT_DROP_UNKNOWN);
        return;
    }
    if (!stm_peer_active(p))
        return; /* not kept (mesh.h): only its HELLO is read, which may let it in */
    if (m->route_len)
        stm_peer_set_route(p, m->route, m->route_len, m->address);
    stm_peer_heard(p, stm_monotime_ms());
    switch (type) {
    case WIRE_REFUSE:
        s_on_refuse(n, p, m->data, m->len);
        break;
    case WIRE_OPS:
        s_on_ops(n, p, m->data, m->len);
        break;
    case WIRE_ACK:
        s_on_ack(n, p, m->data, m->len);
        break;
    case WIRE_RECEIVED:
        s_on_received(n, p, m->data, m->len);
        break;
    case WIRE_VECTOR:
        s_on_vector(n, p, m->data, m->len);
        break;
    case WIRE_PRUNE:
        stm_peer_on_prune(p);
        break;
    case WIRE_GRAFT:
        s_on_graft(n, p, m->data, m->len);
        break;
    case WIRE_BYE:
        if (stm_peer_on_bye(p, stm_monotime_ms()))
            stm_log_event(STM_LOG_INFO, "peer-left", stm_peer_short_id(p), "said BYE");
        break;
    default:
        break; /* PING, and types of later versions: ignored */
    }
}
