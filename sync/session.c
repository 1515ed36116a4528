/* session.c - anti-entropy with one peer, without transport (session.h has the
 * invariants). */
#include "session.h"
#include "base/mem.h"
#include "codec.h"

#include <assert.h>
#include <stdlib.h>

struct session {
    int window;           /* most batches in flight */
    size_t batch_ops;     /* most operations a batch */
    vector_t *theirs;     /* what the peer holds (HELLO, then each ACK) */
    vector_t *sent;       /* what we have sent it (at least theirs) */
    bool more;            /* it may lack operations we have not sent yet */
    uint64_t batch_seq;   /* batches numbered so far */
    uint64_t reset_seq;   /* batches up to this one were forgotten by a restart: their
                             ACKs still say what it holds, but free no window place */
    int in_flight;        /* batches sent and not acknowledged */
    int64_t last_send_ms; /* when the window last started filling, or the last ACK */
    opbatch_t *pending;   /* the batch handed out last, until it is said to have left */
    bool have_pending;
    size_t pending_bytes; /* its encoded size */
    uint64_t limit;       /* the most bytes a row change may take to be sent (inv. 7) */
    uint64_t max_value;   /* ... and one of its values */
    bool alone;           /* a large batch is in flight, or waits for an empty window */
    uint64_t large_seq;   /* the large batch in flight (0: none) */
    uint64_t large_bytes; /* its encoded size */
    bool large_arrived;   /* the peer said all of it arrived: it is storing it */
    uint64_t ops_sent, ops_received, parked;
};

session_t *stm_session_new(int window, size_t batch_ops)
{
    assert(window > 0 && batch_ops > 0);
    session_t *s = stm_calloc(1, sizeof *s);
    s->window = window;
    s->batch_ops = batch_ops;
    s->theirs = stm_vector_new();
    s->sent = stm_vector_new();
    s->pending = stm_opbatch_new();
    s->limit = OP_MAX_CHANGE_BYTES;
    s->max_value = OP_MAX_VALUE_BYTES;
    return s;
}

void stm_session_set_limit(session_t *s, uint64_t limit, uint64_t max_value)
{
    s->limit = limit;
    s->max_value = max_value; /* the reader keeps both within the protocol's */
}

void stm_session_destroy(session_t **self_p)
{
    session_t *s = *self_p;
    if (!s)
        return;
    stm_vector_destroy(&s->theirs);
    stm_vector_destroy(&s->sent);
    stm_opbatch_destroy(&s->pending);
    free(s);
    *self_p = NULL;
}

/* Raises each entry of to that from holds higher. */
static void s_raise(vector_t *to, const vector_t *from)
{
    for (size_t i = 0; i < stm_vector_count(from); i++) {
        const vector_entry *e = stm_vector_at(from, i);
        if (stm_vector_get(to, &e->origin) < e->seq)
            stm_vector_set(to, &e->origin, e->seq);
    }
}

void stm_session_resend(session_t *s)
{
    stm_vector_destroy(&s->sent);
    s->sent = stm_vector_new();
    s_raise(s->sent, s->theirs);
    s->in_flight = 0;
    s->reset_seq = s->batch_seq;
    s->more = true;
    s->have_pending = false;
    s->alone = false;
    s->large_seq = 0;
    s->large_arrived = false;
}

void stm_session_on_hello(session_t *s, const vector_t *theirs)
{
    stm_vector_destroy(&s->theirs);
    s->theirs = stm_vector_new();
    s_raise(s->theirs, theirs);
    stm_session_resend(s);
}

void stm_session_on_ack(session_t *s, uint64_t seq, vector_t **theirs, int64_t now_ms)
{
    if (seq > s->reset_seq && s->in_flight > 0)
        s->in_flight--;
    if (s->in_flight == 0) {
        s->alone = false; /* a large batch waiting may go now, or the one sent is done */
        s->large_seq = 0;
        s->large_arrived = false;
    }
    s->last_send_ms = now_ms;
    stm_vector_destroy(&s->theirs);
    s->theirs = *theirs;
    *theirs = NULL;
    s_raise(s->sent, s->theirs);
}

