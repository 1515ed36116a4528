/* oplog.h - the oplog: every operation this database holds, stored and read back.
 *
 * Storage. One stemma_oplog row holds one row change: the operations seq .. seq+n-1
 * of one origin, which share a clock, a schema version, a table and a key (a delete
 * is a change of its own, n = 1, cells NULL). cells is a MessagePack sequence of n
 * entries, one per operation in sequence order, each a triple
 *
 *   column (str), affinity (int: the ASCII code of T N I R B), value (codec.h)
 *
 * or nil for an operation compaction pruned (compact.h): the row change keeps its
 * place, and a peer that lacks the operation is handed a pruned stand-in ("Gaps").
 *
 * Names are kept as the writer sent them. Origin and version ids are stored as their
 * stemma_ids numbers (store.h). A row change costs one B-tree row, whatever its width.
 * Rows never overlap: each operation is stored once.
 *
 * A stand-in received (op.h: a row change too large to travel) is stored as a row of
 * its own, with its clock, version, table and key, and cells the MessagePack map
 * {"withheld": bytes}: its operations are held, so the vector moves past them, and it
 * travels on as a stand-in, never as operations.
 *
 * Reading. The reader hands out what a peer lacks: it walks a feed (feed.h), the row
 * changes in the order they arrived here (at the node's start, by hybrid logical clock,
 * so an operation comes after those its writer had seen when it wrote it: an update
 * after the insert of its row), and reads from the oplog only the runs of row changes
 * the peer lacks, above its vector entry for their origin; one statement, kept between
 * passes, whatever the number of origins. A batch never splits a stored row change, so
 * the receiver writes each row in one statement.
 *
 * A row change larger than the reader's limit (OP_MAX_CHANGE_BYTES, or less for a peer
 * that takes less) is read as a stand-in (op_withheld, `here` set): too large to
 * travel, it is named instead, and nothing after it waits for it. Its size is told
 * from the stored row before a byte of its values is copied (a bound about 64 bytes an
 * operation above what it would take encoded).
 *
 * Gaps. Compaction (compact.h) removes operations whose cells later writes replaced;
 * what it leaves is a gap at or below the origin's vector entry (a row gone, or a nil in
 * a row's cells), which no peer could fill. The reader hands out each such gap a peer
 * lacks as pruned stand-ins (op.h, at most CODEC_MAX_BATCH_OPS operations each), so
 * that the peer's vector moves past it: it receives the later writes, the current cells,
 * instead of the history. A gap above the vector entry is operations not held, and is
 * not handed out; nor is a skipped one (stm_oplog_append_skipped). A feed covers the gaps
 * with runs as it covers rows (feed.h): a run's sequences with no row, at or below the
 * vector, are a gap. */
#ifndef STM_OPLOG_H
#define STM_OPLOG_H

#include "op.h"
#include "store.h"
#include "vector.h"

/* ---- writing and looking up ---- */

/* What a stored row holds: a row change, or a stand-in's (op.h) for operations withheld
 * by their sender, or for operations pruned received above a gap; or sequences of this
 * database's own origin it skipped (stm_oplog_append_skipped). */
typedef enum {
    OPLOG_ROW_CHANGE,
    OPLOG_ROW_WITHHELD,
    OPLOG_ROW_PRUNED,
    OPLOG_ROW_SKIPPED
} oplog_row_kind;

typedef struct oplog oplog_t;

/* An oplog handle on store (lent; it must outlive the handle), which keeps its
 * statements prepared. The caller owns it (stm_oplog_destroy). */
oplog_t *stm_oplog_new(store_t *store);
void stm_oplog_destroy(oplog_t **self_p);

/* Records ops[0..n), one row change: n writes of one origin, clock, version, table
 * and key with consecutive sequence numbers, or one delete. table is the name to
 * store. None of them may be held already (stm_oplog_holds). In the caller's
 * transaction. */
STM_NODISCARD stm_err stm_oplog_append(oplog_t *log, const op_t *const *ops, size_t n,
                                       const char *table, stm_error *err);

/* Records a stand-in received for operations seq .. seq + n - 1 (of w's, none held
 * already) under the name table, as a row of its own. In the caller's transaction. */
