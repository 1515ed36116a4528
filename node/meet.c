/* meet.c - meeting peers: the HELLO this node sends, what a HELLO from a peer does (met,
 * judged, let in or told this node is full, its peer list remembered), and a beacon
 * heard (LAN discovery). dispatch.c hands each HELLO here; the mesh (mesh.h) says which
 * peers are kept. Dispatch only records (node.c, invariant 2): what it decides to send
 * leaves at once. */
#include "node_internal.h"
#include "endpoint.h"
#include "peer.h"
#include "wire.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "sync/session.h"

#include <stdlib.h>
#include <string.h>

/* Whether a connected peer other than p sends to this node eagerly. */
bool stm_node_eager_besides(const node_t *n, const peer_t *p)
{
    for (size_t i = 0; i < stm_mesh_count(n->mesh); i++) {
        const peer_t *q = stm_mesh_at(n->mesh, i);
        if (q != p && stm_peer_sends_eagerly(q))
            return true;
    }
    return false;
}

/* Our HELLO to p into msg, naming our other connected peers, carrying vector (and
 * know: the digest of p's vector as we hold it, or NULL); reply: it answers p's; full:
 * this node does not keep p (mesh.h), which needs no lenses. */
static void s_encode_hello(node_t *n, const peer_t *p, const vector_out *vector,
                           const vector_digest *know, bool reply, bool full, buf_t *msg)
{
    size_t npeers;
    wire_peer *list = stm_mesh_list(n->mesh, p, &npeers);
    wire_hello_out h = {.endpoint = n->advertise,
                        .name = n->name,
                        .lineage = stm_local_lineage(n->local),
                        .vector = vector,
                        .know = know,
                        .min_supported = n->policy.min_supported_version,
                        .peers = list,
                        .npeers = npeers,
                        .reply = reply,
                        .listed = stm_peer_configured(p),
                        .full = full,
                        .deltas = n->deltas,
                        .lenses = full ? NULL : stm_local_lenses(n->local)};
    stm_wire_encode_hello(msg, &n->id, &h);
    free(list);
}

/* Our HELLO to p, naming our other connected peers; reply: it answers p's. One that is
 * no reply starts the link eager both ways, here as at p when it reads it. */
void stm_node_send_hello(node_t *n, peer_t *p, bool reply)
{
    session_t *s = stm_peer_session(p);
    if (!reply)
        stm_peer_links_eager(p);
    const vector_out *parts;
    size_t nparts = stm_node_vector_out(n, p, &parts);
    vector_digest know;
    bool knows = n->deltas && stm_session_knows_theirs(s, &know);
    buf_t msg = BUF_INIT;
    s_encode_hello(n, p, &parts[0], knows ? &know : NULL, reply, false, &msg);
    stm_peer_send(p, &msg);
    stm_buf_free(&msg);
    stm_node_send_parts(p, parts + 1, nparts - 1);
    stm_session_vector_sent(s);
}

/* ---- what a HELLO says ---- */

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

/* Its HELLO says it does not keep this node (mesh.h): a chosen peer is let go, and
 * another chosen in its place; what its peer list names is remembered. */
static void s_on_full(node_t *n, peer_t *p, const wire_hello *h)
{
    stm_mesh_declined(n->mesh, p, stm_monotime_ms());
    if (stm_peer_tell_once(p, PEER_TOLD_FULL))
        stm_log_event(STM_LOG_INFO, "peer-full", stm_peer_short_id(p),
                      "%s keeps as many peers as it may, and not this node%s (said once)",
                      stm_peer_endpoint(p),
                      stm_peer_configured(p) ? ": asked again, with backoff"
                                             : ": another is chosen in its place");
    stm_mesh_learn(n->mesh, h);
}

/* A HELLO from a peer this node does not keep: it dialled this node. Let in when the
 * mesh has room (mesh.h; always when it lists this node in its node.toml, which an
 * older stemma is taken to do); else answered, on the connection it came on, with a
 * HELLO that says "full" and names our peers, so that it dials another. */
