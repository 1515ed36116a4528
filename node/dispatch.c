/* dispatch.c - what a message from a peer does: a HELLO met and judged, a REFUSE, OPS
 * queued to store, RECEIVED, ACK, BYE, a beacon heard; and the HELLO this node sends.
 * node.c holds the loop that reads the sockets and the timers; both share the node's
 * struct through node_internal.h. Dispatch only records (node.c, invariant 2): what it
 * decides to send leaves at once, what it decides to store waits for the inbound timer. */
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
static size_t s_vector_out(node_t *n, peer_t *p, const vector_out **parts)
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
static void s_send_parts(peer_t *p, const vector_out *parts, size_t count)
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
static void s_send_whole(node_t *n, peer_t *p)
{
    stm_session_vector_lost(stm_peer_session(p));
    const vector_out *parts;
    size_t count = s_vector_out(n, p, &parts);
    s_send_parts(p, parts, count);
    stm_session_vector_sent(stm_peer_session(p));
}

/* Taken as a stemma before vector deltas takes it, by a node told not to use them
 * ([sync] vector_deltas = false): whole, whatever else the message says. */
static void s_as_older(const node_t *n, vector_msg *m)
{
    if (n->deltas)
        return;
    m->delta = m->has_digest = m->more = m->part = false;
}

/* What a vector part of p's came to (stm_session_take_vector): asked for whole when it
 * could not be taken; a peer counting digests otherwise is said once. */
static void s_vector_taken(node_t *n, peer_t *p, session_vector r, uint64_t cut_before)
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

/* Our HELLO to p, naming our other connected peers; reply: it answers p's. */
void stm_node_send_hello(node_t *n, peer_t *p, bool reply)
{
    session_t *s = stm_peer_session(p);
    const vector_out *parts;
    size_t nparts = s_vector_out(n, p, &parts);
    vector_digest know;
    bool knows = n->deltas && stm_session_knows_theirs(s, &know);
    size_t npeers;
    wire_peer *list = stm_mesh_list(n->mesh, p, &npeers);
    wire_hello_out h = {.endpoint = n->advertise,
                        .name = n->name,
                        .lineage = stm_local_lineage(n->local),
                        .vector = &parts[0],
                        .know = knows ? &know : NULL,
                        .min_supported = n->policy.min_supported_version,
                        .peers = list,
                        .npeers = npeers,
                        .reply = reply,
                        .deltas = n->deltas,
                        .lenses = stm_local_lenses(n->local)};
    buf_t msg = BUF_INIT;
    stm_wire_encode_hello(&msg, &n->id, &h);
    stm_peer_send(p, &msg);
    stm_buf_free(&msg);
    s_send_parts(p, parts + 1, nparts - 1);
    stm_session_vector_sent(s);
    free(list);
}

/* ---- what peers say ---- */

/* True for a HELLO with a connected peer's key from another endpoint than the peer's:
 * two devices with one key (one made from an image of the other), of which only one
 * can be answered: the one connected keeps the key, the other's HELLO is dropped until
 * the first falls silent (a peer that moved is met then). Said once per pair of
 * endpoints. */
static bool s_key_shared(node_t *n, peer_t *p, const wire_hello *h)
{
    /* Where the connected one says it listens: a peer listed in node.toml keeps the
     * endpoint it was listed with, which may name the same node otherwise
     * (tcp://localhost:... for tcp://127.0.0.1:..., a host name for an address). */
    const wire_hello *last = stm_peer_hello(p);
    const char *known = last && last->endpoint ? last->endpoint : stm_peer_endpoint(p);
    if (stm_peer_get_state(p) != PEER_CONNECTED || !h->endpoint[0] || !known[0] ||
        strcmp(h->endpoint, known) == 0)
        return false;
    buf_t pair = BUF_INIT; /* in one order, whichever spoke last */
    bool ordered = strcmp(known, h->endpoint) < 0;
    stm_buf_printf(&pair, "%s %s", ordered ? known : h->endpoint, ordered ? h->endpoint : known);
    if (!n->clone_seen || strcmp(n->clone_seen, stm_buf_str(&pair)) != 0) {
        free(n->clone_seen);
        n->clone_seen = stm_buf_detach(&pair);
        stm_log_event(STM_LOG_WARN, "key-in-use", stm_peer_short_id(p),
                      "HELLOs with this peer's key come from %s and from %s: unless it moved, "
                      "two devices share one key (one made from an image of the other?) and "
                      "only the first is answered; give the other an identity of its own "
                      "there: stemma init --new-identity (its database keeps its data)",
                      known, h->endpoint);
    }
    stm_buf_free(&pair);
    return true;
}