STM_NODISCARD stm_err stm_oplog_append_withheld(oplog_t *log, const op_withheld *w, uint64_t seq,
                                                uint64_t n, const char *table, stm_error *err);

/* Records operations seq .. seq + n - 1 of origin (none held already), received as pruned
 * (op.h) above a gap, as a row of their own (a stand-in's, with cells {"pruned": n}), so
 * that the vector moves past them once the gap is filled; pruned ones that continue what
 * is held need no row (txn_record.c). Not counted among the operations held (store.h).
 * In the caller's transaction. */
STM_NODISCARD stm_err stm_oplog_append_pruned(oplog_t *log, const stm_id *origin, uint64_t seq,
                                              uint64_t n, stm_error *err);

/* Records that this database's own origin skipped sequences seq .. seq + n - 1 (1 <= n
 * < 2^62): an operation of its origin came from a peer above its last sequence (txn.h,
 * invariant 5), and its sequence moved past those never issued. A row of its own (cells
 * the one byte 0xc1), which the reader hands out as nothing and compaction keeps: only
 * the gaps compaction makes are pruned operations, handed out as such (below). In the
 * caller's transaction. */
STM_NODISCARD stm_err stm_oplog_append_skipped(oplog_t *log, const stm_id *origin, uint64_t seq,
                                               uint64_t n, stm_error *err);
/* Records as skipped every gap between the stored rows of origin (its id, and number no)
 * above from and up to to: the sequences of this database's own origin its last jump
 * passed over. In the caller's transaction. */
STM_NODISCARD stm_err stm_oplog_skip_gaps(oplog_t *log, const stm_id *origin, int64_t no,
                                          uint64_t from, uint64_t to, stm_error *err);

/* Whether operation seq of origin (its stemma_ids number) is held: *end is then the
 * last sequence of the stored row change holding it, else 0. */
STM_NODISCARD stm_err stm_oplog_holds(oplog_t *log, int64_t origin, uint64_t seq, uint64_t *end,
                                      stm_error *err);

/* The highest sequence to which origin's operations are held without a gap, counting
 * from `from` (held up to there already): from itself when from + 1 is missing. */
STM_NODISCARD stm_err stm_oplog_contiguous(oplog_t *log, int64_t origin, uint64_t from,
                                           uint64_t *to, stm_error *err);

/* Appends operation seq of origin to out; *found false when it is not held. */
STM_NODISCARD stm_err stm_oplog_fetch(oplog_t *log, const stm_id *origin, uint64_t seq,
                                      opbatch_t *out, bool *found, stm_error *err);

/* ---- compaction's side (oplog_prune.c; compact.h decides) ---- */

/* One stored row, as compaction reads it. */
typedef struct {
    int64_t origin;      /* its origin's stemma_ids number */
    stm_id origin_id;    /* ... and id */
    uint64_t seq, n;     /* it holds operations seq .. seq + n - 1 */
    oplog_row_kind kind; /* a row change, or a stand-in's */
    size_t first, count; /* a row change's operations in the slice's batch: first ..
                            first + count - 1, in sequence order (those pruned before
                            are not among them) */
} oplog_row;

/* Reads at most max stored rows after (origin, seq) (its stemma_ids number and a
 * sequence; 0, 0: from the start), in that order: the rows into *rows[0 .. *count)
 * (the caller's to free), their operations into ops (emptied first). STM_ECORRUPT for a
 * damaged row. */
STM_NODISCARD stm_err stm_oplog_slice(oplog_t *log, int64_t origin, uint64_t seq, size_t max,
                                      opbatch_t *ops, oplog_row **rows, size_t *count,
                                      stm_error *err);

/* Prunes row (read by stm_oplog_slice, its operations in ops) but for the operations
 * live[0 .. row->count) marks (NULL: none): the row goes when none stays, else its
 * pruned operations become nil in its cells. What goes is counted pruned (store.h); it
 * leaves a gap that a peer lacking it is sent as a pruned stand-in (the reader, below).
 * In the caller's transaction. */
STM_NODISCARD stm_err stm_oplog_prune(oplog_t *log, const oplog_row *row, const opbatch_t *ops,
                                      const bool *live, stm_error *err);

