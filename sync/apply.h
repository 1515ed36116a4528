/* apply.h - applying operations to a database, last writer wins, nothing lost.
 *
 * The applier is the sync layer's entry for received operations. It runs each batch
 * in the transaction of txn.h, which records every operation exactly once, keeps the
 * vector and the local clock and enters local writes into stemma_clock (txn.h,
 * invariants 1-8), parks what it cannot apply through park.h (whose invariants say
 * what parking keeps), and writes rows through prepared statements kept in
 * stmtcache.h. What it keeps itself, whatever the order operations arrive in:
 *
 *  1. A cell holds the value of the write with the greatest (hlc, origin) among the
 *     applied writes to it. Compared on (hlc, origin) as (integer, bytes).
 *  2. A row exists when its latest write is later than its latest applied delete
 *     (or it was never deleted). A delete earlier than some write leaves the row; a
 *     write earlier than a delete leaves it deleted (its value is still recorded, and
 *     counts if a later write brings the row back). A write parked only because this
 *     schema lacks its column still counts as a write here, so replicas at different
 *     versions agree on which rows exist.
 *  3. stemma_clock holds, per cell, the (hlc, origin) of its latest applied write,
 *     and per row its latest delete and latest write parked for a missing column;
 *     a row's latest write is the latest of those. The clocks move only for what was
 *     written.
 *  4. An operation that cannot be applied here is parked (park.h), never dropped: a
 *     table or column this database does not have or does not sync, a column whose
 *     affinity differs from the writer's, a NULL key, or a row write a constraint
 *     refuses (with SQLite's message).
 *  5. Parked operations are retried by the same rules: all of them by stm_applier_replay
 *     (after a migration), and those a constraint refused once a row they wait for is
 *     written (park.h, invariants 4 and 5; apply_wait.c says what each waits for):
 *     after each batch, for the rows it wrote and those the application wrote since
 *     (collected as the transaction began), and before every commit, for what is
 *     left (a catch-up's). A batch reads nothing else that is parked, so it costs the
 *     same with a million parked as with none.
 *  6. A batch is one transaction (or part of the one stm_applier_begin opened): on any
 *     failure nothing of it is kept (txn.h, invariant 2).
 *  7. An operation whose clock is more than the bound (stm_applier_set_max_clock_ahead)
 *     ahead of this machine's wall clock is parked ('ahead'), not applied: it is
 *     recorded and travels on, but neither its cells nor the local clock move (txn.h,
 *     invariant 3), so one device with its clock set days ahead cannot win every
 *     cell it writes, nor drag every clock it reaches with it. Every apply retries
 *     them once the earliest may be within the bound (and replay retries them all):
 *     they apply when this machine's clock catches up, or the bound is raised.
 *  8. An operation written at another version of the schema set the applier was given
 *     (stm_applier_set_lenses) applies to the column that holds, at this database's
 *     version, what its column held at the writer's: renames, rebuilds under another
 *     name and renamed tables are followed both ways (lineage/lens.h). It is recorded
 *     and travels on as written. One with no such column here parks as any other.
 *     Its clock is compared with the clocks of the column here: a migration that
 *     renames a column carries the column's clocks to its new name (migrate.h), so a
 *     late write from an older version never beats a later one made before the rename.
 *     One of an older version to a table a migration since dropped (none here holds
 *     its values, even one of its name made anew: lens.h LENS_REPLACED), or to a column
 *     dropped since with none of its name here, applies to nothing and is counted
 *     applied, not parked; one to such a column still counts as a write of its row
 *     (invariant 2), as it did on the databases that had the column when it came. A
 *     row change of a newer version to a table that is another than the one of its
 *     name here parks whole, as does one whose key column has another type here:
 *     no cell of it lands in a row it does not name. A row whose table a rebuild keyed
 *     anew by some of its key's columns is named by those parts of its key here. One
 *     written on another branch (a divergent device) is translated back to the version
 *     its branch shares with the set and on from there (stm_applier_set_branches).
 *  9. A stand-in (op.h: a row change withheld by its sender, too large to travel)
 *     records its operations as held and withheld, applying nothing, so that the
 *     vector moves past them; each is logged ("withheld") when first recorded. A
 *     stand-in for operations held already changes nothing; operations arriving for
 *     sequences held as withheld are present, and change nothing either. A pruned
 *     stand-in (compact.h) is held the same way, quietly: its sender sends the later
 *     writes of those operations' cells, so nothing of them is lacking. The stand-ins of
 *     a batch are recorded before its operations, so that pruned ones continuing what is
 *     held move the vector at once.
 * 10. With a filter (stm_applier_set_filter: the node's policy, node/admit.h), every
 *     new or retried operation is offered to it, by the version its writer was at and
 *     the table and column it names there, before anything else is decided of it
 *     (before its clock, before any translation): one it refuses is parked ('policy')
 *     with the filter's reason, and is no write here (its row's clocks do not move).
 *     Only an applier with a filter retries those (stm_applier_replay,
 *     stm_applier_retry_policy); one without (a migration's replay, `stemma apply`
 *     with no policy) leaves them parked, so that no program that lacks the policy
 *     applies what it refused. Every other parked operation was admitted when it was
 *     parked.
 * 11. An operation a migration wrote (op.h, derived: a backfill, a computed column, a
 *     row it made or deleted; migrate_ops.h) applies only to a database that has run
 *     that migration (its schema_version lists the version): elsewhere it is parked,
 *     and replays after the database migrates there, where the migration has done the
 *     same to the rows it held and the last writer wins between the two. Applied
 *     before, it would be done twice (a conversion converted again) or make the
 *     migration fail (a row it inserts there already).
 *
 * Names that arrive in operations are only looked up in the local catalog; the SQL
 * stemma runs quotes the local catalog's names, never the received text. */
