/* events.c - what an application that embeds the node is told as it happens (node.h,
 * node_event): a peer judged, operations stored, the database migrated. The node calls
 * these where each happens; nothing is counted unless someone listens. */
#include "node.h"
#include "node_internal.h"
#include "peer.h"
#include "sync/identity.h"

#include <sqlite3.h>

void stm_node_set_events(node_t *n, node_event_fn fn, void *ctx)
{
    n->on_event = fn;
    n->event_ctx = ctx;
}

void stm_node_tell_judged(node_t *n, peer_t *p)
{
    const wire_hello *hello = stm_peer_hello(p);
    const peer_verdict *v = stm_peer_get_verdict(p);
    if (!n->on_event || !hello || !v->cmp || !stm_peer_id(p))
        return;
    node_event ev = {
        .kind = NODE_EVENT_PEER_JUDGED,
        .peer = stm_peer_id(p),
        .peer_name = hello->name,
        .endpoint = stm_peer_endpoint(p),
        .relation = (int)v->cmp->relation,
        .peer_version = v->cmp->remote_version,
        .sync = v->sync,
        .reason = v->reason,
    };
    n->on_event(n->event_ctx, &ev);
}

/* How many operations are parked: stemma_parked's rows (not the oplog's, which a count
 * would read whole). 0 when it cannot be read. */
static uint64_t s_parked(store_t *store)
{
    sqlite3_stmt *q = NULL;
    uint64_t count = 0;
    if (sqlite3_prepare_v2(stm_store_db(store), "SELECT count(*) FROM stemma_parked", -1, &q,
                           NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        count = (uint64_t)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return count;
}

void stm_node_tell_applied(node_t *n, const apply_stats *st)
{
    if (!n->on_event)
        return;
    node_event ev = {.kind = NODE_EVENT_APPLIED, .stats = *st};
    /* The totals after: counted only for a listener, and a count that fails (the
     * database busy) is told as 0 rather than holding the event back. */
    stm_error err = {0};
    store_t *store = stm_local_store(n->local);
    ev.parked_total = s_parked(store);
    if (stm_conflicts_count(store, &ev.conflicts_total, &err) != STM_OK)
        ev.conflicts_total = 0;
    n->on_event(n->event_ctx, &ev);
}

void stm_node_tell_migrated(node_t *n, int version)
{
    if (!n->on_event)
        return;
    node_event ev = {.kind = NODE_EVENT_MIGRATED, .version = version};
    n->on_event(n->event_ctx, &ev);
}
