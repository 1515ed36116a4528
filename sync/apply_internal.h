/* apply_internal.h - private to the applier: only apply*.c include it. apply.c is last
 * writer wins on rows; apply_batch.c the batches, the transactions they run in and the
 * retries; apply_identity.c the incarnations of rows whose keys each device picks
 * (identity.h) and resolving the conflicts they keep; apply_unique.c rows that claim one
 * unique value; apply_wait.c what a refused write waits for; apply_filter.c the policy's
 * say on each operation (invariant 10). What they share: the applier itself and these
 * steps. */
#ifndef STM_APPLY_INTERNAL_H
#define STM_APPLY_INTERNAL_H

#include "apply.h"
#include "oplog.h"
#include "park.h"
#include "rowclock.h"
#include "rowsql.h"
#include "txn.h"

/* What the schema says refused writes wait for (apply_wait.c), per table. */
typedef struct apply_waits apply_waits;

struct applier {
    store_t *store;       /* lent */
    sqlite3 *db;          /* store's connection, lent */
    oplog_t *log;         /* owned; lent to txn and park */
    txn_t *txn;           /* owned: the transaction batches run in */
    park_t *park;         /* owned */
    apply_waits *waits;   /* owned: foreign keys and triggers, read when first refused */
    rowsql_t *rowsql;     /* owned: the statements writing rows */
    row_cell *cells;      /* scratch for a row change's cells, kept between rows */
    const op_t **applied; /* ... and its operations that apply */
    size_t scratch_cap;
    bool retrying;        /* applying parked operations, recorded already */
    bool any_applied;     /* something applied in this batch */
    bool open;            /* stm_applier_begin opened a transaction batches join */
    int64_t max_ahead_ms; /* how far ahead of the wall clock an applied clock may be */
    int64_t ahead_due;    /* wall ms from which an operation parked for its clock may
                           * apply: the earliest known, INT64_MIN when unknown */
    rowclock_t aside;     /* scratch: the clocks of an incarnation kept aside */
    apply_filter_fn filter; /* the policy's say on each operation (invariant 10); NULL:
                             * none */
    void *filter_ctx;       /* lent */
    /* Translating operations of other versions (apply_lens.c): */
    const lens_set_t *lenses; /* lent; NULL: none is translated */
    const lineage_t *set;     /* the schema set's lineage, lent */
    int here;                 /* this database's version in it; 0: none */
    stm_id cached_id;         /* the last version id looked up ... */
    int cached_number;        /* ... and its number (0: not in the set) */
    op_t *xops;               /* scratch: a row change translated */
    bool *xgone;              /* ... which of them write a column dropped since */
    const op_t **xptrs;
    size_t xcap;
    apply_branch_fn branch;   /* the branches of divergent writers, or NULL */
    void *branch_ctx;         /* lent */
    char xwhy[192];           /* scratch: why a translated row change parks whole */
    buf_t xkey;               /* scratch: a translated row change's key (s_rekey) */
    const stm_id *writer;     /* the version of the row change being applied, lent;
                               * NULL between them */
    row_cell *fill;           /* scratch: a row's cells and those filled for it */
    size_t fill_cap;
    /* Whether this database has run the migration to a version (apply_lens.c): the
     * last one asked, until the next transaction. */
    stm_id ran_id;
    int ran;              /* -1: not asked; 0: not run; 1: run */
};

/* ---- apply.c ---- */

/* Parks op (recorded already) and counts it. */
STM_NODISCARD stm_err stm_apply_park(applier_t *a, const op_t *op, park_kind kind,
                                     const char *reason, apply_stats *st, stm_error *err);
/* The local column op writes, or NULL when this schema has none to take it. */
const catalog_column *stm_apply_column(const txn_table *t, const op_t *op);
/* Parks op, a write stm_apply_column found no column for, saying why. */
STM_NODISCARD stm_err stm_apply_park_column(applier_t *a, const txn_table *t, const op_t *op,
                                            apply_stats *st, stm_error *err);
