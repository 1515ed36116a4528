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
 *     raises nothing: what it lacks below is still sent. The operations a stand-in
 *     covers (op.h) count as sent and held alike.
 *  7. A row change too large for the peer (over the session's limits) is sent as a
 *     stand-in (oplog.h), never as operations, so it is never resent for ever and
 *     nothing after it waits for it.
 *  8. A large batch (over SESSION_LARGE_BYTES encoded: one large row change, oplog.h)
 *     travels alone: it is handed out only into an empty window and nothing follows
 *     it until it is acknowledged, so one peer's batches in flight hold at most one
 *     large one in memory, here and at the peer.
 *  9. Batches in flight count as lost after `timeout` without an ACK or a sign that the
 *     peer is receiving them (stm_session_on_received); once the whole of a large
 *     batch has arrived, the peer is given `timeout` more for each SESSION_STORE_BYTES of
 *     it to store it, so that a slow disk does not make it come again for ever. */
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
/* A batch larger than this encoded is large (invariant 8): batches read up to
 * SESSION_BATCH_MAX_BYTES stay below it, however their last row change falls. */
#define SESSION_LARGE_BYTES (2u * SESSION_BATCH_MAX_BYTES)
/* How much of a large batch a peer is given one more timeout to store (invariant 9):
 * 16 MiB every 5 s is 3 MB/s, which the slowest SD card writes. */
#define SESSION_STORE_BYTES (16u * 1024u * 1024u)

typedef struct session session_t;

/* A session sending at most window batches of at most batch_ops operations at a time
 * (both > 0). It sends nothing until the peer's HELLO says what it holds
 * (stm_session_on_hello). The caller owns it (stm_session_destroy). */
session_t *stm_session_new(int window, size_t batch_ops);
void stm_session_destroy(session_t **self_p);

/* The most bytes a row change, and one value or key of it, may take to be sent to this
 * peer (invariant 7): at most, and by default, OP_MAX_CHANGE_BYTES and
 * OP_MAX_VALUE_BYTES; less for a peer that takes smaller messages or values. */
void stm_session_set_limit(session_t *s, uint64_t limit, uint64_t max_value);

/* ---- receiving their side ---- */

/* Their HELLO's vector (copied): it becomes theirs, the batches in flight are
 * forgotten, and sending starts again from it. */
void stm_session_on_hello(session_t *s, const vector_t *theirs);

/* Their ACK of batch seq with their vector after storing it (ownership taken, *theirs
 * set to NULL). Frees one place in the window unless seq was forgotten by a restart;
 * restarts the resend deadline (now_ms). */
void stm_session_on_ack(session_t *s, uint64_t seq, vector_t **theirs, int64_t now_ms);

/* They have received the first `bytes` of batch seq (sent in parts) at now_ms: the
 * resend deadline starts again (invariant 9). */
void stm_session_on_received(session_t *s, uint64_t seq, uint64_t bytes, int64_t now_ms);

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

/* Whether a batch may go now: more may be there, and the window has room (for a large
 * batch, only an empty window has: invariant 8). */
bool stm_session_wants_to_send(const session_t *s);

/* A reader of what lies above sent in store (invariant 1), with the session's limit
 * (invariant 7). *out is the caller's (stm_oplog_reader_destroy), to pass to
 * stm_session_next_batch until it returns nothing. */
STM_NODISCARD stm_err stm_session_reader_new(const session_t *s, store_t *store,
                                             oplog_reader_t **out, stm_error *err);

/* Reads the next batch from r into out (reset first) as the codec encodes it, and its
 * number into *seq; *count is the operations it covers (its stand-ins' too), 0 when
 * nothing is left (then more is false), the window is full, or the batch is large and
 * the window not empty (it is read again once it is: invariant 8). The batch counts as
 * sent only once stm_session_batch_sent says it left. */
STM_NODISCARD stm_err stm_session_next_batch(session_t *s, oplog_reader_t *r, buf_t *out,
                                             uint64_t *seq, size_t *count, stm_error *err);
/* The batch stm_session_next_batch handed out last, decoded, lent until the next call:
 * its stand-ins whose `here` is set are row changes withheld from this peer. */
const opbatch_t *stm_session_pending(const session_t *s);

/* The batch stm_session_next_batch handed out last has left at now_ms: it takes a place
 * in the window and sent covers it. Not called when it could not leave: the next
 * restart or read sends its operations again. */
void stm_session_batch_sent(session_t *s, int64_t now_ms);

/* ---- the resend deadline ---- */

/* When batches in flight count as lost: timeout_ms after the last batch that left
 * into an empty window, the last ACK or the last sign of receiving, whichever came
 * later, and more for a large batch wholly received (invariant 9); INT64_MAX when
 * nothing is in flight. */
int64_t stm_session_resend_at(const session_t *s, int timeout_ms);

/* How much longer than timeout_ms the peer may take to answer because it is storing a
 * large batch it has wholly received (invariant 9): timeout_ms for each
 * SESSION_STORE_BYTES of it; 0 when none is. Its silence is given as long. */
int64_t stm_session_storing_ms(const session_t *s, int timeout_ms);

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
