/* session.c - anti-entropy with one peer, without transport: the batches (session.h
 * has the invariants; session_vector.c the vectors exchanged). */
#include "session_internal.h"
#include "base/mem.h"
#include "codec.h"

#include <assert.h>
#include <stdlib.h>

session_t *stm_session_new(int window, size_t batch_ops)
{
    assert(window > 0 && batch_ops > 0);
    session_t *s = stm_calloc(1, sizeof *s);
    s->window = window;
    s->batch_ops = batch_ops;
    s->theirs = stm_vector_new();
    s->extra = stm_vector_new();
    s->flights = stm_calloc((size_t)window, sizeof *s->flights);
    s->pending = stm_opbatch_new();
    s->limit = OP_MAX_CHANGE_BYTES;
    s->max_value = OP_MAX_VALUE_BYTES;
    return s;
}

void stm_session_set_limit(session_t *s, uint64_t limit, uint64_t max_value)
{
    s->limit = limit;
    s->max_value = max_value; /* the reader keeps both within the protocol's */
    if (s->reader)
        stm_oplog_reader_set_limit(s->reader, limit, max_value);
}

void stm_session_destroy(session_t **self_p)
{
    session_t *s = *self_p;
    if (!s)
        return;
    stm_vector_destroy(&s->theirs);
    stm_vector_destroy(&s->extra);
    free(s->flights);
    stm_oplog_reader_destroy(&s->reader);
    stm_opbatch_destroy(&s->pending);
    stm_session_vector_free(s);
    free(s);
    *self_p = NULL;
}

/* Where sending starts again when the batches in flight are lost: where the first of
 * them started (invariant 3); NULL when none is in flight. */
static const oplog_pos *s_first_flight(const session_t *s)
{
    static const oplog_pos start = {0, 0};
    const oplog_pos *first = NULL;
    for (int i = 0; i < s->nflights; i++) {
        if (s->feed && s->flights[i].epoch != stm_feed_epoch(s->feed))
            return &start; /* taken before the feed was read again */
        if (!first || stm_oplog_pos_cmp(s->flights[i].pos, *first) < 0)
            first = &s->flights[i].pos;
    }
    return first;
}

/* Forgets the batches in flight; the reader goes back to from (NULL: stays). */
static void s_restart(session_t *s, const oplog_pos *from)
{
    if (s->have_pending && s->reader && (!from || stm_oplog_pos_cmp(s->pending_pos, *from) < 0))
        from = &s->pending_pos;
    oplog_pos to;
    if (from && s->reader) {
        to = *from;
        stm_oplog_reader_seek(s->reader, to);
    }
    s->nflights = 0;
    s->in_flight = 0;
    s->reset_seq = s->batch_seq;
    s->more = true;
    s->have_pending = false;
    s->alone = false;
    s->large_seq = 0;
    s->large_arrived = false;
}

void stm_session_resend(session_t *s)
{
    s_restart(s, s_first_flight(s));
}

static const oplog_pos s_start = {0, 0};

void stm_session_fell(session_t *s)
{
    stm_vector_destroy(&s->extra);
    s->extra = stm_vector_new();
    s_restart(s, &s_start);
}

void stm_session_on_hello(session_t *s)
{
    if (!s->continued) {
        /* It may hold less than it did (restarted, restored): what it sent us no longer
         * says what it holds (invariant 6), and everything is read for it again. */
        stm_vector_destroy(&s->extra);
        s->extra = stm_vector_new();
    }
    s_restart(s, s->continued ? s_first_flight(s) : &s_start);
}

void stm_session_on_ack(session_t *s, uint64_t seq, int64_t now_ms)
{
    if (seq > s->reset_seq && s->in_flight > 0) {
        s->in_flight--;
        for (int i = 0; i < s->nflights; i++)
            if (s->flights[i].seq == seq) {
                s->flights[i] = s->flights[--s->nflights];
                break;
            }
    }
    if (s->in_flight == 0) {
        s->nflights = 0;
        s->alone = false; /* a large batch waiting may go now, or the one sent is done */
        s->large_seq = 0;
        s->large_arrived = false;
    }
    s->last_send_ms = now_ms;
}

