/* txn.h - the write transaction of the sync layer, shared by apply, replay, catch-up
 * and a migration.
 *
 * Every transaction here starts the same way: the schema read again if it changed,
 * the application's queued changes (capture.h) made operations, recorded, and entered
 * into stemma_clock. It ends the same way: the version vector, the local sequence and
 * clock and the capture marks moved over what it recorded, then COMMIT. In between the
 * applier (apply.h) records what it receives through stm_txn_take_new and reads and writes
 * row clocks here; the transaction keeps what it learns of each origin, so that most
 * operations are known new without a query.
 *
 * Invariants (kept by every transaction, whatever the order operations arrive in):
 *
 *  1. Every operation received is recorded in stemma_oplog exactly once, keyed by
 *     (origin, seq), with its origin, sequence and clock unchanged, so it travels on.
 *     One held already, or twice in one batch, is counted as present and changes
 *     nothing.
 *  2. A transaction is one SQLite transaction (stm_txn_begin .. stm_txn_commit, which the
 *     applier may hold open over many batches): after a crash the database holds all
 *     of it or none. Capture triggers are off inside it (stemma_local.applying), so
 *     applied operations are not recorded a second time as local ones.
 *  3. The local clock never falls behind a clock recorded in it, so later local
 *     writes order after what this database has seen; except a clock above the
 *     limit (stm_txn_set_clock_limit), which moves it only once it is applied
 *     (stm_txn_clock_seen): a peer whose clock runs far ahead does not drag this
 *     database's clock, and every later local write's, with it.
 *  4. Local writes enter stemma_clock at the start of the next transaction here
 *     (capture only appends to the oplog, so the application's writes stay cheap),
 *     before anything is compared with them. They are the latest writes of their
 *     cells by construction: their clock is above every clock this database has seen.
 *  5. At commit, each remote origin's stemma_vector entry is the highest sequence held
 *     with none missing below it, and the local sequence is above every operation of
 *     this database's own id it holds (some may come back from a peer).
 *  6. At commit the capture marks move over the rows written inside, which are not the
 *     application's to collect.
 *  7. A rollback forgets the ids numbered inside it (stm_store_forget_ids): their numbers
 *     are gone with it.
 *  8. The synced tables handed out (txn_table) are those of the schema at the start
 *     of the transaction; when the schema changed they are read again and the old
 *     ones freed, and stm_txn_epoch changes, so that what is keyed by them goes too. */
#ifndef STM_TXN_H
#define STM_TXN_H

#include "op.h"
#include "identity.h"
#include "origin.h"
#include "oplog.h"
#include "rowclock.h"
#include "store.h"
#include "lineage/catalog.h"

typedef struct txn txn_t;
/* A synced table of the schema the transaction read. */
typedef struct txn_table txn_table;

/* A transaction runner for store, recording through log (both lent; they must
 * outlive it). The caller owns the result (stm_txn_destroy). */
txn_t *stm_txn_new(store_t *store, oplog_t *log);
void stm_txn_destroy(txn_t **self_p);
/* since (lent until t's next reading of the schema, which takes from it every table
 * whose text did not change: stm_catalog_read_since) is a reading of the schema just
 * made elsewhere, for a new t. */
void stm_txn_read_since(txn_t *t, const catalog_t *since);

/* Opens a transaction (BEGIN IMMEDIATE), starts it (the schema, the local changes
 * recorded) and turns capture off. On failure nothing is left open. */
STM_NODISCARD stm_err stm_txn_begin(txn_t *t, stm_error *err);
/* Moves the vector, the local sequence and clock and the marks, and commits; rolls
 * back on failure. */
STM_NODISCARD stm_err stm_txn_commit(txn_t *t, stm_error *err);
/* Rolls back the open transaction and forgets what it learnt. */
void stm_txn_rollback(txn_t *t);
/* Starts inside the caller's own open write transaction (a migration's, before it
 * changes the schema): the local changes are recorded and entered into stemma_clock,
 * nothing else is done (stm_capture_collect moved the local sequence and clock). On
 * failure the caller rolls back. */
STM_NODISCARD stm_err stm_txn_collect(txn_t *t, stm_error *err);

/* Recorded clocks above limit do not move the local clock (invariant 3); the
 * default, UINT64_MAX, lets every one. */
void stm_txn_set_clock_limit(txn_t *t, uint64_t limit);
/* An operation with clock hlc, recorded already, is applied: the local clock moves
 * over it at commit. */
void stm_txn_clock_seen(txn_t *t, uint64_t hlc);

/* Changes whenever the synced tables are read again (invariant 8). */
uint64_t stm_txn_epoch(const txn_t *t);

/* The synced table named name (any case), or NULL; lent until the schema is read
 * again (stm_txn_epoch). */
txn_table *stm_txn_table_find(txn_t *t, const char *name);
/* Its definition, lent like the table. */
const catalog_table *stm_txn_table_def(const txn_table *table);
/* How many columns its primary key has (stm_catalog_table_key gives them). */
size_t stm_txn_table_keys(const txn_table *table);
/* Whether its rows have incarnations (identity.h). */
bool stm_txn_table_identity(const txn_table *table);

/* Whether the first transaction took a new origin for the database, because it is a
 * copy (origin.h); ORIGIN_KEPT once told. A rolled-back first transaction leaves it
 * unchecked, to look again. */
origin_change stm_txn_origin_change(txn_t *t);

/* Rows kept aside because they lost a unique value come back when it is free
 * (apply_unique.c). Only a table with a UNIQUE index other than its key can hold such
 * rows, and only a write or delete in it can free a value, so the applier settles
 * those tables alone, not every row aside after every batch:
 *
 *   touch       a row of table was written or deleted (nothing for a table without
 *               such an index)
 *   touch_all   every such table (the application's own writes, not seen one by one)
 *   next        the next touched table, its mark cleared; NULL when none is left */
