/* inbound.h - storing what peers send: the batches received and not stored yet, and
 * the attempts to store them, with retries and backoff.
 *
 * Every batch received is kept here until the transaction that stores it commits,
 * and acknowledged only then: an ACK sent before the commit could promise operations
 * a crash then loses, and a batch dropped on a failed attempt would wait for its
 * sender's timeout. So an attempt that fails (another program holds the write lock
 * past busy_timeout_ms; the disk is full; the file is read-only) rolls back, keeps
 * every batch, acknowledges nothing, and is tried again: soon when the database was
 * busy, backing off up to INBOUND_RETRY_MAX_MS otherwise. Between attempts the node
 * serves peers and its control socket.
 *
 * Invariants:
 *
 *  1. A batch leaves the queue only by being stored (then acknowledged through the
 *     ack callback, after the commit, with the vector as it left it) or by the queue
 *     being destroyed (never acknowledged: its sender sends it again).
 *  2. What is held is bounded by INBOUND_MAX_BATCHES and INBOUND_MAX_BYTES; past them
 *     a batch is refused, counted as deferred, and left to its sender's timeout.
 *  3. All batches waiting are stored in one transaction, so each changed page is
 *     written once, and a failure keeps all of them.
 *
 * No sockets: the ack callback is where the node sends the ACK. */
#ifndef STM_INBOUND_H
#define STM_INBOUND_H

#include "apply.h"
#include "base/error.h"
#include "op.h"
#include "store.h"
#include "vector.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INBOUND_MAX_BATCHES 64
#define INBOUND_MAX_BYTES (64u << 20) /* encoded bytes of the batches held */
#define INBOUND_RETRY_MIN_MS 100
#define INBOUND_RETRY_MAX_MS 5000

/* Told, after the commit, of each batch stored: sender and seq as stm_inbound_add was
 * given them, the batch (lent) and what storing it counted. The vector the ACK carries
 * is the one the commit left, which the applier's transaction told its listener
 * (txn.h; a node's feed.h) before this is called. */
typedef void (*inbound_ack_fn)(void *ctx, void *sender, uint64_t seq, const opbatch_t *batch,
                               const apply_stats *stats);

typedef struct inbound inbound_t;

/* An empty queue whose attempts wait at most busy_timeout_ms (> 0) for another
 * program's write lock. The caller owns it (stm_inbound_destroy). */
inbound_t *stm_inbound_new(int busy_timeout_ms);
/* Drops every batch still waiting, unacknowledged (invariant 1). */
void stm_inbound_destroy(inbound_t **self_p);

/* Installs the queue's busy handler on store's connection (lent; call again for a
 * store opened anew). The handler waits at most busy_timeout_ms from an attempt's
 * first wait, which is how a busy database is told from one that refused the write. */
void stm_inbound_watch(inbound_t *q, store_t *store);

/* Whether a batch of bytes more would go over the bounds (invariant 2). */
bool stm_inbound_full(const inbound_t *q, size_t bytes);

/* Queues a batch from sender (an opaque tag handed back to the ack callback; it must
 * live as long as the queue holds the batch) with its number seq and encoded size.
 * Takes the batch (*batch set to NULL) and returns true; when full, frees it, counts
 * it as deferred and returns false. */
bool stm_inbound_add(inbound_t *q, void *sender, uint64_t seq, opbatch_t **batch, size_t bytes);

/* When the next attempt is due on the monotonic clock: INT64_MAX when nothing waits,
 * at once (0) when the last attempt worked, else after a backoff. */
int64_t stm_inbound_due_at(const inbound_t *q);

/* Whether the last attempt failed for a reason other than a busy database (then a
 * read-only connection may need opening again before the next attempt). */
bool stm_inbound_failing_io(const inbound_t *q);
/* Whether the last attempt failed at all. */
bool stm_inbound_failing(const inbound_t *q);

/* Stores every batch waiting with applier (on store: both lent) in one transaction.
 * After the commit calls ack for each, in the order received, empties the queue and
 * returns true. On failure everything is rolled back, every batch waits, the next
 * attempt is scheduled (from the end of this one, on the monotonic clock), and it
 * returns false. */
bool stm_inbound_store(inbound_t *q, applier_t *applier, store_t *store, inbound_ack_fn ack,
                       void *ctx);

/* Batches waiting; attempts that failed because the database was busy, or for another
 * reason; batches refused because the queue was full. */
size_t stm_inbound_count(const inbound_t *q);
uint64_t stm_inbound_busy_failures(const inbound_t *q);
uint64_t stm_inbound_io_failures(const inbound_t *q);
uint64_t stm_inbound_deferred(const inbound_t *q);

#endif
