/* parts.h - an OPS batch sent in parts, put together again: one peer's assembly.
 *
 * A batch larger than WIRE_PART_BYTES goes to a peer that reads parts (WIRE_CAP_PARTS)
 * as several OPS of one seq, parts 0 .. parts - 1 back to back, each a slice of the
 * batch (docs/protocol.md, "OPS"). The receiver keeps one assembly per peer; a sender
 * sends one batch's parts in order on one connection, so one is enough.
 *
 * Invariants:
 *
 *  1. An assembly holds the slices of parts 0 .. next - 1 of batch seq, in order, and
 *     never more than the `bytes` part 0 announced (at most WIRE_MAX_BATCH, checked by
 *     the decoder before anything is sized by it).
 *  2. Part 0 starts an assembly, dropping one unfinished (its parts are counted as
 *     dropped). Any other part must be the next of the assembly's batch, with the same
 *     parts and bytes; one that is not drops it, and is dropped itself. The sender sends
 *     the whole batch again when its ACK does not come: nothing is lost, only resent.
 *  3. The last part completes the batch only when the slices add up to `bytes` exactly;
 *     the batch is then lent to the caller until the next call, and the memory goes
 *     with stm_parts_clear.
 *
 * No sockets: the caller (peer.h) sends the RECEIVED that answers each part. */
#ifndef STM_PARTS_H
#define STM_PARTS_H

#include "wire.h"

#include <stddef.h>
#include <stdint.h>

typedef struct parts parts_t;

/* An empty assembly; the caller's (stm_parts_destroy). */
parts_t *stm_parts_new(void);
void stm_parts_destroy(parts_t **self_p);

typedef enum {
    PARTS_MORE,    /* taken: more parts are to come */
    PARTS_DONE,    /* taken: the batch is whole (stm_parts_batch) */
    PARTS_DROPPED, /* not taken (invariant 2): it and the assembly it broke are dropped */
} parts_result;

/* Adds part m (an OPS with m->parts set). *dropped is set to how many parts were
 * dropped by this call (an assembly it broke or replaced, and this part when it is not
 * taken), for the node's count; *why, when it is PARTS_DROPPED, says why (static). */
parts_result stm_parts_add(parts_t *a, const wire_ops *m, uint64_t *dropped, const char **why);

/* The batch made whole by the last call that returned PARTS_DONE, lent until the next
 * stm_parts_add or stm_parts_clear. */
const void *stm_parts_batch(const parts_t *a, size_t *len);
/* The batch being put together, and how many of its bytes are here (for RECEIVED). */
uint64_t stm_parts_seq(const parts_t *a);
uint64_t stm_parts_received(const parts_t *a);

/* Forgets the assembly and frees its memory (a whole batch once it is decoded, or an
 * unfinished one when its sender restarted). */
void stm_parts_clear(parts_t *a);

#endif
