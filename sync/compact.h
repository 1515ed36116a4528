/* compact.h - compaction: the operations later writes replaced, pruned from the oplog.
 *
 * Every operation is kept in the oplog so that it travels on to peers that lack it
 * (oplog.h). Once a later write has replaced it, what a peer needs is that later write,
 * not it: applied anywhere, it would lose. Compaction removes it then, a slice of stored
 * rows at a time, each slice one transaction of its own (the applier's, txn.h), so
 * that neither the application's writes nor a node's loop wait long for it.
 *
 * Invariants:
 *
 *  1. An operation is removed only when it is replaced: the clocks of its cell (its row's
 *     in stemma_clock, or its incarnation's kept aside in stemma_conflicts, identity.h)
 *     name another write, later than it by (hlc, origin), and that write is held here
 *     (the clocks only name writes held and applied). For a row delete, the row's latest
 *     delete is that later write. What the clocks name is never removed: the latest
 *     write of every cell (of rows alive or deleted: a write from a device that had not
 *     seen a delete still brings the row back, with those cells), the latest delete, the
 *     latest write parked for a missing column, the row change that made an
 *     incarnation.
 *  2. Nothing parked is removed (a row change with an operation parked stays whole), nor
 *     anything whose cell this database cannot name: a table or column it lacks or does
 *     not sync, one a migration dropped since its writer's version, a row with no clocks.
 *  3. It is removed only once every peer still counted as known (horizon.h) holds the
 *     later write: a peer that was away comes back to the history. A peer no longer
 *     known, or never heard of, receives the later write and a pruned stand-in for what
 *     was removed (oplog.h, "Gaps"), which holds no write it lacks.
 *  4. What is removed leaves a gap below the vector, never above it: the vector, the
 *     clocks and every row of the application are untouched, so whatever order and
 *     whatever peers operations come from afterwards, they apply as they would have
 *     (apply.h): an operation arriving again for a pruned sequence is held already.
 *  5. The rows of pruned stand-ins received above a gap (oplog.h) go once the vector has
 *     moved past them (a gap says the same); withheld stand-ins' once every known peer
 *     holds them.
 *  6. The counters (store.h) follow: operations and withheld ones down, pruned up, and
 *     a pass counted when its last slice commits. */
#ifndef STM_COMPACT_H
#define STM_COMPACT_H

#include "apply.h"
#include "vector.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where a pass stands: after the stored row (origin's stemma_ids number, seq); zero
 * before its first slice. */
typedef struct {
    int64_t origin;
    uint64_t seq;
} compact_cursor;

typedef struct {
    uint64_t rows;     /* stored rows looked at */
    uint64_t pruned;   /* operations removed */
    uint64_t waiting;  /* operations replaced but kept: a known peer lacks the later write */
    uint64_t standins; /* rows of stand-ins removed (invariant 5) */
    bool done;         /* the slice reached the end of the oplog: the pass is over */
} compact_stats;

/* Rows a slice reads by default: about 5 ms of work on the machine of
 * docs/performance.md, so a node's loop is never held long. */
#define COMPACT_SLICE_ROWS 500

/* Compacts the next slice of at most max_rows stored rows after *at, in a transaction of
 * its own, under horizon (lent; NULL: no peer is known, nothing holds pruning back), and
 * moves *at on (back to zero when the pass is over, st->done). Adds to *st. On failure
 * (the database busy past its timeout, full, read-only) nothing of the slice is kept and
 * *at stays where it was. */
STM_NODISCARD stm_err stm_applier_compact(applier_t *a, const vector_t *horizon, compact_cursor *at,
                                          size_t max_rows, compact_stats *st, stm_error *err);

/* A whole pass, slice after slice (stemma compact on a database no node runs on). */
STM_NODISCARD stm_err stm_applier_compact_all(applier_t *a, const vector_t *horizon,
                                              compact_stats *st, stm_error *err);

#endif
