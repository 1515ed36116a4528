/* peer_sync.c - what one peer is sent of what it lacks, in batches (whole or in parts),
 * and the batch it sends in parts put together (peer.h; the state machine is peer.c's). */
#include "peer_internal.h"
#include "parts.h"
#include "base/clock.h"
#include "base/log.h"

#include <stdlib.h>
#include <string.h>

/* Logs and counts, once each, the row changes of the batch handed out last that are
 * withheld from it (stand-ins this node made: too large for it). */
static void s_tell_withheld(peer_t *p)
{
    const opbatch_t *b = stm_session_pending(p->session);
    for (size_t i = 0; i < stm_opbatch_withheld_count(b); i++) {
        const op_withheld *w = stm_opbatch_withheld_at(b, i);
        uint64_t last = w->seq + w->n - 1;
        if (!w->here || stm_vector_get(p->told, &w->origin) >= last)
            continue;
        stm_vector_set(p->told, &w->origin, last);
        p->withheld++;
        buf_t what = BUF_INIT;
        stm_op_withheld_describe(&what, w);
        if (p->reads_parts)
            stm_log_event(STM_LOG_WARN, "withheld", p->short_id,
                          "%s: not sent, too large to travel (a batch carries at most %u "
                          "bytes); a stand-in goes in its place: the peer lacks that write, "
                          "and what follows it arrives",
                          stm_buf_str(&what), WIRE_MAX_BATCH);
        else
            stm_log_event(STM_LOG_WARN, "withheld", p->short_id,
                          "%s: not sent, too large for this peer, whose stemma takes at most "
                          "%u bytes in one message and %u in one value, and cannot put a "
                          "batch together from parts: upgrade it; the peer lacks that write",
                          stm_buf_str(&what), WIRE_MAX_MESSAGE, WIRE_LEGACY_MAX_VALUE);
        stm_buf_free(&what);
    }
}

/* Sends batch seq (enc) whole, or in parts to a peer that reads them; false when not
 * all of it could leave now (it is read and sent again, under a new number). */
static bool s_send_batch(peer_t *p, uint64_t seq, const buf_t *enc, buf_t *msg)
{
    stm_buf_reset(msg);
    if (!p->reads_parts || enc->len <= WIRE_PART_BYTES) {
        stm_wire_encode_ops(msg, seq, enc->data, enc->len);
        return stm_peer_send(p, msg);
    }
    uint64_t parts = (enc->len + WIRE_PART_BYTES - 1) / WIRE_PART_BYTES;
    for (uint64_t k = 0; k < parts; k++) {
        size_t from = (size_t)k * WIRE_PART_BYTES;
        size_t len = enc->len - from < WIRE_PART_BYTES ? enc->len - from : WIRE_PART_BYTES;
        stm_buf_reset(msg);
        stm_wire_encode_ops_part(msg, seq, k, parts, enc->len, enc->data + from, len);
        if (!stm_peer_send(p, msg))
            return false;
    }
    return true;
}

bool stm_peer_pump(peer_t *p, feed_t *feed, int64_t now_ms)
{
    /* A lazy peer gets what we hold from another first, and hears our vector instead. */
    if (p->state != PEER_CONNECTED || p->lazy || (!p->outbox && !stm_peer_routed(p)) ||
        !stm_session_wants_to_send(p->session))
        return false;
    stm_error err = {0};
    buf_t enc = BUF_INIT, msg = BUF_INIT;
    bool yielded = false;
    for (;;) {
        uint64_t seq;
        size_t count;
        if (stm_session_next_batch(p->session, feed, &enc, &seq, &count, &yielded, &err) !=
            STM_OK) {
            stm_log_event(STM_LOG_ERROR, "database", NULL, "%s", err.msg);
            break;
        }
        if (count == 0)
            break;
        s_tell_withheld(p);
        if (!s_send_batch(p, seq, &enc, &msg))
            break; /* the connection is down: this is sent again from its vector */
        /* When it left: reading and cutting a large row change takes a while. */
        now_ms = stm_monotime_ms();
        stm_session_batch_sent(p->session, now_ms);
        if (yielded)
            break; /* the loop serves its sockets, and comes back at once */
    }
    stm_session_rest(p->session); /* the database is let go of between passes */
    stm_buf_free(&enc);
    stm_buf_free(&msg);
    return yielded;
}

parts_result stm_peer_on_part(peer_t *p, const wire_ops *m, const void **batch, size_t *len,
                              uint64_t *dropped, const char **why)
{
    parts_result r = stm_parts_add(p->parts, m, dropped, why);
    if (r == PARTS_DROPPED)
        return r;
    /* Each part taken says so: its sender's resend deadline starts again, so a batch of
     * any size gets through a slow link (session.h, invariant 9). */
    buf_t msg = BUF_INIT;
    stm_wire_encode_received(&msg, m->seq, stm_parts_received(p->parts));
    stm_peer_send(p, &msg);
    stm_buf_free(&msg);
    if (r == PARTS_DONE)
        *batch = stm_parts_batch(p->parts, len);
    return r;
}

void stm_peer_parts_done(peer_t *p)
{
    stm_parts_clear(p->parts);
}