void stm_session_on_received(session_t *s, uint64_t seq, uint64_t bytes, int64_t now_ms)
{
    if (seq <= s->reset_seq || s->in_flight == 0)
        return; /* of a batch forgotten: it says nothing of those in flight */
    s->last_send_ms = now_ms;
    if (seq == s->large_seq && bytes >= s->large_bytes)
        s->large_arrived = true;
}

/* What the peer holds of origin, as far as we know: theirs, raised by extra. */
static uint64_t s_held(void *ctx, const stm_id *origin)
{
    const session_t *s = ctx;
    uint64_t a = stm_vector_get(s->theirs, origin), b = stm_vector_get(s->extra, origin);
    return a > b ? a : b;
}

/* Counts first .. last of origin as held by the peer when they continue what it holds. */
static void s_extend(session_t *s, const stm_id *origin, uint64_t first, uint64_t last)
{
    if (s_held(s, origin) + 1 == first)
        stm_vector_set(s->extra, origin, last);
}

void stm_session_prune_extra(session_t *s)
{
    if (!stm_vector_count(s->extra))
        return;
    vector_t *kept = stm_vector_new();
    for (size_t i = 0; i < stm_vector_count(s->extra); i++) {
        const vector_entry *e = stm_vector_at(s->extra, i);
        if (e->seq > stm_vector_get(s->theirs, &e->origin))
            stm_vector_set(kept, &e->origin, e->seq); /* in order: appended */
    }
    stm_vector_destroy(&s->extra);
    s->extra = kept;
}

stm_err stm_session_on_ops(session_t *s, const void *batch, size_t len, opbatch_t **out,
                           stm_error *err)
{
    opbatch_t *b = stm_opbatch_new();
    stm_err rc = stm_codec_decode_ops(batch, len, b, err);
    if (rc != STM_OK) {
        stm_opbatch_destroy(&b);
        *out = NULL;
        return rc;
    }
    /* What the peer sends, it holds: none of it goes back (invariant 6). Only a run
     * that continues what we know it holds counts, so a gap it still has is filled. */
    for (size_t i = 0; i < stm_opbatch_count(b); i++) {
        const op_t *op = stm_opbatch_at(b, i);
        s_extend(s, &op->origin, op->seq, op->seq);
    }
    for (size_t i = 0; i < stm_opbatch_withheld_count(b); i++) {
        const op_withheld *w = stm_opbatch_withheld_at(b, i);
        s_extend(s, &w->origin, w->seq, w->seq + w->n - 1);
    }
    *out = b;
    return STM_OK;
}

void stm_session_on_stored(session_t *s, size_t ops, uint64_t parked)
{
    s->ops_received += ops;
    s->parked += parked;
}

void stm_session_mark_more(session_t *s)
{
    s->more = true;
}

bool stm_session_wants_to_send(const session_t *s)
{
    return s->more && s->in_flight < (s->alone ? 1 : s->window);
}

stm_err stm_session_next_batch(session_t *s, feed_t *feed, buf_t *out, uint64_t *seq,
                              size_t *count, bool *yielded, stm_error *err)
{
    *count = 0;
    *yielded = false;
    stm_buf_reset(out);
    if (!s->reader) {
        s->feed = feed;
        s->reader = stm_oplog_reader_on(feed);
        stm_oplog_reader_held(s->reader, s_held, s);
        stm_oplog_reader_set_limit(s->reader, s->limit, s->max_value);
    }
    assert(feed == s->feed); /* one feed for the session's life */
    if (s->have_pending) /* handed out, never sent: read again */
        stm_oplog_reader_seek(s->reader, s->pending_pos);
    s->have_pending = false;
    if (s->in_flight >= (s->alone ? 1 : s->window))
        return STM_OK;
    stm_opbatch_clear(s->pending);
    s->pending_pos = stm_oplog_reader_tell(s->reader);
    size_t got = 0;
    stm_err rc = stm_oplog_reader_walk(s->reader, s->pending, s->batch_ops, SESSION_BATCH_MAX_BYTES,
                                       SESSION_WALK_BUDGET, &got, yielded, err);
    if (rc != STM_OK)
        return rc;
    if (got == 0) {
        if (!*yielded)
            s->more = false;
        return STM_OK;
    }
    stm_codec_encode_ops(s->pending, 0, stm_opbatch_count(s->pending), out);
    if (out->len > SESSION_LARGE_BYTES && s->in_flight > 0) {
        /* It waits for an empty window (invariant 8), and is read again then. */
        s->alone = true;
        stm_buf_reset(out);
        stm_opbatch_clear(s->pending);
        stm_oplog_reader_seek(s->reader, s->pending_pos);
        return STM_OK;
    }
    /* Numbered now, whether or not it leaves: a number is never used twice. */
    *seq = ++s->batch_seq;
    *count = got;
    s->have_pending = true;
    s->pending_bytes = out->len;
    return STM_OK;
}