#ifndef STM_APPLY_H
#define STM_APPLY_H

#include "identity.h"
#include "lineage/lens.h"
#include "lineage/lineage.h"
#include "op.h"
#include "origin.h"
#include "store.h"
#include "txn.h"

typedef struct {
    uint64_t applied;  /* new operations recorded and applied (whether they won or not) */
    uint64_t present;  /* operations already held: nothing done */
    uint64_t parked;   /* new operations held back */
    uint64_t replayed; /* parked operations that applied on a retry */
    uint64_t withheld; /* new operations held as withheld: a stand-in came for them (op.h),
                          nothing of them applied; each row change logged once */
    uint64_t pruned;   /* new operations held as pruned by their sender (op.h): nothing to
                          apply, their cells' later writes come as operations */
} apply_stats;

/* Told once per (origin, table.column) what was parked and why. */
typedef void (*apply_warn_fn)(void *ctx, const char *message);

typedef struct applier applier_t;

/* Whether the operation written at version, naming table and column (NULL: a row
 * delete) as its writer's schema did, may apply here (invariant 10): true, or false
 * with why in reason[0 .. cap), NUL-terminated, which the applier parks it for. */
typedef bool (*apply_filter_fn)(void *ctx, const stm_id *version, const char *table,
                                const char *column, char *reason, size_t cap);

/* The default bound of invariant 7: ten minutes. Clocks kept by NTP agree to
 * milliseconds, and a machine without it drifts by seconds a day; a clock minutes
 * ahead is let through (its writes win for those minutes at most), one set to the
 * wrong hour or day is not. */
#define APPLY_MAX_CLOCK_AHEAD_MS (10 * 60 * 1000)
/* The greatest bound a user may set (a year): beyond it the check means nothing. */
#define APPLY_MAX_CLOCK_AHEAD_LIMIT_MS (366LL * 24 * 3600 * 1000)

/* An applier for store (lent; it must outlive the applier). warn may be NULL. The
 * caller owns the result (stm_applier_destroy). */
applier_t *stm_applier_new(store_t *store, apply_warn_fn warn, void *ctx);
void stm_applier_destroy(applier_t **self_p);

/* Applies batch in one transaction and adds to stats. On failure (the database was
 * busy past its timeout, full, read-only) the transaction is rolled back: nothing of
 * the batch is kept, and the error says why. Between stm_applier_begin and
 * stm_applier_commit, batches join one transaction instead, and a failure rolls back
 * everything since stm_applier_begin. */
STM_NODISCARD stm_err stm_applier_apply(applier_t *a, const opbatch_t *batch, apply_stats *stats,
                                        stm_error *err);

/* Opens a transaction that the following batches join until stm_applier_commit: one
 * commit for many batches (a whole bundle, or what a node receives between two
 * sleeps) writes each changed page once, not once per batch. */
STM_NODISCARD stm_err stm_applier_begin(applier_t *a, stm_error *err);
STM_NODISCARD stm_err stm_applier_commit(applier_t *a, stm_error *err);
/* Undoes everything since stm_applier_begin. */
void stm_applier_rollback(applier_t *a);

/* Who is told what the applier's transactions record and how they end (txn.h,
 * txn_listener; copied, NULL: nobody): a node's feed (feed.h). */
void stm_applier_set_listener(applier_t *a, const txn_listener *l);

/* Sets invariant 7's bound, in ms (default APPLY_MAX_CLOCK_AHEAD_MS); parked
 * operations are retried at the next apply. */
void stm_applier_set_max_clock_ahead(applier_t *a, int64_t ms);

/* Operations written at another version of the schema set whose lineage is set are
 * translated through lenses (both lent; they must outlive the applier, or be replaced)
 * into this database's names before they apply (invariant 8). NULL: none is. */
void stm_applier_set_lenses(applier_t *a, const lens_set_t *lenses, const lineage_t *set);

/* The branch a version of another branch of the schema set is on, as a peer there
 * described it (lineage/lens.h lens_branch, lent until the next call), and *upto, the
 * version's place on it (version base + *upto); NULL when nothing describes it. */
typedef const lens_branch *(*apply_branch_fn)(void *ctx, const stm_id *version, size_t *upto);