/* Whether a HELLO lists a capability. */
static bool s_lists(const wire_hello *h, const char *capability)
{
    for (size_t i = 0; i < h->ncapabilities; i++)
        if (strcmp(h->capabilities[i], capability) == 0)
            return true;
    return false;
}

static void s_on_hello(node_t *n, peer_t *p, const inbox_msg *m)
{
    const stm_id *verified = m->verified ? &m->sender : NULL;
    wire_hello h;
    stm_error err = {0};
    if (stm_wire_decode_hello(m->data, m->len, &h, &err) != STM_OK) {
        stm_node_drop(n, REPORT_DROP_HELLO);
        stm_log_event(STM_LOG_WARN, "malformed", p ? stm_peer_short_id(p) : NULL, "%s", err.msg);
        return;
    }
    if (verified && !stm_id_equal(verified, &h.node_id)) {
        stm_node_drop(n, REPORT_DROP_IMPOSTOR);
        stm_log_event(STM_LOG_WARN, "impostor", NULL,
                      "a HELLO claims another node id than the key it connected with; dropped");
        stm_wire_hello_clear(&h);
        return;
    }
    if (stm_id_equal(&h.node_id, &n->id)) {
        /* Its own HELLO back (it dialled itself), or another node with this node's key:
         * a device made from this one's image. Said once per endpoint seen. */
        if (h.endpoint[0] && strcmp(h.endpoint, n->advertise) != 0 &&
            (!n->clone_seen || strcmp(h.endpoint, n->clone_seen) != 0)) {
            free(n->clone_seen);
            n->clone_seen = stm_strdup(h.endpoint);
            stm_log_event(STM_LOG_WARN, "key-in-use", NULL,
                          "a node at %s runs with this node's key: a device made from an "
                          "image of this one? Give it an identity of its own there: stemma "
                          "init --new-identity (its database keeps its data)",
                          h.endpoint);
        }
        stm_wire_hello_clear(&h);
        return;
    }
    /* Insecure, the node at the end of our DEALER may be another than we met there. */
    if (p && stm_peer_id(p) && !stm_id_equal(stm_peer_id(p), &h.node_id))
        p = NULL;
    if (!p)
        p = stm_mesh_find(n->mesh, &h.node_id);
    if (!p) {
        /* A peer known only by its endpoint (no key given) is this one; a peer whose key
         * is known and another is not: the node there has a new key now. */
        p = stm_mesh_find_endpoint(n->mesh, h.endpoint);
        if (p && stm_peer_id(p) && !stm_id_equal(stm_peer_id(p), &h.node_id))
            p = NULL;
    }
    if (!p) {
        /* A wildcard (from a node before advertise) is no endpoint either: dialled, it
         * would reach this machine. */
        bool dialable = stm_endpoint_dialable(h.endpoint);
        p = stm_mesh_add(n->mesh, &h.node_id, dialable ? h.endpoint : "", false);
        if (!dialable && m->route_len)
            stm_log_event(STM_LOG_INFO, "peer-dialled-in", stm_peer_short_id(p),
                          "its HELLO gives no endpoint to dial (%s): it is answered on the "
                          "connection it opened%s%s, while that is open",
                          h.endpoint[0] ? h.endpoint : "none", m->address[0] ? " from " : "",
                          m->address);
    }
    if (s_key_shared(n, p, &h)) {
        stm_wire_hello_clear(&h);
        return;
    }
    if (m->route_len)
        stm_peer_set_route(p, m->route, m->route_len, m->address);
    peer_state was = stm_peer_get_state(p);
    /* Its vector, whole or a delta over what we hold of it; and whether it holds ours
     * (vknow): the session's (sync/session.h, invariant 10). */
    session_t *session = stm_peer_session(p);
    bool deltas = n->deltas && s_lists(&h, WIRE_CAP_VDELTA);
    stm_session_set_deltas(session, deltas);
    uint64_t cut_before = stm_session_vectors_cut(session);
    s_as_older(n, &h.vector);
    session_vector taken = stm_session_take_vector(session, &h.vector);
    stm_session_told_knows(session, deltas && h.has_know ? &h.know : NULL);
    /* It holds more of this database's origin than the database has issued: the
     * database went back in time (sync/origin.h), and takes a new origin now. */
    stm_local_check_held(n->local, stm_session_theirs(session));
    /* The versions it describes: operations written there (relayed by anyone) are
     * judged by them (admit.h); what waited for them is judged again. */
    if (stm_admit_learn(stm_local_admit(n->local), h.lineage, &h.lenses))
        n->policy_retry = true;
    stm_peer_on_hello(p, &h, stm_local_lineage(n->local), &n->policy, stm_monotime_ms());
    stm_peer_follow(p, stm_local_lenses(n->local), stm_local_set_lineage(n->local),
                    stm_local_admit(n->local), &n->policy);
    if (!stm_endpoint_dialable(stm_peer_endpoint(p)) && !stm_peer_routed(p) && m->route_len)
        stm_log_event(STM_LOG_WARN, "peer-unreachable", stm_peer_short_id(p),
                      "its HELLO gives no endpoint to dial, and its stemma does not read "
                      "answers on the connection it opened (an older version): this node "
                      "cannot answer it; set [node] advertise on it, or upgrade it");
    if (stm_node_open_peer(n, p, &err) != STM_OK)
        stm_log_event(STM_LOG_WARN, "peer", stm_peer_short_id(p), "%s", err.msg);
    const wire_hello *hello = stm_peer_hello(p);
    const peer_verdict *v = stm_peer_get_verdict(p);
    const comparison_t *c = v->cmp;
    if (v->sync == PEER_SYNC_REFUSED) {
        stm_log_event(STM_LOG_WARN, "peer-refused", stm_peer_short_id(p), "%s v%d (%s): %s",
                      stm_lineage_name(hello->lineage), c->remote_version,
                      stm_relation_name(c->relation), v->reason);
        buf_t msg = BUF_INIT;
        stm_wire_encode_refuse(&msg, v->reason);
        stm_peer_send(p, &msg);
        stm_buf_free(&msg);
    } else if (stm_peer_get_state(p) == PEER_CONNECTED && was != PEER_CONNECTED) {
        stm_log_event(STM_LOG_INFO, "peer-connected", stm_peer_short_id(p),
                      "%s%s%s%s %s v%d, %s, sync %s: %s", hello->name ? "\"" : "",
                      hello->name ? hello->name : "", hello->name ? "\" " : "",
                      stm_peer_endpoint(p)[0] ? stm_peer_endpoint(p) : "(no endpoint)",
                      stm_lineage_name(hello->lineage), c->remote_version,
                      stm_relation_name(c->relation), stm_peer_sync_name(v->sync), v->reason);
        /* The other peers hear of it (peer lists travel in HELLOs); flagged as a reply
         * so that they do not answer. */
        for (size_t i = 0; i < stm_mesh_count(n->mesh); i++) {
            peer_t *q = stm_mesh_at(n->mesh, i);
            if (q != p && stm_peer_get_state(q) == PEER_CONNECTED)
                stm_node_send_hello(n, q, true);
        }
    }
    stm_node_tell_judged(n, p);
    if (v->warning[0])
        stm_log_event(STM_LOG_WARN, "version-gap", stm_peer_short_id(p), "%s", v->warning);
    /* The answer goes after a REFUSE: the refused side keeps the refusal through
     * answers (they carry reply), so it ends refused, not connected. It carries our
     * vector whole when the peer said it does not hold it; an answer is not answered, so
     * then our whole vector follows in VECTOR messages. */
    if (!hello->reply)
        stm_node_send_hello(n, p, true);
    else if (deltas && !stm_session_vector_synced(session))
        s_send_whole(n, p);
    s_vector_taken(n, p, taken, cut_before);
    stm_mesh_learn(n->mesh, hello);
}

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
    stm_bulk_stored(stm_peer_bulk(p), stm_peer_session(p), stm_feed_vector(stm_local_feed(n->local)),
                    stm_peer_short_id(p), stm_monotime_ms());
    const vector_out *parts;
    size_t nparts = s_vector_out(n, p, &parts);
    buf_t msg = BUF_INIT;
    stm_wire_encode_ack(&msg, seq, &parts[0]);
    stm_peer_send(p, &msg);
    stm_buf_free(&msg);
    s_send_parts(p, parts + 1, nparts - 1);
    stm_session_vector_sent(stm_peer_session(p));
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
    s_as_older(n, &v);
    session_vector taken = stm_session_take_vector(s, &v);
    stm_session_on_ack(s, seq, stm_monotime_ms());
    s_vector_taken(n, p, taken, cut_before);
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
        s_vector_taken(n, p, stm_session_take_vector(s, &v), cut_before);
    }
    stm_vector_msg_clear(&v);
    if (need)
        s_send_whole(n, p);
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
        s_on_hello(n, p, m);
        return;
    }
    if (!p) {
        stm_node_drop(n, REPORT_DROP_UNKNOWN);
        return;
    }
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
    case WIRE_BYE:
        if (stm_peer_on_bye(p, stm_monotime_ms()))
            stm_log_event(STM_LOG_INFO, "peer-left", stm_peer_short_id(p), "said BYE");
        break;
    default:
        break; /* PING, and types of later versions: ignored */
    }
}