/* *later: the write (hlc, origin) is later than entry e (NULL: there is none). */
STM_NODISCARD stm_err stm_apply_later(applier_t *a, uint64_t hlc, const stm_id *origin,
                                      const rowclock_entry *e, bool *later, stm_error *err);
/* The latest write of any cell of the row whose clocks the transaction holds, lent. */
const rowclock_entry *stm_apply_latest_write(applier_t *a, stm_error *err, stm_err *rc);
/* The latest applied write of column col of the row whose clocks the transaction
 * holds, appended to held (*found false when it has none held). */
STM_NODISCARD stm_err stm_apply_held_value(applier_t *a, const catalog_column *col, opbatch_t *held,
                                           bool *found, stm_error *err);
/* Inserts the row pk of t with cells and, when deleted, the latest earlier value of
 * every other column the transaction's clock names; SQLite's result. */
int stm_apply_insert_row(applier_t *a, const txn_table *t, const op_value *pk,
                         const row_cell *cells, size_t ncells, bool deleted, char **refused,
                         stm_error *err, stm_err *rc);
/* Applies one row delete, recorded already. */
STM_NODISCARD stm_err stm_apply_delete(applier_t *a, const op_t *op, apply_stats *st,
                                       stm_error *err);
/* Parks ops[0..n) (recorded already) for the schema, for reason, and counts them. */
STM_NODISCARD stm_err stm_apply_park_all(applier_t *a, const op_t *const *ops, size_t n,
                                         const char *reason, apply_stats *st, stm_error *err);
/* Applies one row change: n new operations of one origin and clock on one row, all
 * cell writes, recorded already. */
STM_NODISCARD stm_err stm_apply_writes(applier_t *a, const op_t *const *ops, size_t n,
                                       apply_stats *st, stm_error *err);

/* ---- apply_batch.c ---- */

/* Opens the applier's transaction (and shows what local deletes made due); ends it,
 * committing when rc is STM_OK. */
STM_NODISCARD stm_err stm_apply_begin(applier_t *a, stm_error *err);
STM_NODISCARD stm_err stm_apply_end(applier_t *a, stm_err rc, stm_error *err);

/* ---- apply_pieces.c ---- */

/* After the insert of a row not there (one with no clocks here, or deleted: then its
 * earlier values fill in, as stm_apply_insert_row does) by row change ops[0 .. n) was
 * refused (*refused, *step): joins the writes parked for a constraint waiting for the
 * same row (its pieces) to cells[0 .. *ncells), each cell by last writer, and makes the
 * row of them all. *joined when it did: the pieces are no longer parked (counted
 * replayed), their cells' clocks are in the transaction's clock, cells lost to a later
 * piece are taken out of cells, and *refused is NULL; else nothing changed. */
STM_NODISCARD stm_err stm_apply_join_pieces(applier_t *a, txn_table *t, const op_t *const *ops,
                                            size_t n, row_cell *cells, size_t *ncells,
                                            int64_t origin_no, bool deleted, char **refused,
                                            int *step, bool *joined, apply_stats *st,
                                            stm_error *err);

/* ---- apply_filter.c ---- */

/* Parks those of ops[0..n) (one row change, recorded already) the filter refuses
 * (invariant 10), keeping the others, in order, at the front: *n is how many. */
STM_NODISCARD stm_err stm_apply_filter(applier_t *a, const op_t **ops, size_t *n, apply_stats *st,
                                       stm_error *err);

/* ---- apply_lens.c ---- */

/* At a transaction's start: this database's version in the schema set. */
/* Whether the database has run the migration to version_id (its schema_version lists
 * it): a derived operation (op.h) of a version it has not run is parked (apply.h,
 * invariant 10). STM_EDB when SQLite fails. */
STM_NODISCARD stm_err stm_apply_ran(applier_t *a, const stm_id *version_id, bool *ran,
                                    stm_error *err);
void stm_apply_lens_begin(applier_t *a);
/* The migration (its number) that made column table.column of this database's version,
 * after version_id (an operation's writer's: its number in *writer), or 0 when the
 * writer's version had it already, or either version is not the schema set's. */
