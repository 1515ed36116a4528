/* capture.h - recording every local change, as column-level operations.
 *
 * For each synced table stemma installs four AFTER triggers, in plain SQL so that any
 * writer (the application, the sqlite3 shell) is captured without linking anything.
 * A trigger does the least it can inside the application's transaction: it queues
 * which row changed and when, one stemma_pending row (table, key, deleted?, which
 * columns, the wall time in milliseconds: SQLite's 'now', one value per statement):
 *
 *   INSERT   the new key, every column (mask -1); in a table whose key has INTEGER
 *            affinity only when the key is at or below the table's mark (below)
 *   UPDATE   the key, the columns whose value changed (IS NOT); nothing when no value
 *            changed. mask bit i is captured column i (declaration order, generated
 *            columns left out); a table of more than CAPTURE_MASK_BITS captured
 *            columns gets a text of '0' and '1' instead.
 *   UPDATE of the key: the old key deleted, the new key inserted
 *   DELETE   the old key, deleted
 *
 * stm_capture_collect turns the queue into operations later, in stemma's own transaction
 * (every apply begins with it, and a node runs it when the application wrote): per
 * row, in the order its changes began, a row delete if it was deleted, then one write
 * per changed column with its current value, each row change one tick of the hybrid
 * logical clock, each operation one sequence number. Changes a row went through
 * between two collections fold into one, which is what the row's last state says;
 * its value at each step in between is not kept, and it takes the time of the last
 * change (the one whose value it carries).
 *
 * Inserts are most of what an application writes, and a trigger that queues nothing
 * costs the writer least. So a table with an integer key has a mark in stemma_mark:
 * the greatest key stemma has looked at. An insert above it is not queued; collecting
 * finds it by its key (every row above the mark), then raises the mark to the
 * greatest key. stemma raises the mark the same way at the end of every transaction
 * of its own (apply, replay, a migration's), whose writes are not the application's.
 * A key at or below the mark (an explicit key, a key reused after a delete) is queued.
 * The first insert above the mark since the mark last moved writes its time on the
 * mark row (stemma_mark.at). The trigger compares the key with the row's gate, one
 * lookup as before: the gate is the greatest integer until that first insert, which
 * sets it to the mark; collecting sets it back. Every insert above the mark collected
 * with it takes that time: each was made at or
 * after it, and before the collection. That under-states a fast-path insert's time by
 * at most the time between two collections, and only against writes that never saw
 * the row: a new key's cells compete only with writes to the same key, which another
 * device makes after receiving the insert (its clock is then ahead of it, whatever
 * the time) or by creating the same key itself; and a later local change of the row
 * is queued with its own time, which the folded row change takes. A row above the
 * mark with no time recorded (a key of another type than integer, above the gate)
 * takes the time of the collection, as every change did before format 3.
 *
 * The clock of a row change is max(previous + 1, ms << 16), ms the time of its last
 * change (at most the time of the collection): 48 bits of milliseconds and a 16-bit
 * counter. So it is monotonic per origin, even when the wall clock steps back, and
 * ahead of every clock this database has seen (txn.h, invariant 3): a write made
 * before stemma collected is ordered by when it was made, not when it was collected,
 * unless this database had already seen a later clock.
 *
 * Triggers do nothing while stemma_local.applying is 1, so operations stemma applies
 * are not recorded twice.
 *
 * Which tables are synced is lineage/syncable.h's rule (stm_syncable_classify), with
 * stemma_exclude as the user's exclusions: not stemma's own tables, not excluded ones,
 * not virtual tables, and only tables with a primary key of 1 .. KEY_MAX_COLUMNS
 * columns. Generated columns are not captured; they are computed wherever the row
 * lands. */
#ifndef STM_CAPTURE_H
#define STM_CAPTURE_H

#include "lineage/catalog.h"
#include "key.h"
#include "op.h"
#include "store.h"

/* Columns an integer mask covers; wider tables queue a text mask. */
#define CAPTURE_MASK_BITS 63

/* Removes every capture trigger. Runs in the caller's transaction. */
STM_NODISCARD stm_err stm_capture_uninstall(store_t *store, stm_error *err);

/* Removes the capture triggers on the n tables named (any case; tables lent), and no
 * others. A migration step runs without the triggers of the tables it changes: ALTER
 * TABLE cannot drop a column a trigger names, and a trigger left on a table renamed
 * follows it. The other tables keep theirs through the step, idle while
 * stemma_local.applying is 1 (a migration's own data changes happen on every device
 * alike, so they are not operations to send). Runs in the caller's transaction. */
