/* mesh.c - the peers a node knows, and which of them it keeps (mesh.h). */
#include "mesh.h"
#include "choose.h"
#include "endpoint.h"
#include "base/log.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

/* One peer and why it is kept. */
typedef struct {
    peer_t *peer;          /* owned */
    mesh_role role;
    bool connected;        /* CONNECTED at some time since it took its role */
    int64_t since_ms;      /* when it took its role */
    int64_t retry_after;   /* KNOWN: not chosen before this (it was let go) */
} s_entry;

struct mesh {
    stm_id self;        /* the node's own id: never a peer */
    peer_timing timing; /* what every peer is given */
    mesh_limits limits; /* invariant 2's bounds */
    inbox_t *inbox;     /* the node's, lent to every peer */
    s_entry *peers;     /* in the order met */
    size_t count, cap;
    bool dirty;         /* a choice may find more than the last one did */
    int64_t next_at;    /* stm_mesh_choose_at */
};

const char *stm_mesh_role_name(mesh_role r)
{
    switch (r) {
    case MESH_CONFIGURED:
        return "configured";
    case MESH_CHOSEN:
        return "chosen";
    case MESH_LISTED:
        return "listed";
    case MESH_DIALLED_IN:
        return "dialled-in";
    case MESH_KNOWN:
        return "known";
    }
    return "known";
}

mesh_t *stm_mesh_new(const stm_id *self, const peer_timing *timing, const mesh_limits *limits,
                     inbox_t *inbox)
{
    mesh_t *m = stm_calloc(1, sizeof *m);
    m->inbox = inbox;
    m->self = *self;
    m->timing = *timing;
    m->limits = *limits;
    m->next_at = INT64_MAX;
    return m;
}

void stm_mesh_destroy(mesh_t **self_p)
{
    mesh_t *m = *self_p;
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++)
        stm_peer_destroy(&m->peers[i].peer);
    free(m->peers);
    free(m);
    *self_p = NULL;
}

size_t stm_mesh_count(const mesh_t *m)
{
    return m->count;
}

peer_t *stm_mesh_at(const mesh_t *m, size_t i)
{
    return m->peers[i].peer;
}

mesh_role stm_mesh_role_at(const mesh_t *m, size_t i)
{
    return m->peers[i].role;
}

static s_entry *s_entry_of(const mesh_t *m, const peer_t *p)
{
    for (size_t i = 0; i < m->count; i++)
        if (m->peers[i].peer == p)
            return &m->peers[i];
    return NULL;
}

mesh_role stm_mesh_role_of(const mesh_t *m, const peer_t *p)
{
    const s_entry *e = s_entry_of(m, p);
    return e ? e->role : MESH_KNOWN;
}


peer_t *stm_mesh_find(const mesh_t *m, const stm_id *id)
{
    for (size_t i = 0; i < m->count; i++) {
        const stm_id *pid = stm_peer_id(m->peers[i].peer);
        if (pid && stm_id_equal(pid, id))
            return m->peers[i].peer;
    }
    return NULL;
}

peer_t *stm_mesh_find_endpoint(const mesh_t *m, const char *endpoint)
{
    if (!stm_endpoint_dialable(endpoint))
        return NULL; /* "" (none) names no one peer */
    for (size_t i = 0; i < m->count; i++)
        if (strcmp(stm_peer_endpoint(m->peers[i].peer), endpoint) == 0)
            return m->peers[i].peer;
    return NULL;
}

/* e takes role from now_ms: active unless KNOWN (invariant 1). */
static void s_set_role(s_entry *e, mesh_role role, int64_t now_ms)
{
    e->role = role;
    e->since_ms = now_ms;
    e->connected = false;
    stm_peer_set_configured(e->peer, role == MESH_CONFIGURED);
    if (role == MESH_KNOWN)
        stm_peer_deactivate(e->peer);
    else
        stm_peer_activate(e->peer, now_ms);
}

/* e is let go (invariant 3): known, and not chosen again for retry_ms. */
static void s_let_go(mesh_t *m, s_entry *e, int64_t now_ms)
{
    s_set_role(e, MESH_KNOWN, now_ms);
    e->retry_after = now_ms + m->limits.retry_ms;
    m->dirty = true;
}

peer_t *stm_mesh_add(mesh_t *m, const stm_id *id, const char *endpoint, mesh_role role)
{
    peer_t *p = stm_peer_new(id, endpoint, role == MESH_CONFIGURED, &m->timing, m->inbox);
    m->peers = stm_grow(m->peers, &m->cap, m->count + 1, sizeof *m->peers);
    s_entry *e = &m->peers[m->count++];
    *e = (s_entry){.peer = p, .role = role};
    if (role == MESH_KNOWN)
        stm_peer_deactivate(p); /* new: nothing to close, only the flag */
    m->dirty = true;            /* n grew, and with it k */
    return p;
}