int stm_apply_made_by(applier_t *a, const stm_id *version_id, const char *table,
                      const char *column, int *writer);
/* ops[0..*n) (one row change) with this database's names for their table and columns
 * when they were written at another version of the schema set: a copy lent until the
 * next call, or ops itself when nothing changes. Written at an older version, those on
 * a table a migration since has dropped (none here holds its values, whatever holds
 * its name) are left out (*n becomes 0; *gone counts them), and those on such a column
 * are marked (stm_apply_gone; *gone counts them too): the migration dropped their
 * values on every database that ran it, and what a database at this version holds is
 * what it left (apply.h, invariant 8). Written at a newer version on a table that is
 * not the one of its name here (a migration between made it anew), *park_whole says
 * why (lent, until the next call): the row change waits whole for this database to
 * migrate, none of it applied to the other table. NULL otherwise. */
const op_t *const *stm_apply_translate(applier_t *a, const op_t *const *ops, size_t *n,
                                       uint64_t *gone, const char **park_whole);
/* Runs the kind statement (an insert: ROW_INSERT or ROW_ADD) for the row of t whose key
 * is pk with cells[0..n) (sorted), as stm_rowsql_run does; when SQLite refuses it for a
 * NOT NULL column that a migration since the writer's version (a->writer) added with
 * a default (lens.h LENS_ADDED), runs it again with that column at that default, as
 * every database that ran the migration holds it for a row it had: a row from an older
 * device is not parked for a value the migration itself gives (a computed one still
 * is). The filled cells write no clocks: no operation wrote them. */
int stm_apply_insert_filled(applier_t *a, const txn_table *t, row_kind kind, const op_value *pk,
                            const row_cell *cells, size_t n, char **refused);
/* Copies op (one write) into out under this database's names, as stm_apply_translate
 * gives it (its strings and bytes held by out), leaving the applier's scratch as it was
 * (the caller may hold a row change it translated). False, nothing copied, when it
 * writes no column here: its table gone, parked whole, its column dropped. */
bool stm_apply_translate_copy(applier_t *a, const op_t *op, opbatch_t *out);
/* Whether op (one stm_apply_translate handed out) writes a column dropped since its
 * writer's version: it takes no cell, is not parked, and still counts as a write of its
 * row (as a write parked for a missing column does: apply.h, invariant 2). */
bool stm_apply_gone(const applier_t *a, const op_t *op);

/* ---- apply_identity.c ---- */

/* Applies a row change of another incarnation of its row than the row's (identity.h):
 * ops[0..n) (writes, or one delete), recorded already; row_inc the row's incarnation,
 * have_clock: the transaction's clock holds the row's clocks; parked_already: writes
 * to columns this schema lacks were parked by the caller. */
STM_NODISCARD stm_err stm_apply_aside(applier_t *a, txn_table *t, const op_t *const *ops, size_t n,
                                      const identity_stamp *row_inc, bool have_clock,
                                      bool parked_already, apply_stats *st, stm_error *err);
/* Settles which incarnation of pk is the row (identity.h, rule 2) after this device
 * deleted it or made it anew: the earliest-born alive one kept aside becomes the row
 * when the row is not there, or was born after it. *moved (may be NULL) is set when
 * one did. */
STM_NODISCARD stm_err stm_apply_settle(applier_t *a, txn_table *t, const op_value *pk,
                                       bool *moved, stm_error *err);
/* stm_apply_settle for every row of an identity table deleted or made anew locally
 * since the transaction started (stm_txn_settle). */
STM_NODISCARD stm_err stm_apply_settle_local(applier_t *a, stm_error *err);

/* ---- apply_unique.c ---- */

typedef enum {
    APPLY_UNIQUE_NONE, /* not a clash on a UNIQUE index other than the key: park as ever */
    APPLY_UNIQUE_WON,  /* the holder went aside: write the row again */
    APPLY_UNIQUE_LOST, /* the newcomer goes aside: the caller keeps its clocks there */
} apply_unique_outcome;