void stm_session_on_received(session_t *s, uint64_t seq, uint64_t bytes, int64_t now_ms)
{
    if (seq <= s->reset_seq || s->in_flight == 0)
        return; /* of a batch forgotten: it says nothing of those in flight */
    s->last_send_ms = now_ms;
    if (seq == s->large_seq && bytes >= s->large_bytes)
        s->large_arrived = true;
}

/* Raises v's entry for origin to last when first comes right after it. */
static void s_extend(vector_t *v, const stm_id *origin, uint64_t first, uint64_t last)
{
    if (stm_vector_get(v, origin) + 1 == first)
        stm_vector_set(v, origin, last);
}

/* Raises v's entry for origin to last when it is below it. */
static void s_cover(vector_t *v, const stm_id *origin, uint64_t last)
{
    if (stm_vector_get(v, origin) < last)
        stm_vector_set(v, origin, last);
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
        s_extend(s->theirs, &op->origin, op->seq, op->seq);
        s_extend(s->sent, &op->origin, op->seq, op->seq);
    }
    for (size_t i = 0; i < stm_opbatch_withheld_count(b); i++) {
        const op_withheld *w = stm_opbatch_withheld_at(b, i);
        s_extend(s->theirs, &w->origin, w->seq, w->seq + w->n - 1);
        s_extend(s->sent, &w->origin, w->seq, w->seq + w->n - 1);
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

stm_err stm_session_reader_new(const session_t *s, store_t *store, oplog_reader_t **out,
                               stm_error *err)
{
    stm_err rc = stm_oplog_reader_new(store, s->sent, out, err);
    if (rc == STM_OK)
        stm_oplog_reader_set_limit(*out, s->limit, s->max_value);
    return rc;
}

stm_err stm_session_next_batch(session_t *s, oplog_reader_t *r, buf_t *out, uint64_t *seq,
                               size_t *count, stm_error *err)
{
    *count = 0;
    s->have_pending = false;
    stm_buf_reset(out);
    if (s->in_flight >= (s->alone ? 1 : s->window))
        return STM_OK;
    stm_opbatch_clear(s->pending);
    size_t got = 0;
    stm_err rc =
        stm_oplog_reader_next(r, s->pending, s->batch_ops, SESSION_BATCH_MAX_BYTES, &got, err);
    if (rc != STM_OK)
        return rc;
    if (got == 0) {
        s->more = false;
        return STM_OK;
    }
    stm_codec_encode_ops(s->pending, 0, stm_opbatch_count(s->pending), out);
    if (out->len > SESSION_LARGE_BYTES && s->in_flight > 0) {
        /* It waits for an empty window (invariant 8), and is read again then. */
        s->alone = true;
        stm_buf_reset(out);
        stm_opbatch_clear(s->pending);
        return STM_OK;
    }
    /* Numbered now, whether or not it leaves: a number is never used twice. */
    *seq = ++s->batch_seq;
    *count = got;
    s->have_pending = true;
    s->pending_bytes = out->len;
    return STM_OK;
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
    for (size_t i = 0; i < n; i++) {
        const op_t *op = stm_opbatch_at(s->pending, i);
        s_cover(s->sent, &op->origin, op->seq);
    }
    /* What a stand-in covers is sent too, or it would be read again at once. */
    for (size_t i = 0; i < stm_opbatch_withheld_count(s->pending); i++) {
        const op_withheld *w = stm_opbatch_withheld_at(s->pending, i);
        s_cover(s->sent, &w->origin, w->seq + w->n - 1);
    }
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

uint64_t stm_session_behind(const session_t *s, const vector_t *mine)
{
    uint64_t behind = 0;
    for (size_t k = 0; mine && k < stm_vector_count(mine); k++) {
        const vector_entry *e = stm_vector_at(mine, k);
        uint64_t theirs = stm_vector_get(s->theirs, &e->origin);
        if (e->seq > theirs)
            behind += e->seq - theirs;
    }
    return behind;
}
