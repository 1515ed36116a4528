/* mesh.c - the peers a node knows (mesh.h). */
#include "mesh.h"
#include "endpoint.h"
#include "base/log.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

struct mesh {
    stm_id self;        /* the node's own id: never a peer */
    peer_timing timing; /* what every peer is given */
    inbox_t *inbox;     /* the node's, lent to every peer */
    peer_t **peers;     /* owned, in the order met */
    size_t count, cap;
};

mesh_t *stm_mesh_new(const stm_id *self, const peer_timing *timing, inbox_t *inbox)
{
    mesh_t *m = stm_calloc(1, sizeof *m);
    m->inbox = inbox;
    m->self = *self;
    m->timing = *timing;
    return m;
}

void stm_mesh_destroy(mesh_t **self_p)
{
    mesh_t *m = *self_p;
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++)
        stm_peer_destroy(&m->peers[i]);
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
    return m->peers[i];
}

peer_t *stm_mesh_find(const mesh_t *m, const stm_id *id)
{
    for (size_t i = 0; i < m->count; i++) {
        const stm_id *pid = stm_peer_id(m->peers[i]);
        if (pid && stm_id_equal(pid, id))
            return m->peers[i];
    }
    return NULL;
}

peer_t *stm_mesh_find_endpoint(const mesh_t *m, const char *endpoint)
{
    if (!stm_endpoint_dialable(endpoint))
        return NULL; /* "" (none) names no one peer */
    for (size_t i = 0; i < m->count; i++)
        if (strcmp(stm_peer_endpoint(m->peers[i]), endpoint) == 0)
            return m->peers[i];
    return NULL;
}

peer_t *stm_mesh_add(mesh_t *m, const stm_id *id, const char *endpoint, bool configured)
{
    peer_t *p = stm_peer_new(id, endpoint, configured, &m->timing, m->inbox);
    m->peers = stm_grow(m->peers, &m->cap, m->count + 1, sizeof *m->peers);
    m->peers[m->count++] = p;
    return p;
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
        peer_t *p = stm_mesh_add(m, &wp->id, wp->endpoint, false);
        stm_log_event(STM_LOG_INFO, "peer-learned", stm_peer_short_id(p), "from a peer list: %s",
                      stm_peer_endpoint(p));
    }
}

wire_peer *stm_mesh_list(const mesh_t *m, const peer_t *except, size_t *count)
{
    wire_peer *list = stm_calloc(m->count + 1, sizeof *list);
    size_t k = 0;
    for (size_t i = 0; i < m->count; i++) {
        const peer_t *p = m->peers[i];
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
        if (stm_peer_get_state(m->peers[i]) == PEER_CONNECTED)
            stm_peer_send(m->peers[i], msg);
}

void stm_mesh_mark_more(mesh_t *m)
{
    for (size_t i = 0; i < m->count; i++)
        stm_session_mark_more(stm_peer_session(m->peers[i]));
}