/* A new row of t (change and its cells; or, with change NULL, the row whose clocks the
 * transaction holds, its values looked up) refused with refused, SQLite's message:
 * when it is a UNIQUE index other than the key, settles which row keeps the value
 * (the earlier claim, apply_unique.c). The transaction's clock (the newcomer's) is as
 * it was on return. */
STM_NODISCARD stm_err stm_apply_unique(applier_t *a, txn_table *t, const op_t *change,
                                       const row_cell *cells, size_t ncells, const char *refused,
                                       apply_unique_outcome *outcome, stm_error *err);

/* Keeps the row change ops[0..n) (its winning cells) of a row that lost a unique value
 * aside: its writes enter the row's clocks, which go to stemma_conflicts rather than
 * stemma_clock (have_clock: forgotten there), the row leaves the table when it was
 * there, and its operations count as applied. */
STM_NODISCARD stm_err stm_apply_keep_aside(applier_t *a, txn_table *t, const op_t *const *ops,
                                           size_t n, const row_cell *cells, size_t ncells,
                                           const identity_stamp *inc, int64_t origin_no,
                                           bool have_clock, bool there, apply_stats *st,
                                           stm_error *err);
/* Runs the kind statement (ROW_ADD or ROW_UPDATE) for a row change with its winning
 * cells, settling a refusal by a UNIQUE index other than the key (written again when
 * this row won, kept aside, *aside, when it lost). SQLite's result. */
int stm_apply_write_row(applier_t *a, txn_table *t, row_kind kind, const op_t *const *ops, size_t n,
                        const row_cell *cells, size_t ncells, const identity_stamp *inc,
                        int64_t origin_no, bool have_clock, char **refused, bool *aside,
                        apply_stats *st, stm_error *err, stm_err *rc);

/* stm_apply_insert_row for a row change ops[0..n) that brings its row (back) into
 * being, settling a refusal by a UNIQUE index other than the key as
 * stm_apply_write_row does. SQLite's result. */
int stm_apply_bring_back(applier_t *a, txn_table *t, const op_t *const *ops, size_t n,
                         const row_cell *cells, size_t ncells, bool deleted,
                         const identity_stamp *inc, int64_t origin_no, bool have_clock,
                         char **refused, bool *aside, apply_stats *st, stm_error *err, stm_err *rc);

/* Settles every key that keeps an alive row aside (stm_apply_settle) in the tables
 * touched since the last time (txn.h: those with a UNIQUE index other than the key
 * that were written): a value one of them lost may be free again. Again, until none
 * moves: one key's row that moves aside may free the value another key's row aside
 * lost to it, whatever order the keys come in. */
STM_NODISCARD stm_err stm_apply_settle_all(applier_t *a, stm_error *err);

/* ---- apply_wait.c ---- */

apply_waits *stm_apply_waits_new(void);
void stm_apply_waits_destroy(apply_waits **self_p);
/* What a row write (kind ROW_ADD, ROW_INSERT or ROW_UPDATE, with cells[0..ncells) its
 * winning cells) or delete (ROW_DELETE) of row pk of t waits for, SQLite having
 * refused it with code (its extended result): into wakes[0..PARK_WAKES_MAX), *n of
 * them, its own row first (park.h, invariant 4; apply_wait.c has the rules). */
STM_NODISCARD stm_err stm_apply_wakes(applier_t *a, txn_table *t, const op_value *pk, row_kind kind,
                                      int code, const row_cell *cells, size_t ncells,
                                      park_wake *wakes, size_t *n, stm_error *err);
/* Parks ops[0..n) (one row change, or one delete, recorded already) that SQLite
 * refused with code and the message refused, waiting for what stm_apply_wakes says,
 * and counts them. */
STM_NODISCARD stm_err stm_apply_park_refused(applier_t *a, txn_table *t, const op_t *const *ops,
                                             size_t n, row_kind kind, int code, const char *refused,
                                             const row_cell *cells, size_t ncells, apply_stats *st,
                                             stm_error *err);

#endif
