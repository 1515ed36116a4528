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
    return s;
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
    s->last_send_ms = now_ms;
    stm_vector_destroy(&s->theirs);
    s->theirs = *theirs;
    *theirs = NULL;
    s_raise(s->sent, s->theirs);
}

/* Raises v's entry for op's origin to op's seq when op comes right after it. */
static void s_extend(vector_t *v, const op_t *op)
{
    if (stm_vector_get(v, &op->origin) + 1 == op->seq)
        stm_vector_set(v, &op->origin, op->seq);
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
        s_extend(s->theirs, op);
        s_extend(s->sent, op);
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
    return s->more && s->in_flight < s->window;
}

stm_err stm_session_reader_new(const session_t *s, store_t *store, oplog_reader_t **out,
                               stm_error *err)
{
    return stm_oplog_reader_new(store, s->sent, out, err);
}

stm_err stm_session_next_batch(session_t *s, oplog_reader_t *r, buf_t *out, uint64_t *seq,
                               size_t *count, stm_error *err)
{
    *count = 0;
    s->have_pending = false;
    stm_buf_reset(out);
    if (s->in_flight >= s->window)
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
    stm_codec_encode_ops(s->pending, 0, got, out);
    /* Numbered now, whether or not it leaves: a number is never used twice. */
    *seq = ++s->batch_seq;
    *count = got;
    s->have_pending = true;
    return STM_OK;
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
        if (stm_vector_get(s->sent, &op->origin) < op->seq)
            stm_vector_set(s->sent, &op->origin, op->seq);
    }
    if (s->in_flight++ == 0)
        s->last_send_ms = now_ms;
    s->ops_sent += n;
}

int64_t stm_session_resend_at(const session_t *s, int timeout_ms)
{
    /* Due once more than timeout_ms have passed, as the peer's silence is. */
    return s->in_flight ? s->last_send_ms + timeout_ms + 1 : INT64_MAX;
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