/* ---- reading for a peer ---- */

typedef struct oplog_reader oplog_reader_t;
typedef struct feed feed_t; /* feed.h */

/* Where a reader is in its feed: a run, and the next sequence in it to look at (0: its
 * first). Positions only grow as it reads; stm_oplog_pos_cmp orders them. */
typedef struct {
    size_t run;
    uint64_t seq;
} oplog_pos;
int stm_oplog_pos_cmp(oplog_pos a, oplog_pos b);

/* What the reader's peer holds of origin without a gap (0: nothing): operations at or
 * below it are not read for it. */
typedef uint64_t (*oplog_held_fn)(void *ctx, const stm_id *origin);

/* A reader walking feed (lent: it must outlive the reader) from its start, for a peer
 * that holds what held says (set with stm_oplog_reader_held; none: nothing). The
 * caller owns it (stm_oplog_reader_destroy). It is kept between passes: at the end of
 * each, stm_oplog_reader_rest lets go of the database (no statement stays open), and
 * the next call goes on from where it was. */
oplog_reader_t *stm_oplog_reader_on(feed_t *feed);
void stm_oplog_reader_held(oplog_reader_t *r, oplog_held_fn fn, void *ctx);

/* A reader of everything above since (NULL: everything), with a feed of its own loaded
 * from store (feed.h: every row change, by clock). since is copied. *out is the
 * caller's (stm_oplog_reader_destroy). Local changes still queued (capture.h) are not
 * read: callers collect them first (stm_applier_catch_up). */
STM_NODISCARD stm_err stm_oplog_reader_new(store_t *store, const vector_t *since,
                                           oplog_reader_t **out, stm_error *err);
void stm_oplog_reader_destroy(oplog_reader_t **self_p);

/* Row changes over limit bytes (at most, and by default, OP_MAX_CHANGE_BYTES), or with
 * a key or value over max_value bytes (at most, and by default, OP_MAX_VALUE_BYTES), are
 * read as stand-ins from now on: for a peer that takes smaller batches or values. */
void stm_oplog_reader_set_limit(oplog_reader_t *r, uint64_t limit, uint64_t max_value);

/* Where it is; moving it (back, to send again what a lost batch held) lets go of the
 * database as stm_oplog_reader_rest does. */
oplog_pos stm_oplog_reader_tell(const oplog_reader_t *r);
void stm_oplog_reader_seek(oplog_reader_t *r, oplog_pos pos);
void stm_oplog_reader_rest(oplog_reader_t *r);

/* Appends the next operations (and stand-ins) the peer lacks to batch, in the feed's
 * order, until it covers max_ops more or holds max_bytes in all (stm_opbatch_bytes),
 * going over only to finish a row change. A row change over max_bytes (and within the
 * limit) comes alone: it is left for the next call when this one has read anything.
 * *got is how many operations were covered (stm_opbatch_covered). Runs the peer lacks
 * nothing of cost a lookup each, not a query: after skipping budget of them the call
 * stops and says *yielded, so that a long walk (a peer met again, against a feed of
 * millions of runs) is cut into slices between which the node serves its sockets.
 * *got 0 without *yielded means the end: nothing more for now. */
STM_NODISCARD stm_err stm_oplog_reader_walk(oplog_reader_t *r, opbatch_t *batch, size_t max_ops,
                                            size_t max_bytes, size_t budget, size_t *got,
                                            bool *yielded, stm_error *err);
/* The same without a budget. */
STM_NODISCARD stm_err stm_oplog_reader_next(oplog_reader_t *r, opbatch_t *batch, size_t max_ops,
                                            size_t max_bytes, size_t *got, stm_error *err);

/* How many operations the database holds, and how many of them are parked. */
STM_NODISCARD stm_err stm_oplog_counts(store_t *store, uint64_t *total, uint64_t *parked,
                                       stm_error *err);
/* The same, and how many of those held are only stand-ins (withheld by their sender). */
STM_NODISCARD stm_err stm_oplog_counts_withheld(store_t *store, uint64_t *total, uint64_t *parked,
                                                uint64_t *withheld, stm_error *err);

#endif