void stm_mesh_set_configured(mesh_t *m, peer_t *p, bool configured, int64_t now_ms)
{
    s_entry *e = s_entry_of(m, p);
    if (!e || (e->role == MESH_CONFIGURED) == configured)
        return;
    if (configured)
        s_set_role(e, MESH_CONFIGURED, now_ms);
    else
        s_let_go(m, e, now_ms);
    m->dirty = true;
}

void stm_mesh_learn(mesh_t *m, const wire_hello *h)
{
    for (size_t i = 0; i < h->npeers; i++) {
        const wire_peer *wp = &h->peers[i];
        /* One this node could not dial: a wildcard reaches this machine, not the peer. */
        if (stm_id_equal(&wp->id, &m->self) || stm_mesh_find(m, &wp->id) ||
            !stm_endpoint_dialable(wp->endpoint))
            continue;
        if (m->count >= MESH_MAX_LEARNED) {
            stm_log_event(STM_LOG_WARN, "peer", NULL,
                          "a peer list names more peers than this node meets (%d known): "
                          "the rest are not met",
                          MESH_MAX_LEARNED);
            return;
        }
        peer_t *known = stm_mesh_find_endpoint(m, wp->endpoint);
        if (known) {
            stm_peer_set_id(known, &wp->id); /* only when it was not known */
            continue;
        }
        peer_t *p = stm_mesh_add(m, &wp->id, wp->endpoint, MESH_KNOWN);
        stm_log_event(STM_LOG_INFO, "peer-learned", stm_peer_short_id(p), "from a peer list: %s",
                      stm_peer_endpoint(p));
    }
}

/* ---- the active set ---- */

/* The peers of each role, active ones and learned ones counted against invariant 2. */
typedef struct {
    size_t configured, chosen, learned, active;
} s_counts;

static s_counts s_count_roles(const mesh_t *m)
{
    s_counts c = {0};
    for (size_t i = 0; i < m->count; i++) {
        const s_entry *e = &m->peers[i];
        c.configured += e->role == MESH_CONFIGURED;
        c.chosen += e->role == MESH_CHOSEN;
        c.learned += e->role == MESH_CHOSEN || e->role == MESH_DIALLED_IN;
        c.active += e->role != MESH_KNOWN;
    }
    return c;
}

/* The bits of n: floor(log2 n) + 1, 0 for 0. One more than the buckets (choose.h) n
 * random ids fill, so a kept peer to spare; and all of 2 or 3, so that the smallest
 * meshes are complete. */
static size_t s_bits(size_t n)
{
    size_t b = 0;
    while (b < 64 && n >> b)
        b++;
    return b;
}

size_t stm_mesh_target(const mesh_t *m)
{
    s_counts c = s_count_roles(m);
    size_t k = s_bits(m->count);
    if (m->limits.max_learned >= 0 && k > (size_t)m->limits.max_learned)
        k = (size_t)m->limits.max_learned;
    size_t room = m->limits.max_active > c.configured ? m->limits.max_active - c.configured : 0;
    return k < room ? k : room;
}

bool stm_mesh_admit(mesh_t *m, peer_t *p, bool listed, int64_t now_ms)
{
    s_entry *e = s_entry_of(m, p);
    if (!e || e->role != MESH_KNOWN)
        return true; /* kept already */
    s_counts c = s_count_roles(m);
    if (c.active >= m->limits.max_active || (!listed && c.learned >= 2 * stm_mesh_target(m)))
        return false;
    s_set_role(e, listed ? MESH_LISTED : MESH_DIALLED_IN, now_ms);
    return true;
}

void stm_mesh_declined(mesh_t *m, peer_t *p, int64_t now_ms)
{
    s_entry *e = s_entry_of(m, p);
    if (e && (e->role == MESH_CHOSEN || e->role == MESH_LISTED || e->role == MESH_DIALLED_IN))
        s_let_go(m, e, now_ms);
}

void stm_mesh_touch(mesh_t *m)
{
    m->dirty = true;
}

int64_t stm_mesh_choose_at(const mesh_t *m)
{
    return m->next_at;
}

/* Whether the known peer of e may be chosen at now_ms. */
static bool s_candidate(const s_entry *e, int64_t now_ms, mesh_trusted_fn trusted, void *ctx)
{
    const peer_t *p = e->peer;
    const peer_verdict *v = stm_peer_get_verdict(p);
    return e->role == MESH_KNOWN && now_ms >= e->retry_after && stm_peer_id(p) &&
           stm_endpoint_dialable(stm_peer_endpoint(p)) && !stm_peer_distrusted(p) &&
           !(v && v->sync == PEER_SYNC_REFUSED) && trusted(ctx, stm_peer_id(p));
}