/* ---- LAN discovery ---- */

/* A beacon heard (beacon.h): the node it names is met, dialled at the address the
 * beacon came from, only when it is not this node, runs in this node's security mode,
 * is no peer already, and its key is trusted (any key, under trust on first use or
 * insecure: the user's choice). A node whose key is not trusted is sent nothing, not a
 * HELLO: a beacon proves no key, and a HELLO tells lineage, vector and peers. Its key
 * is named once in the log, with the command that would let it in. */
void stm_node_on_beacon(node_t *n, const beacon_heard *h)
{
    const beacon_msg *m = &h->msg;
    if (stm_id_equal(&m->id, &n->id)) {
        stm_beacon_tally(n->beacon, BEACON_OWN); /* its own, back from the broadcast */
        return;
    }
    char key[KEYS_Z85_LEN + 1], sid[STM_ID_SHORT_LEN + 1];
    stm_keys_to_z85(&m->id, key);
    stm_id_short(&m->id, sid);
    if (m->insecure != n->insecure) {
        stm_beacon_tally(n->beacon, BEACON_OTHER_MODE);
        if (stm_beacon_tell_once(n->beacon, &m->id))
            stm_log_event(STM_LOG_WARN, "beacon-other-mode", sid,
                          "a node at %s runs %s and this node %s: they cannot talk, so its "
                          "beacons are ignored (said once per key)",
                          h->endpoint, m->insecure ? "insecure" : "with CURVE",
                          n->insecure ? "insecure" : "with CURVE");
        return;
    }
    /* A peer already (by its key; or, insecure, one listed without a key at the very
     * endpoint): its HELLOs say where it is. Only one that has stopped answering where
     * it was dialled is dialled where the beacon comes from (stm_peer_move). */
    peer_t *p = stm_mesh_find(n->mesh, &m->id);
    if (!p)
        p = stm_mesh_find_endpoint(n->mesh, h->endpoint);
    if (p) {
        stm_beacon_tally(n->beacon, BEACON_KNOWN);
        if (stm_peer_move(p, h->endpoint, stm_monotime_ms()))
            stm_log_event(STM_LOG_INFO, "peer-moved", stm_peer_short_id(p),
                          "no answer where it was dialled, and its beacon comes from %s: "
                          "dialling it there",
                          h->endpoint);
        return;
    }
    if (!n->insecure && !stm_zap_is_trusted(n->zap, &m->id) && !stm_zap_tofu(n->zap)) {
        stm_beacon_tally(n->beacon, BEACON_UNTRUSTED);
        if (stm_beacon_tell_once(n->beacon, &m->id))
            stm_log_event(STM_LOG_WARN, "beacon-untrusted", sid,
                          "a node at %s beacons with key %s, which this node does not trust: "
                          "it is sent nothing. To sync with it: stemma trust add '%s' --dir %s "
                          "(said once per key)",
                          h->endpoint, key, key, n->dir);
        return;
    }
    if (stm_mesh_count(n->mesh) >= MESH_MAX_LEARNED) {
        stm_beacon_tally(n->beacon, BEACON_FULL);
        if (stm_beacon_tell_once(n->beacon, &m->id))
            stm_log_event(STM_LOG_WARN, "beacon", sid,
                          "a node at %s is not met: this node knows %d peers already (said "
                          "once per key)",
                          h->endpoint, MESH_MAX_LEARNED);
        return;
    }
    /* Its first HELLO is due at once (the HELLO timer opens its DEALER). */
    p = stm_mesh_add(n->mesh, &m->id, h->endpoint, false);
    stm_beacon_tally(n->beacon, BEACON_MET);
    stm_log_event(STM_LOG_INFO, "peer-discovered", stm_peer_short_id(p),
                  "its beacon came from %s%s", h->endpoint,
                  n->insecure || stm_zap_is_trusted(n->zap, &m->id)
                      ? ""
                      : " (its key is not trusted yet: trust on first use takes it when it "
                        "answers)");
}

