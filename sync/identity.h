/* identity.h - rows whose keys are chosen per device: incarnations and conflicts.
 *
 * In a table whose key is a rowid alias (INTEGER PRIMARY KEY, with or without
 * AUTOINCREMENT), each device picks new keys itself, so two devices that insert while
 * apart pick the same key for different rows: alice's and bob's both become row 1.
 * Merging them cell by cell would keep one and overwrite the other. So in such a table
 * a row has an identity besides its key, its *incarnation*: the (hlc, origin) of the
 * row change that created it (op_t.born_*). Every operation of such a table names the
 * incarnation it writes or deletes. A row there before stemma (made by a migration,
 * say, alike on every device) is the *genesis* incarnation, hlc 0.
 *
 * The rules, which depend only on which operations a replica holds, never on the
 * order they came in:
 *
 *  1. Each incarnation of a key has its own cells and delete, last writer wins within
 *     it (apply.h, invariants 1-3). It is alive when its latest write is later than
 *     its latest delete.
 *  2. The table's row for the key is the earliest-born alive incarnation (by (hlc,
 *     origin), genesis first): the row that existed first keeps the key. Every other
 *     alive incarnation is a *conflict*: kept whole, aside, in stemma_conflicts, with
 *     its cells' clocks (its values are the oplog's, fetched by them). When the row's
 *     incarnation dies (is deleted), the earliest alive conflict becomes the row.
 *  3. Dead incarnations keep their clocks there too (alive 0, not listed), so that a
 *     write later than their delete brings them back wherever it arrives.
 *  4. A conflict goes when its incarnation is deleted: `stemma conflicts discard`, or
 *     `stemma conflicts keep`, which inserts its values under a new key first. Both
 *     are ordinary operations and sync like any other.
 *
 * stemma_clock holds the incarnation of the key's row (ROWCLOCK_BORN; none: genesis).
 * Tables with other keys (text, several columns, WITHOUT ROWID) merge by key: a
 * natural key names one thing, so two writes to it are writes to the same row. */
#ifndef STM_IDENTITY_H
#define STM_IDENTITY_H

#include "op.h"
#include "base/buf.h"
#include "rowclock.h"
#include "store.h"
#include "lineage/catalog.h"

#include <stdbool.h>
#include <stdint.h>

/* True when t's rows have incarnations: its key is a rowid alias. */
bool stm_identity_table(const catalog_table *t);

/* An incarnation: the clock and origin of the row change that created it. hlc 0 is
 * the genesis incarnation (origin unused). */
typedef struct {
    uint64_t hlc;
    stm_id origin;
} identity_stamp;

/* The incarnation op names. */
identity_stamp stm_identity_of_op(const op_t *op);
bool stm_identity_equal(const identity_stamp *a, const identity_stamp *b);
/* Orders incarnations by birth: genesis first, then (hlc, origin bytes). */
int stm_identity_compare(const identity_stamp *a, const identity_stamp *b);

/* The incarnation a row's clocks name (ROWCLOCK_BORN), genesis when none. */
STM_NODISCARD stm_err stm_identity_of_clock(store_t *store, rowclock_t *clock, identity_stamp *out,
                                            stm_error *err);
/* Sets clock's ROWCLOCK_BORN to s (removes none: genesis sets nothing). seq is the
 * creating row change's first sequence. */
STM_NODISCARD stm_err stm_identity_set_clock(store_t *store, rowclock_t *clock,
                                             const identity_stamp *s, uint64_t seq, stm_error *err);
/* True when the clocks say the incarnation is alive: a write later than its delete
 * (or no delete and some write). */
STM_NODISCARD stm_err stm_identity_alive(store_t *store, rowclock_t *clock, bool *alive,
                                         stm_error *err);

/* ---- stemma_conflicts: incarnations that are not their key's row ---- */

typedef struct conflicts conflicts_t;

/* A handle on store's stemma_conflicts (store lent; it must outlive the handle), with
 * its statements prepared. The caller owns it (stm_conflicts_destroy). */
conflicts_t *stm_conflicts_new(store_t *store);
void stm_conflicts_destroy(conflicts_t **self_p);

/* Keys in stemma_conflicts are kept as their table compares them (a NOCASE key folded,
 * key.h), as stemma_clock's are, so that every spelling of a key finds its conflicts
 * and every replica keeps them under one. fold sets *out to pk as table tbl compares
 * it (scratch holds its bytes), or to pk itself; txn.c, which knows the tables, gives
 * it. Without one, keys are kept as given. */
typedef void (*conflicts_fold)(void *ctx, const char *tbl, const op_value *pk, buf_t *scratch,
                               op_value *out);
void stm_conflicts_set_fold(conflicts_t *c, conflicts_fold fold, void *ctx);

/* *any: stemma_conflicts holds anything at all. Asked once, then known until
 * stm_conflicts_forget (a new transaction, whose start may see other writers' rows):
 * most databases never hold a conflict, and a new row's insert need not look. */
STM_NODISCARD stm_err stm_conflicts_any(conflicts_t *c, bool *any, stm_error *err);
void stm_conflicts_forget(conflicts_t *c);

/* Reads the clocks kept for incarnation s of (tbl, pk) into out; *found false (out
 * empty) when none are kept. */
STM_NODISCARD stm_err stm_conflicts_load(conflicts_t *c, const char *tbl, const op_value *pk,
                                         const identity_stamp *s, rowclock_t *out, bool *found,
                                         stm_error *err);
/* Keeps clock as incarnation s of (tbl, pk), alive or not, replacing what was kept. */
STM_NODISCARD stm_err stm_conflicts_save(conflicts_t *c, const char *tbl, const op_value *pk,
                                         const identity_stamp *s, const rowclock_t *clock,
                                         bool alive, stm_error *err);
/* Forgets incarnation s of (tbl, pk). */
STM_NODISCARD stm_err stm_conflicts_remove(conflicts_t *c, const char *tbl, const op_value *pk,
                                           const identity_stamp *s, stm_error *err);
/* The earliest-born alive incarnation kept for (tbl, pk) and its clocks; *found false
 * when there is none. */
STM_NODISCARD stm_err stm_conflicts_first_alive(conflicts_t *c, const char *tbl, const op_value *pk,
                                                identity_stamp *s, rowclock_t *out, bool *found,
                                                stm_error *err);

/* Every conflict (an alive incarnation kept aside), one operation per cell of its row
 * as last written (the write's origin, seq, hlc, column and value), with the local
 * table name, the key and the incarnation (born_*), appended to out in (table, key,
 * incarnation) order. A cell whose write the oplog no longer holds is left out; a
 * conflict none of whose values are held here is one entry with no column (NULL). */
STM_NODISCARD stm_err stm_conflicts_rows(store_t *store, opbatch_t *out, stm_error *err);

/* The same, for the first one born after `after` (NULL: the first of all). */
STM_NODISCARD stm_err stm_conflicts_next_alive(conflicts_t *c, const char *tbl, const op_value *pk,
                                               const identity_stamp *after, identity_stamp *s,
                                               rowclock_t *out, bool *found, stm_error *err);

/* How many conflicts (alive incarnations kept aside) store holds. */
STM_NODISCARD stm_err stm_conflicts_count(store_t *store, uint64_t *count, stm_error *err);

#endif