/* Chooses known peers up to k (the caller saw room). */
static void s_fill(mesh_t *m, size_t want, int64_t now_ms, mesh_trusted_fn trusted, void *ctx)
{
    stm_id *have = stm_calloc(m->count + 1, sizeof *have);
    stm_id *cand = stm_calloc(m->count + 1, sizeof *cand);
    size_t *at = stm_calloc(m->count + 1, sizeof *at);
    size_t *picks = stm_calloc(want + 1, sizeof *picks);
    size_t nhave = 0, ncand = 0;
    for (size_t i = 0; i < m->count; i++) {
        const s_entry *e = &m->peers[i];
        if (e->role != MESH_KNOWN && stm_peer_id(e->peer))
            have[nhave++] = *stm_peer_id(e->peer);
        else if (s_candidate(e, now_ms, trusted, ctx)) {
            at[ncand] = i;
            cand[ncand++] = *stm_peer_id(e->peer);
        }
    }
    size_t npicks = stm_choose_pick(&m->self, have, nhave, cand, ncand, want, picks);
    for (size_t i = 0; i < npicks; i++) {
        s_entry *e = &m->peers[at[picks[i]]];
        s_set_role(e, MESH_CHOSEN, now_ms);
        stm_log_event(STM_LOG_INFO, "peer-chosen", stm_peer_short_id(e->peer),
                      "%s: one of the %zu learned peers this node dials", stm_peer_endpoint(e->peer),
                      stm_mesh_target(m));
    }
    free(have);
    free(cand);
    free(at);
    free(picks);
}

void stm_mesh_choose(mesh_t *m, int64_t now_ms, mesh_trusted_fn trusted, void *ctx)
{
    /* Kept peers that went away, or never came, are let go (invariant 3). */
    for (size_t i = 0; i < m->count; i++) {
        s_entry *e = &m->peers[i];
        if (e->role == MESH_CONFIGURED || e->role == MESH_KNOWN)
            continue;
        peer_state state = stm_peer_get_state(e->peer);
        bool up = state == PEER_CONNECTED;
        e->connected = e->connected || up;
        /* A chosen peer has its trial to answer, and is let go once it leaves. One that
         * dialled in is let go when it leaves, or when its history is refused here: a
         * refusal of its key (stemma trust remove) keeps its place, so that trusted
         * again it is said HELLO at once (stm_peer_trust_again), which lifts its side's
         * refusal of this node. */
        const peer_verdict *v = stm_peer_get_verdict(e->peer);
        bool go = e->role == MESH_CHOSEN
                      ? !up && (e->connected || now_ms >= e->since_ms + m->limits.trial_ms)
                      : state == PEER_GONE || (state == PEER_REFUSED && v &&
                                               v->sync == PEER_SYNC_REFUSED);
        if (go)
            s_let_go(m, e, now_ms);
    }
    if (!m->dirty && now_ms < m->next_at)
        return;
    m->dirty = false;
    s_counts c = s_count_roles(m);
    size_t k = stm_mesh_target(m);
    size_t want = c.chosen < k ? k - c.chosen : 0;
    size_t learned_room = 2 * k > c.learned ? 2 * k - c.learned : 0;
    size_t active_room = m->limits.max_active > c.active ? m->limits.max_active - c.active : 0;
    want = want < learned_room ? want : learned_room;
    want = want < active_room ? want : active_room;
    if (want > 0)
        s_fill(m, want, now_ms, trusted, ctx);
    /* What time alone changes: a trial ending, a peer let go becoming a candidate. */
    m->next_at = INT64_MAX;
    c = s_count_roles(m);
    for (size_t i = 0; i < m->count; i++) {
        const s_entry *e = &m->peers[i];
        int64_t at = INT64_MAX;
        if (e->role == MESH_CHOSEN && !e->connected)
            at = e->since_ms + m->limits.trial_ms;
        else if (e->role == MESH_KNOWN && e->retry_after > now_ms && c.chosen < k)
            at = e->retry_after;
        m->next_at = at < m->next_at ? at : m->next_at;
    }
}

/* ---- sending ---- */

wire_peer *stm_mesh_list(const mesh_t *m, const peer_t *except, size_t *count)
{
    wire_peer *list = stm_calloc(m->count + 1, sizeof *list);
    size_t k = 0;
    for (size_t i = 0; i < m->count; i++) {
        const peer_t *p = m->peers[i].peer;
        if (p == except || !stm_peer_id(p) || stm_peer_get_state(p) != PEER_CONNECTED ||
            !stm_endpoint_dialable(stm_peer_endpoint(p)))
            continue;
        list[k].id = *stm_peer_id(p);
        list[k].endpoint =
            (char *)stm_peer_endpoint(p); /* lent: stm_wire_encode_hello only reads */
        k++;
    }
    *count = k;
    return list;
}

void stm_mesh_send_connected(mesh_t *m, const buf_t *msg)
{
    for (size_t i = 0; i < m->count; i++)
        if (stm_peer_get_state(m->peers[i].peer) == PEER_CONNECTED)
            stm_peer_send(m->peers[i].peer, msg);
}

void stm_mesh_mark_more(mesh_t *m)
{
    for (size_t i = 0; i < m->count; i++)
        stm_session_mark_more(stm_peer_session(m->peers[i].peer));
}
