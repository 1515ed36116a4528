/* bulk.c - a bulk sync from a peer, logged (bulk.h). */
#include "bulk.h"
#include "base/log.h"

/* Per second, over the time since it began (at least a millisecond). */
static double s_rate(uint64_t ops, int64_t ms)
{
    return (double)ops * 1000.0 / (double)(ms > 0 ? ms : 1);
}

void stm_bulk_stored(bulk_sync *b, const session_t *s, const vtrack_t *mine,
                     const char *short_id, int64_t now_ms)
{
    uint64_t received = stm_session_ops_received(s);
    if (b->on && received < b->base)
        b->on = false; /* a new session: counted from zero again */
    /* Between looks, what is left is counted down; a look when it may be over. */
    uint64_t since_look = received - b->at_look;
    bool look = now_ms - b->looked_ms >= BULK_LOOK_EVERY_MS ||
                (b->on && since_look >= b->left);
    if (!look)
        return;
    b->looked_ms = now_ms;
    b->at_look = received;
    b->left = stm_session_ahead(s, mine);
    if (!b->on) {
        if (b->left < BULK_MIN_OPS)
            return;
        *b = (bulk_sync){.on = true, .started_ms = now_ms, .looked_ms = now_ms,
                         .logged_ms = now_ms, .base = received, .at_look = received,
                         .left = b->left, .total = b->left};
        stm_log_event(STM_LOG_INFO, "sync-bulk", short_id,
                      "it holds about %llu operations this database lacks (by their vectors): "
                      "taking them in, progress every %d s",
                      (unsigned long long)b->left, BULK_LOG_EVERY_MS / 1000);
        return;
    }
    uint64_t done = received - b->base;
    int64_t ms = now_ms - b->started_ms;
    if (b->left == 0) {
        stm_log_event(STM_LOG_INFO, "sync-bulk", short_id,
                      "done: %llu operations taken in %.1f s (%.0f a second); this database "
                      "holds all it holds",
                      (unsigned long long)done, (double)ms / 1000.0, s_rate(done, ms));
        b->on = false;
        return;
    }
    if (now_ms - b->logged_ms < BULK_LOG_EVERY_MS)
        return;
    b->logged_ms = now_ms;
    uint64_t whole = done + b->left;
    stm_log_event(STM_LOG_INFO, "sync-bulk", short_id,
                  "%llu operations taken in %.0f s (%.0f a second), about %llu to go (%.0f%%)",
                  (unsigned long long)done, (double)ms / 1000.0, s_rate(done, ms),
                  (unsigned long long)b->left, 100.0 * (double)done / (double)whole);
}