/* Operations written at a version of another branch (not one of the lineage set by
 * stm_applier_set_lenses) are translated through fn's branch: back to the version it
 * shares with the set, then on to this database's (invariant 8). ctx is lent: it must
 * outlive the applier, or be replaced. NULL: none is. */
void stm_applier_set_branches(applier_t *a, apply_branch_fn fn, void *ctx);

/* Offers every operation to fn (with ctx, lent: it must outlive the applier, or be
 * replaced) before it applies (invariant 10). NULL: none is refused. */
void stm_applier_set_filter(applier_t *a, apply_filter_fn fn, void *ctx);
/* Retries the operations the filter refused (invariant 10), in one transaction: after
 * the filter changed its mind (a new policy, a version it learned, a migration here).
 * Those that now apply are counted in stats->replayed. Nothing without a filter. */
STM_NODISCARD stm_err stm_applier_retry_policy(applier_t *a, apply_stats *stats, stm_error *err);

/* When the operations parked for their clock (invariant 7) may next apply, in wall-clock
 * ms (base/clock.h): INT64_MAX when none is parked, INT64_MIN when that is not known
 * yet (the next apply or stm_applier_retry_ahead finds out). A node that receives
 * nothing still applies them in time by asking this. */
int64_t stm_applier_ahead_due(const applier_t *a);
/* Retries them, in a transaction of its own, when their time has come (nothing
 * otherwise); those that apply are counted in stats->replayed. */
STM_NODISCARD stm_err stm_applier_retry_ahead(applier_t *a, apply_stats *stats, stm_error *err);

/* Retries every parked operation, in one transaction (without a filter, every one but
 * those a filter refused: invariant 10); those that now apply are counted in
 * stats->replayed, the rest stay parked. */
STM_NODISCARD stm_err stm_applier_replay(applier_t *a, apply_stats *stats, stm_error *err);
/* stm_applier_replay when a migration's replay was cut short (killed, disk full: the
 * store says it is owed, store.h), else nothing; *ran says which. What finishes the
 * replay also clears the mark, in its transaction. */
STM_NODISCARD stm_err stm_applier_replay_owed(applier_t *a, apply_stats *stats, bool *ran,
                                              stm_error *err);

/* Queued rows a slice of collecting takes at most (stm_applier_collect_slice): about
 * 10 ms of work on the machine of docs/performance.md. Between two slices the lock is
 * let go as long as the slice held it: an application's write, whose busy handler polls
 * for the lock at growing intervals, would otherwise rarely find it free between
 * transactions that follow each other at once (measured: 1.4 s waits; with the pause,
 * 35 ms, bench_bulk), and a node's loop serves its sockets meanwhile. */
#define APPLY_COLLECT_SLICE_ROWS 2000

/* Makes the application's changes queued here operations (capture.h), at most max_rows
 * queued rows of them, in a transaction of its own; *more says some were left. A bulk
 * write (a million rows updated) is so collected a slice at a time, the write lock let
 * go and memory freed between slices. Nothing else is applied in that transaction. */
STM_NODISCARD stm_err stm_applier_collect_slice(applier_t *a, size_t max_rows, bool *more,
                                                stm_error *err);

/* Makes every change queued here operations, slice after slice (each a transaction of
 * its own, the lock let go between them as long as each held it). Every apply and
 * replay collects what is queued first, in its own transaction; calling this before
 * spares it a bulk write's, and a node calls the slices itself between its other work. */
STM_NODISCARD stm_err stm_applier_catch_up(applier_t *a, stm_error *err);

/* The same inside the caller's open write transaction (a migration's, before it
 * changes the schema). On failure the caller rolls back. */
STM_NODISCARD stm_err stm_applier_collect(applier_t *a, stm_error *err);

/* Discards the conflict kept aside for incarnation inc of row pk of table (identity.h,
 * rule 4): a delete of that incarnation, made here as this database's own operation,
 * so that it syncs. STM_EINPUT, saying so, when no such conflict is kept. */
STM_NODISCARD stm_err stm_applier_discard(applier_t *a, const char *table, const op_value *pk,
                                          const identity_stamp *inc, stm_error *err);
/* Keeps the conflict instead: inserts its values as a new row of table, as the
 * application would (captured like any insert), then discards it. The new row's key is
 * new_key[0 .. nnew_key), one text value per key column in key order (the columns'
 * affinities convert them), or, with none, the key SQLite picks, which only a rowid
 * alias has (STM_EUSAGE, saying so, for other keys). *rowid is the new row's rowid.
 * Two transactions: when the second fails, the row is in and the conflict is still
 * listed; discarding it finishes the job. */
STM_NODISCARD stm_err stm_applier_keep(applier_t *a, const char *table, const op_value *pk,
                                       const identity_stamp *inc, const char *const *new_key,
                                       size_t nnew_key, int64_t *rowid, stm_error *err);

/* Whether a transaction of this applier took a new origin for the database, because it
 * is a copy or was restored (origin.h), so that the caller can say so; ORIGIN_KEPT
 * once told. */
origin_change stm_applier_origin_change(applier_t *a);


#endif
