/* session.h - anti-entropy with one peer, without transport: what it holds, what to
 * send it next, and what its answers change.
 *
 * A session is the sync half of a peer (node/peer.h holds the rest: its state, its
 * socket, its deadlines for HELLO). It knows nothing of sockets or wire framing: it
 * takes the peer's vectors and batch numbers as values, hands out encoded batches
 * (codec.h) as buffers, and the node puts them in messages.
 *
 * Invariants:
 *
 *  1. theirs is what the peer last said it holds (its HELLO's vector, then each
 *     ACK's); sent is at least theirs, entry by entry, and covers every operation of
 *     every batch that left (stm_session_batch_sent). What is read for the peer next is
 *     what lies above sent.
 *  2. At most `window` batches are in flight (sent, not acknowledged):
 *     stm_session_next_batch hands out none while the window is full.
 *  3. Batch numbers only grow while the session lives, so an ACK names one batch.
 *     A restart from theirs (a HELLO, or stm_session_resend when ACKs stopped coming)
 *     forgets the batches in flight: their ACKs, numbered up to reset_seq, still
 *     update theirs but free no place in the window.
 *  4. A batch received is acknowledged only after the transaction storing it
 *     commits (inbound.h does the storing): the ACK carries the vector read after
 *     the commit, so the sender never forgets operations a crash could lose.
 *  5. more is false only when the last read found nothing above sent; anything that
 *     may add operations (a local write, a batch stored, a HELLO) sets it again.
 *  6. No echo: the operations of a batch the peer sent are held by it, so theirs and
 *     sent are raised over them (stm_session_on_ops) wherever they continue what it
 *     was known to hold, and they are never read for it. An operation above a gap
 *     raises nothing: what it lacks below is still sent. */
#ifndef STM_SESSION_H
#define STM_SESSION_H

#include "base/buf.h"
#include "base/error.h"
#include "oplog.h"
#include "op.h"
#include "store.h"
#include "vector.h"

#include <stdbool.h>
#include <stdint.h>

/* Most encoded bytes a batch is read up to (a row change is never split). */
#define SESSION_BATCH_MAX_BYTES (4u * 1024u * 1024u)

typedef struct session session_t;

/* A session sending at most window batches of at most batch_ops operations at a time
 * (both > 0). It sends nothing until the peer's HELLO says what it holds
 * (stm_session_on_hello). The caller owns it (stm_session_destroy). */
session_t *stm_session_new(int window, size_t batch_ops);
void stm_session_destroy(session_t **self_p);

/* ---- receiving their side ---- */

/* Their HELLO's vector (copied): it becomes theirs, the batches in flight are
 * forgotten, and sending starts again from it. */
void stm_session_on_hello(session_t *s, const vector_t *theirs);

/* Their ACK of batch seq with their vector after storing it (ownership taken, *theirs
 * set to NULL). Frees one place in the window unless seq was forgotten by a restart;
 * restarts the resend deadline (now_ms). */
void stm_session_on_ack(session_t *s, uint64_t seq, vector_t **theirs, int64_t now_ms);

/* Decodes the batch of their OPS (codec.h) into *out, the caller's (to hand to the
 * inbound queue), and counts its operations as held by them (invariant 6); STM_EPROTO
 * when malformed, and *out is NULL. */
STM_NODISCARD stm_err stm_session_on_ops(session_t *s, const void *batch, size_t len,
                                         opbatch_t **out, stm_error *err);

/* A batch of theirs was stored (committed) and is being acknowledged: counts its
 * operations and those parked. */
void stm_session_on_stored(session_t *s, size_t ops, uint64_t parked);

/* ---- sending ---- */

/* There may be operations the peer lacks (a local write, a batch stored). */
void stm_session_mark_more(session_t *s);

/* Whether a batch may go now: more may be there, and the window has room. */
bool stm_session_wants_to_send(const session_t *s);

/* A reader of what lies above sent in store (invariant 1). *out is the caller's
 * (stm_oplog_reader_destroy), to pass to stm_session_next_batch until it returns nothing. */
STM_NODISCARD stm_err stm_session_reader_new(const session_t *s, store_t *store,
                                             oplog_reader_t **out, stm_error *err);

/* Reads the next batch from r into out (reset first) as the codec encodes it, and its
 * number into *seq; *count is its operations, 0 when nothing is left (then more is
 * false) or the window is full. The batch counts as sent only once
 * stm_session_batch_sent says it left. */
STM_NODISCARD stm_err stm_session_next_batch(session_t *s, oplog_reader_t *r, buf_t *out,
                                             uint64_t *seq, size_t *count, stm_error *err);

/* The batch stm_session_next_batch handed out last has left at now_ms: it takes a place
 * in the window and sent covers it. Not called when it could not leave: the next
 * restart or read sends its operations again. */
void stm_session_batch_sent(session_t *s, int64_t now_ms);

/* ---- the resend deadline ---- */

/* When batches in flight count as lost: timeout_ms after the last batch that left
 * into an empty window or the last ACK, whichever came later; INT64_MAX when nothing is
 * in flight. */
int64_t stm_session_resend_at(const session_t *s, int timeout_ms);

/* Forgets the batches in flight and starts sending again from theirs (invariant 3). */
void stm_session_resend(session_t *s);

/* ---- what it knows ---- */

/* Their vector, lent until the next HELLO or ACK. */
const vector_t *stm_session_theirs(const session_t *s);
int stm_session_in_flight(const session_t *s);
uint64_t stm_session_ops_sent(const session_t *s);
uint64_t stm_session_ops_received(const session_t *s);
uint64_t stm_session_parked(const session_t *s);
/* How many operations of mine (a vector of this database) they lack. */
uint64_t stm_session_behind(const session_t *s, const vector_t *mine);

#endif
