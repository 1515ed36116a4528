/* horizon.h - what the peers this database still counts as known hold: the bound
 * compaction (compact.h) prunes up to.
 *
 * stemma_peers keeps, per peer (its node id), the version vector it last said it holds
 * and when it was last heard from; a running node notes its peers there (node/compactor).
 * A peer heard from within the last `keep` milliseconds is known: compaction removes an
 * operation only once such a peer holds the later write that replaced it, so that a peer
 * which is away for a while still receives the history when it comes back. A peer silent
 * for longer no longer holds pruning back (its row is forgotten): when it comes back it
 * receives the current cells, and pruned stand-ins for the rest, as a peer never heard of
 * does. Its vector may be a few minutes stale (it is noted when compaction runs): stale
 * only ever holds back more. */
#ifndef STM_HORIZON_H
#define STM_HORIZON_H

#include "base/error.h"
#include "base/id.h"
#include "store.h"
#include "vector.h"

#include <stddef.h>
#include <stdint.h>

/* Notes that peer held `held` (lent) at seen_ms (wall clock), replacing what was noted of
 * it. In the caller's write transaction. */
STM_NODISCARD stm_err stm_horizon_note(store_t *store, const stm_id *peer, const vector_t *held,
                                       int64_t seen_ms, stm_error *err);

/* The horizon at now_ms: per origin, the greatest sequence every peer heard from within
 * keep_ms holds (0, or no entry: some known peer holds none of it). *out is the caller's;
 * NULL when no peer is known (nothing holds pruning back). *known is how many peers
 * counted. Peers silent for longer are forgotten, in the caller's write transaction. A
 * noted vector that cannot be read is STM_ECORRUPT. */
STM_NODISCARD stm_err stm_horizon_read(store_t *store, int64_t now_ms, int64_t keep_ms,
                                       vector_t **out, size_t *known, stm_error *err);

#endif