static bool s_let_in(node_t *n, peer_t *p, const wire_hello *h, const inbox_msg *m)
{
    bool listed = h->listed || !s_lists(h, WIRE_CAP_MESH);
    if (stm_mesh_admit(n->mesh, p, listed, stm_monotime_ms()))
        return true;
    if (m->route_len && s_lists(h, WIRE_CAP_ROUTE)) {
        /* Its vector is not ours to track (the peer is not kept): an empty one. */
        vector_t *none = stm_vector_new();
        vector_out whole = {.entries = BUF_INIT};
        stm_vector_out_whole(&whole, none);
        buf_t msg = BUF_INIT;
        s_encode_hello(n, p, &whole, NULL, true, true, &msg);
        stm_peer_answer(p, m->route, m->route_len, &msg);
        stm_buf_free(&msg);
        stm_buf_free(&whole.entries);
        stm_vector_destroy(&none);
    }
    if (stm_peer_tell_once(p, PEER_TOLD_FULL))
        stm_log_event(STM_LOG_INFO, "peer-declined", stm_peer_short_id(p),
                      "it dialled this node, which keeps %zu learned peers already: told so "
                      "(said once)",
                      2 * stm_mesh_target(n->mesh));
    stm_mesh_learn(n->mesh, h);
    return false;
}

void stm_node_on_hello(node_t *n, peer_t *p, const inbox_msg *m)
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
        p = stm_mesh_add(n->mesh, &h.node_id, dialable ? h.endpoint : "", MESH_KNOWN);
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
    bool let_in = !stm_peer_active(p);
    if (h.full || (let_in && !s_let_in(n, p, &h, m))) {
        if (h.full)
            s_on_full(n, p, &h);
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
    stm_node_as_older(n, &h.vector);
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
    bool prune = false;
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
        /* A learned link (neither lists the other) to a node that has another: it starts
         * lazy toward this node, which other paths feed first (peer.h, "lazy links"). */
        prune = stm_mesh_role_of(n->mesh, p) != MESH_CONFIGURED && !hello->listed &&
                stm_node_eager_besides(n, p);
        /* The other peers hear of it (peer lists travel in HELLOs); flagged as a reply
         * so that they do not answer. So does it, when its HELLO answered ours: the list
         * ours carried is as old as our dialling, and in a sparse mesh a node knows of
         * others only from the lists of those it keeps. */
        for (size_t i = 0; i < stm_mesh_count(n->mesh); i++) {
            peer_t *q = stm_mesh_at(n->mesh, i);
            if ((q != p || hello->reply) && stm_peer_get_state(q) == PEER_CONNECTED)
                stm_node_send_hello(n, q, true);
        }
    }
    stm_node_tell_judged(n, p);
    if (v->warning[0])
        stm_log_event(STM_LOG_WARN, "version-gap", stm_peer_short_id(p), "%s", v->warning);
    /* The answer goes after a REFUSE: the refused side keeps the refusal through
     * answers (they carry reply), so it ends refused, not connected. A peer let in
     * again that this node had refused (its key, since trusted again) is answered with a
     * HELLO of our own, which lifts its side's refusal of us. It carries our
     * vector whole when the peer said it does not hold it; an answer is not answered, so
     * then our whole vector follows in VECTOR messages. */
    if (!hello->reply)
        stm_node_send_hello(n, p, !(let_in && was == PEER_REFUSED));
    else if (deltas && !stm_session_vector_synced(session))
        stm_node_send_whole(n, p);
    stm_node_vector_taken(n, p, taken, cut_before);
    /* After our answer: a HELLO that is no answer makes the link eager again there. */
    if (prune)
        stm_peer_prune(p);
    stm_mesh_learn(n->mesh, hello);
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
    /* Known: dialled once chosen (mesh.h), which the loop does before it sleeps. */
    p = stm_mesh_add(n->mesh, &m->id, h->endpoint, MESH_KNOWN);
    stm_beacon_tally(n->beacon, BEACON_MET);
    stm_log_event(STM_LOG_INFO, "peer-discovered", stm_peer_short_id(p),
                  "its beacon came from %s%s", h->endpoint,
                  n->insecure || stm_zap_is_trusted(n->zap, &m->id)
                      ? ""
                      : " (its key is not trusted yet: trust on first use takes it when it "
                        "answers)");
}

