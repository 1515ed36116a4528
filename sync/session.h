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
 *  1. theirs is exactly what the peer last said it holds (its HELLOs', ACKs' and
 *     VECTORs' vectors, whole or as deltas: stm_session_take_vector); extra raises it
 *     over what the peer sent us (invariant 6). What is read for the peer is what lies
 *     above both, walking the feed (feed.h) from the reader's position, which is kept
 *     between passes and only moves back to send again what was lost (invariant 3).
 *  2. At most `window` batches are in flight (sent, not acknowledged):
 *     stm_session_next_batch hands out none while the window is full.
 *  3. Batch numbers only grow while the session lives, so an ACK names one batch.
 *     A restart (a HELLO, or stm_session_resend when ACKs stopped coming) forgets the
 *     batches in flight: their ACKs, numbered up to reset_seq, still update theirs but
 *     free no place in the window; the reader goes back to where the first of them
 *     started, or, after a HELLO whose vector did not continue ours (the peer was
 *     restarted, restored or met anew and may hold less than we thought), to the
 *     feed's start.
 *  4. A batch received is acknowledged only after the transaction storing it
 *     commits (inbound.h does the storing): the ACK carries the vector after the
 *     commit, so the sender never forgets operations a crash could lose.
 *  5. more is false only when the last read reached the feed's end; anything that may
 *     add operations (a local write, a batch stored, a HELLO) sets it again. A read that
 *     stopped to let the node serve its sockets (stm_oplog_reader_walk's budget) leaves
 *     it set.
 *  6. No echo: the operations of a batch the peer sent are held by it, so extra is
 *     raised over them (stm_session_on_ops) wherever they continue what it was known to
 *     hold, and they are never read for it. An operation above a gap raises nothing:
 *     what it lacks below is still sent. The operations a stand-in covers (op.h) count
 *     alike.
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
 *     it to store it, so that a slow disk does not make it come again for ever.
 * 10. Vectors travel whole to a peer that does not take deltas (vdelta.v1), cut to
 *     VECTOR_MAX_ENTRIES of the highest seq when longer (an older peer refused longer
 *     ones). To one that does, a vector goes whole (in parts of VECTOR_MAX_ENTRIES)
 *     until the peer holds it, then as the entries changed since the last one sent, over
 *     its digest (base): out says what it holds. What the peer holds of ours is trusted
 *     only while its HELLOs say they know it (vknow: that one, or one of the last few
 *     sent, when what followed was lost), and a delta of theirs is taken
 *     only over the very copy it was made from (its base is our copy's digest), its
 *     digest then checked; otherwise the whole is asked for (VECTOR's vneed), once until
 *     a whole one comes. Entries a delta names are set even so: they are the peer's. */
#ifndef STM_SESSION_H
#define STM_SESSION_H

#include "base/buf.h"
#include "base/error.h"
#include "feed.h"
#include "oplog.h"
#include "op.h"
#include "store.h"
#include "vector.h"
#include "vtrack.h"

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

/* Their HELLO, its vector taken first (stm_session_take_vector): the batches in flight
 * are forgotten and sending starts again (invariant 3). */
void stm_session_on_hello(session_t *s);

/* Their ACK of batch seq, its vector taken (stm_session_take_vector): frees one place in
 * the window unless seq was forgotten by a restart; restarts the resend deadline (now_ms). */
void stm_session_on_ack(session_t *s, uint64_t seq, int64_t now_ms);

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

/* The most runs a read skips whole before it stops (stm_oplog_reader_walk's budget):
 * a few milliseconds of lookups. */
#define SESSION_WALK_BUDGET 20000u

/* Reads the next batch the peer lacks from feed (lent; the same every call: the
 * session's reader walks it and is kept) into out (reset first) as the codec encodes it,
 * and its number into *seq; *count is the operations it covers (its stand-ins' too), 0
 * when nothing is left (then more is false), the window is full, the batch is large and
 * the window not empty (it is read again once it is: invariant 8), or the read stopped
 * to let the node serve its sockets (*yielded: call again soon). The batch counts as
 * sent only once stm_session_batch_sent says it left; one that did not is read again. */
STM_NODISCARD stm_err stm_session_next_batch(session_t *s, feed_t *feed, buf_t *out,
                                             uint64_t *seq, size_t *count, bool *yielded,
                                             stm_error *err);
/* The batch stm_session_next_batch handed out last, decoded, lent until the next call:
 * its stand-ins whose `here` is set are row changes withheld from this peer. */
const opbatch_t *stm_session_pending(const session_t *s);

/* The batch stm_session_next_batch handed out last has left at now_ms: it takes a place
 * in the window. */
void stm_session_batch_sent(session_t *s, int64_t now_ms);

/* The end of a send pass: a batch handed out and not sent is read again next time, and
 * the reader lets go of the database until then. */
void stm_session_rest(session_t *s);

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

/* ---- vectors exchanged (invariant 10; session_vector.c) ---- */

/* Whether the peer takes vector deltas (its HELLO lists vdelta.v1). */
void stm_session_set_deltas(session_t *s, bool deltas);
bool stm_session_deltas(const session_t *s);
/* Whether its HELLO said it does not (an older stemma): not before its HELLO. */
bool stm_session_older(const session_t *s);

typedef enum {
    SESSION_VECTOR_TAKEN,   /* held, whole or in part (more parts to come, or cut) */
    SESSION_VECTOR_ASK,     /* a delta over another copy than ours: ask for the whole */
    SESSION_VECTOR_DIFFERS, /* a whole one whose digest is not ours for it: the peer
                               counts digests otherwise; it is not asked again */
} session_vector;
/* Takes the vector part of one of their messages (m's entries taken, m cleared). */
session_vector stm_session_take_vector(session_t *s, vector_msg *m);
/* True, with its digest, while we hold their whole vector (for our HELLO's vknow). */
bool stm_session_knows_theirs(const session_t *s, vector_digest *out);
/* Their HELLO says they hold our vector of digest know (NULL: none): unless it is the
 * one last sent them, or one of the SESSION_SENT_KEPT before it (the next is then a
 * delta from that one), the next goes whole. */
void stm_session_told_knows(session_t *s, const vector_digest *know);
/* Whether they hold our vector as last sent them (out): false until one went whole. */
bool stm_session_vector_synced(const session_t *s);
/* They asked for our whole vector (vneed): the next goes whole. */
void stm_session_vector_lost(session_t *s);
/* Our vector (mine) as the next message to them carries it: the parts, lent until the
 * next call, of which the first goes in that message and the others follow in VECTOR
 * messages at once; out then says they hold it. */
size_t stm_session_vector_out(session_t *s, const vtrack_t *mine, const vector_out **parts);
/* The parts stm_session_vector_out handed out have been sent: large ones go. */
void stm_session_vector_sent(session_t *s);
/* Entries dropped from their vectors because one message held more than
 * VECTOR_MAX_ENTRIES (an older peer's). */
uint64_t stm_session_vectors_cut(const session_t *s);

/* Whether they hold some operation mine lacks (an entry of theirs above ours): what a
 * peer that sends us only its vector (node/peer.h, "lazy links") would send us. */
bool stm_session_holds_more(const session_t *s, const vtrack_t *mine);

/* ---- what it knows ---- */

/* Their vector, lent until the next vector taken. */
const vector_t *stm_session_theirs(const session_t *s);
int stm_session_in_flight(const session_t *s);
uint64_t stm_session_ops_sent(const session_t *s);
uint64_t stm_session_ops_received(const session_t *s);
uint64_t stm_session_parked(const session_t *s);
/* How many operations of mine (this database's vector) they lack. */
uint64_t stm_session_behind(const session_t *s, const vtrack_t *mine);
/* How many operations of theirs (their vector as last told) mine lacks. */
uint64_t stm_session_ahead(const session_t *s, const vtrack_t *mine);

#endif