STM_NODISCARD stm_err stm_capture_uninstall_tables(store_t *store, const char *const *tables,
                                                   size_t n, stm_error *err);

/* Makes the triggers those of every synced table of the database's current schema
 * and no others: a trigger already there with the very text it would be given is
 * kept, every other capture trigger dropped, the missing ones created (so a step that
 * changed a few tables costs a few). Raises the marks to the rows there now. Runs in
 * the caller's transaction, which must have collected the queue first
 * (stm_applier_collect): rows above a mark that were not collected would be taken for
 * stemma's own. */
STM_NODISCARD stm_err stm_capture_install(store_t *store, stm_error *err);
/* The same, the schema read through stm_catalog_read_since from prev (lent; NULL:
 * none), an earlier reading of this database's schema; the catalog read is handed to
 * *now (the caller's; now NULL: not wanted), for the next call's prev. */
STM_NODISCARD stm_err stm_capture_install_since(store_t *store, const catalog_t *prev,
                                                catalog_t **now, stm_error *err);
/* All stm_capture_install_since does but the triggers, which it neither reads nor
 * touches: the marks of the synced tables made and raised to the rows there now. For a run of
 * migrations, which drops every trigger first and installs them once at its end. */
STM_NODISCARD stm_err stm_capture_mark_since(store_t *store, const catalog_t *prev, catalog_t **now,
                                             stm_error *err);

/* The one-letter affinity code operations carry: T, N, I, R or B. */
char stm_capture_affinity_code(catalog_affinity a);

/* Turns every queued row change into operations appended to out (stamped with this
 * database's node id and schema version, with the next sequence numbers and clocks),
 * and empties the queue. catalog is the database's current schema (lent). Runs in
 * the caller's write transaction: the operations must be recorded in it too. */
STM_NODISCARD stm_err stm_capture_collect(store_t *store, const catalog_t *catalog, opbatch_t *out,
                                          stm_error *err);
/* The same for at most max_rows queued rows (a slice; the rows above the marks first,
 * in key order, then the queue in order): *more says some were left for the next call,
 * which the caller makes in a transaction of its own, so that a bulk write is collected
 * without holding the write lock or its operations in memory all at once. A row cut
 * between two slices may be written twice (the second time its later values, again):
 * nothing changes where it lands. */
STM_NODISCARD stm_err stm_capture_collect_some(store_t *store, const catalog_t *catalog,
                                               opbatch_t *out, size_t max_rows, bool *more,
                                               stm_error *err);

/* Stamps op as this database's next local operation, one made by stemma itself
 * rather than captured (a conflict discarded, say): its origin and schema version are
 * this database's, its seq the next, its clock the next tick (as collecting ticks).
 * Moves stemma_local on; runs in the caller's write transaction, after collecting. */
STM_NODISCARD stm_err stm_capture_next_op(store_t *store, op_t *op, stm_error *err);

/* Takes the next n sequence numbers of this database's own origin for operations
 * stemma makes itself with clocks of their own (a migration's writes, migrate_ops.h):
 * proto's origin, version id (this database's, as the triggers stamp it) and first
 * sequence are set; the caller numbers the rest seq + 1 .. seq + n - 1 and records
 * them (stm_txn_record_made) in this transaction. The local clock does not move. */
STM_NODISCARD stm_err stm_capture_reserve(store_t *store, uint64_t n, op_t *proto, stm_error *err);

/* Raises every marked table's mark to its greatest key. stemma calls it at the end of
 * each of its own write transactions (after collecting, which began it), so that the
 * rows it wrote are not collected as the application's. catalog is the current schema. */
STM_NODISCARD stm_err stm_capture_mark(store_t *store, const catalog_t *catalog, stm_error *err);

/* True when table (any case) has its capture triggers: stm_capture_install put them there
 * and nothing removed them since. False too when the schema cannot be read. */
bool stm_capture_has_triggers(store_t *store, const char *table);

/* Adds or removes tbl from the exclude list (stemma_exclude). Takes effect at the
 * next stm_capture_install. */
STM_NODISCARD stm_err stm_capture_exclude(store_t *store, const char *tbl, bool exclude,
                                          stm_error *err);

#endif