void stm_txn_table_touch(txn_table *table);
void stm_txn_touch_all(txn_t *t);
txn_table *stm_txn_next_touched(txn_t *t);

/* Told of a row of a synced table (its local name, lent, and its key as the write
 * spelt it) whose clocks the transaction writes or removes: every row written or
 * deleted here, applied, collected as a local change or moved aside, is one of
 * them. What waits for a row (park.h) is woken so. */
typedef void (*txn_wrote_fn)(void *ctx, const char *table, const op_value *pk);
/* Sets who is told (fn NULL: nobody). */
void stm_txn_on_write(txn_t *t, txn_wrote_fn fn, void *ctx);
/* Tells it of row pk of table, written without its clocks changing (a row from before
 * stemma moved aside). stm_txn_clock_write and stm_txn_clock_forget tell it themselves. */
void stm_txn_wrote(txn_t *t, const txn_table *table, const op_value *pk);

/* Told of what transactions record, so that a node keeps the order operations arrived
 * in without asking the database (feed.h):
 *
 *   recorded  operations seq .. seq + n - 1 of origin (its stemma_ids number, taken
 *             if it had none, and id) are held in the open transaction: a row change
 *             or a stand-in's row stored, or pruned operations that continue what is
 *             held, which need no row (oplog.h, "Gaps")
 *   vector    at commit, before COMMIT: origin's entry in the vector is now seq (the
 *             local sequence for the database's own origin)
 *   ended     the transaction ended: committed, or rolled back (what it told is void)
 *
 * Only transactions begun and committed here end so: one joined by stm_txn_collect
 * ends in its caller's hands and is told as rolled back at the next begin (its rows are
 * found again by comparing vectors, feed.h). */
typedef struct {
    void (*recorded)(void *ctx, int64_t origin, const stm_id *id, uint64_t seq, uint64_t n);
    void (*vector)(void *ctx, const stm_id *origin, uint64_t seq);
    void (*ended)(void *ctx, bool committed);
    void *ctx;
} txn_listener;
/* Sets who is told (copied; NULL: nobody). */
void stm_txn_set_listener(txn_t *t, const txn_listener *l);

/* The next start (stm_txn_begin) collects at most max_rows queued rows, a slice
 * (capture.h, stm_capture_collect_some); later starts collect all again.
 * stm_txn_collect_more says whether it left some: the transaction must then apply
 * nothing (a peer's operation would land on a row whose own changes are not recorded
 * yet) and its commit leaves the marks where the slice moved them. For the applier's
 * stm_applier_collect_slice only. */
void stm_txn_limit_collect(txn_t *t, size_t max_rows);
bool stm_txn_collect_more(const txn_t *t);

/* The transaction's handle on stemma_conflicts, lent. */
conflicts_t *stm_txn_conflicts(txn_t *t);
/* True when the transaction's start recorded local changes (the application wrote). */
bool stm_txn_collected(const txn_t *t);
/* The rows of identity tables deleted or made anew locally since the transaction
 * started, as row deletes (table, key), lent: the applier looks whether a conflict kept
 * aside becomes the row (identity.h, rule 2), then empties it. */
opbatch_t *stm_txn_settle(txn_t *t);

/* Keeps the operations of one row change ops[0..n) (one origin) that are not held
 * yet, moving them to the front (*fresh of them), and records them in the oplog; the
 * others are added to *present (invariant 1). */
STM_NODISCARD stm_err stm_txn_take_new(txn_t *t, const op_t **ops, size_t n, size_t *fresh,
                                       uint64_t *present, stm_error *err);

/* Records the operations of stand-in w (op.h) that are not held yet, as withheld (or
 * pruned): held, so the vector moves past them, but nothing of them applied; pruned ones
 * that continue what is held are not stored at all (oplog.h). *fresh counts those
 * recorded, *present is added those held already (invariant 1). */
STM_NODISCARD stm_err stm_txn_take_withheld(txn_t *t, const op_withheld *w, uint64_t *fresh,
                                            uint64_t *present, stm_error *err);

/* Records op, an operation stemma made itself as this database's own (stamped by
 * stm_capture_next_op in this transaction), as the next of its origin. */
STM_NODISCARD stm_err stm_txn_record_own(txn_t *t, const op_t *op, stm_error *err);

/* Records batch, operations this database made itself (numbered by stm_capture_reserve
 * in this transaction, consecutive, row changes whole), as local changes are: in the
 * oplog, and into stemma_clock as the latest writes of their cells, whatever their
 * clocks (the caller gives each a clock above its row's: migrate_ops.h). */
STM_NODISCARD stm_err stm_txn_record_made(txn_t *t, opbatch_t *batch, stm_error *err);

/* Reads the clocks of row pk of table into stm_txn_clock; *found false when it has none
 * (then stm_txn_clock is empty). A row above the table's greatest integer key is known to
 * have none without a query. */
STM_NODISCARD stm_err stm_txn_clock_read(txn_t *t, txn_table *table, const op_value *pk,
                                         bool *found, stm_error *err);
/* Removes row pk of table's clocks from stemma_clock (they are kept aside instead). */
STM_NODISCARD stm_err stm_txn_clock_forget(txn_t *t, txn_table *table, const op_value *pk,
                                           stm_error *err);
/* The clocks of the row read last, lent: the applier changes them, then writes them
 * back with stm_txn_clock_write. */
rowclock_t *stm_txn_clock(txn_t *t);
/* Writes stm_txn_clock as the clocks of row pk of table; is_new: it had none. */
STM_NODISCARD stm_err stm_txn_clock_write(txn_t *t, txn_table *table, const op_value *pk,
                                          bool is_new, stm_error *err);

#endif