void stm_session_rest(session_t *s)
{
    if (s->have_pending && s->reader)
        stm_oplog_reader_seek(s->reader, s->pending_pos);
    s->have_pending = false;
    if (s->reader)
        stm_oplog_reader_rest(s->reader);
}

const opbatch_t *stm_session_pending(const session_t *s)
{
    return s->pending;
}

void stm_session_batch_sent(session_t *s, int64_t now_ms)
{
    assert(s->have_pending); /* only after stm_session_next_batch handed one out */
    if (!s->have_pending)
        return;
    s->have_pending = false;
    size_t n = stm_opbatch_count(s->pending);
    if (s->nflights < s->window)
        s->flights[s->nflights++] =
            (s_flight){s->batch_seq, s->pending_pos, s->feed ? stm_feed_epoch(s->feed) : 0};
    if (s->in_flight++ == 0)
        s->last_send_ms = now_ms;
    if (s->pending_bytes > SESSION_LARGE_BYTES) {
        s->alone = true; /* nothing follows it until it is acknowledged (invariant 8) */
        s->large_seq = s->batch_seq;
        s->large_bytes = s->pending_bytes;
        s->large_arrived = false;
    }
    s->ops_sent += n;
}

int64_t stm_session_resend_at(const session_t *s, int timeout_ms)
{
    if (!s->in_flight)
        return INT64_MAX;
    /* Due once more than timeout_ms have passed, as the peer's silence is; for a large
     * batch wholly received, once its storing has had its time too (invariant 9). */
    return s->last_send_ms + timeout_ms + stm_session_storing_ms(s, timeout_ms) + 1;
}

int64_t stm_session_storing_ms(const session_t *s, int timeout_ms)
{
    if (!s->in_flight || !s->large_arrived)
        return 0;
    return (int64_t)timeout_ms * (int64_t)(s->large_bytes / SESSION_STORE_BYTES);
}

const vector_t *stm_session_theirs(const session_t *s)
{
    return s->theirs;
}

int stm_session_in_flight(const session_t *s)
{
    return s->in_flight;
}

uint64_t stm_session_ops_sent(const session_t *s)
{
    return s->ops_sent;
}

uint64_t stm_session_ops_received(const session_t *s)
{
    return s->ops_received;
}

uint64_t stm_session_parked(const session_t *s)
{
    return s->parked;
}

uint64_t stm_session_ahead(const session_t *s, const vtrack_t *mine)
{
    uint64_t ahead = 0;
    for (size_t k = 0; s->theirs && k < stm_vector_count(s->theirs); k++) {
        const vector_entry *e = stm_vector_at(s->theirs, k);
        uint64_t held = mine ? stm_vtrack_get(mine, &e->origin) : 0;
        if (e->seq > held)
            ahead += e->seq - held;
    }
    return ahead;
}

bool stm_session_holds_more(const session_t *s, const vtrack_t *mine)
{
    for (size_t k = 0; s->theirs && k < stm_vector_count(s->theirs); k++) {
        const vector_entry *e = stm_vector_at(s->theirs, k);
        if (e->seq > stm_vtrack_get(mine, &e->origin))
            return true;
    }
    return false;
}

uint64_t stm_session_behind(const session_t *s, const vtrack_t *mine)
{
    uint64_t behind = 0;
    for (size_t k = 0; mine && k < stm_vtrack_count(mine); k++) {
        const vector_entry *e = stm_vtrack_at(mine, k);
        uint64_t theirs = stm_vector_get(s->theirs, &e->origin);
        if (e->seq > theirs)
            behind += e->seq - theirs;
    }
    return behind;
}
