/* apply.c - last writer wins: applying received operations to this database's rows.
 * The invariants are in apply.h; the transaction every batch runs in (recording,
 * vectors, clocks) is txn.c, parking and retries park.c, the statements that write a
 * row rowsql.c, the incarnations of rows whose keys each device picks
 * apply_identity.c, rows that claim one unique value apply_unique.c, the batches (their
 * transactions, their order, what is judged before a row change, retries)
 * apply_batch.c. What stays here is last writer wins on one row change, or one delete,
 * which reads and writes the row's clocks and its cells in one pass.
 *
 * How the hot path stays close to SQLite's own speed: a row change (the operations
 * of one origin and clock on one row) is the unit of work. It is recorded as one
 * oplog row (oplog.h), its row's clocks are one stemma_clock row read and written
 * once (rowclock.h), and the row is written with one statement, prepared once per
 * (table, kind, set of columns). Whether an operation is held already is known from
 * the version vector without a query, except for operations that arrive out of
 * order. A row with no clock yet is inserted first (the common case for new rows),
 * a row with one updated first. */
#include "apply_internal.h"
#include "capture.h"
#include "identity.h"
#include "key.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/catalog.h"
#include "lineage/sqlscript.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- life ---- */

/* txn_wrote_fn: a row written here may be what operations parked for a constraint
 * wait for (park.h, invariant 5). */
static void s_wrote(void *ctx, const char *table, const op_value *pk)
{
    applier_t *a = ctx;
    stm_park_wrote(a->park, table, pk);
}

applier_t *stm_applier_new(store_t *store, apply_warn_fn warn, void *ctx)
{
    applier_t *a = stm_calloc(1, sizeof *a);
    a->store = store;
    a->db = stm_store_db(store);
    a->log = stm_oplog_new(store);
    a->txn = stm_txn_new(store, a->log);
    a->park = stm_park_new(store, a->log, warn, ctx);
    a->waits = stm_apply_waits_new();
    stm_txn_on_write(a->txn, s_wrote, a);
    a->rowsql = stm_rowsql_new(a->db, a->txn);
    a->max_ahead_ms = APPLY_MAX_CLOCK_AHEAD_MS;
    a->ahead_due = INT64_MIN; /* some may be parked from before: look at the next apply */
    return a;
}

void stm_applier_set_listener(applier_t *a, const txn_listener *l)
{
    stm_txn_set_listener(a->txn, l);
}

void stm_applier_destroy(applier_t **self_p)
{
    applier_t *a = *self_p;
    if (!a)
        return;
    stm_rowsql_destroy(&a->rowsql);
    stm_park_destroy(&a->park);
    stm_apply_waits_destroy(&a->waits);
    stm_txn_destroy(&a->txn);
    stm_oplog_destroy(&a->log);
    free(a->cells);
    free(a->applied);
    stm_rowclock_free(&a->aside);
    free(a->xops);
    free(a->xptrs);
    free(a->xgone);
    free(a->fill);
    stm_buf_free(&a->xkey);
    free(a);
    *self_p = NULL;
}

/* ---- parking ---- */

/* Parks op (recorded already) and counts it. */
stm_err stm_apply_park(applier_t *a, const op_t *op, park_kind kind, const char *reason,
                       apply_stats *st, stm_error *err)
{
    st->parked++;
    return stm_park_op(a->park, op, kind, reason, err);
}

stm_err stm_apply_park_all(applier_t *a, const op_t *const *ops, size_t n, const char *reason,
                           apply_stats *st, stm_error *err)
{
    stm_err rc = STM_OK;
    for (size_t i = 0; i < n && rc == STM_OK; i++)
        rc = stm_apply_park(a, ops[i], PARK_SCHEMA, reason, st, err);
    return rc;
}

/* ---- last writer wins ---- */

/* True when the write (hlc, origin) is later than entry e (NULL: there is none). */
stm_err stm_apply_later(applier_t *a, uint64_t hlc, const stm_id *origin, const rowclock_entry *e,
                        bool *later, stm_error *err)
{
    if (!e || hlc != e->hlc) {
        *later = !e || hlc > e->hlc;
        return STM_OK;
    }
    stm_id other;
    stm_err rc = stm_store_id_of(a->store, e->origin, &other, err);
    if (rc == STM_OK)
        *later = stm_op_clock_compare(hlc, origin, e->hlc, &other) > 0;
    return rc;
}

/* The later of two entries (either may be NULL). */
static const rowclock_entry *s_max_entry(applier_t *a, const rowclock_entry *x,
                                         const rowclock_entry *y, stm_error *err, stm_err *rc)
{
    if (!x || !y)
        return x ? x : y;
    stm_id origin;
    bool later = false;
    if ((*rc = stm_store_id_of(a->store, x->origin, &origin, err)) == STM_OK)
        *rc = stm_apply_later(a, x->hlc, &origin, y, &later, err);
    return later ? x : y;
}

/* The latest write of any cell of the row in a->clock (written here, or parked for a
 * column this schema lacks). */
const rowclock_entry *stm_apply_latest_write(applier_t *a, stm_error *err, stm_err *rc)
{
    const rowclock_t *clock = stm_txn_clock(a->txn);
    const rowclock_entry *best = NULL;
    for (size_t i = 0; i < clock->count && *rc == STM_OK; i++)
        if (clock->entries[i].kind != ROWCLOCK_DELETE)
            best = s_max_entry(a, best, &clock->entries[i], err, rc);
    return best;
}

/* ---- writing rows ---- */

/* The value of the latest applied write to a column of the row read last, for
 * bringing a deleted row back; held is where its operation is copied to. */
stm_err stm_apply_held_value(applier_t *a, const catalog_column *col, opbatch_t *held, bool *found,
                             stm_error *err)
{
    *found = false;
    const rowclock_entry *e = stm_rowclock_find(stm_txn_clock(a->txn), ROWCLOCK_CELL, col->name);
    if (!e)
        return STM_OK;
    stm_id origin;
    stm_err rc = stm_store_id_of(a->store, e->origin, &origin, err);
    if (rc == STM_OK)
        rc = stm_oplog_fetch(a->log, &origin, e->seq, held, found, err);
    return rc;
}

/* Brings a row (back) into being: with the winning cells of this change and, when
 * the row was deleted before, the latest earlier value of every other column. */
int stm_apply_insert_row(applier_t *a, const txn_table *t, const op_value *pk,
                         const row_cell *cells, size_t ncells, bool deleted, char **refused,
                         stm_error *err, stm_err *rc)
{
    const catalog_table *def = stm_txn_table_def(t);
    size_t ncols = stm_catalog_table_count(def), nall = 0;
    row_cell *all = stm_calloc(ncols + 1, sizeof *all);
    opbatch_t *held = stm_opbatch_new();
    for (size_t i = 0; i < ncells; i++)
        if (!cells[i].col->pk)
            all[nall++] = cells[i];
    size_t from = nall;
    for (size_t c = 0; deleted && c < ncols && *rc == STM_OK; c++) {
        const catalog_column *col = stm_catalog_table_column(def, c);
        bool have = col->pk || col->hidden;
        for (size_t i = 0; i < nall && !have; i++)
            have = all[i].col == col;
        bool found = false;
        if (!have)
            *rc = stm_apply_held_value(a, col, held, &found, err);
        if (found) {
            all[nall].col = col;
            all[nall].position = stm_rowsql_position(t, col);
            nall++;
        }
    }
    /* A key column compared by a folding collation is spelt as its cell's latest write
     * has it (this change's, or one held), not as the operation that brings the row
     * back happens to: every replica then spells it alike, whichever op came last. */
    op_value key = *pk, parts[KEY_MAX_COLUMNS];
    size_t nparts = 0;
    bool respelt = false;
    buf_t packed = BUF_INIT;
    opbatch_t *spelt = stm_opbatch_new();
    if (stm_key_values(pk, parts, KEY_MAX_COLUMNS, &nparts) && nparts <= KEY_MAX_COLUMNS) {
        for (size_t k = 0; k < nparts && *rc == STM_OK; k++) {
            const catalog_column *kc = stm_catalog_table_key(def, k);
            key_collation coll = kc ? stm_key_collation_of(kc) : KEY_BINARY;
            if (coll == KEY_BINARY)
                continue;
            bool found = false;
            op_value v = {0};
            for (size_t i = 0; i < ncells; i++)
                if (cells[i].col == kc) {
                    v = cells[i].value;
                    found = true;
                }
            if (!found && deleted) {
                size_t at = stm_opbatch_count(spelt);
                *rc = stm_apply_held_value(a, kc, spelt, &found, err);
                if (found)
                    v = stm_opbatch_at(spelt, at)->value; /* its bytes stay put */
            }
            if (found && stm_key_part_is(pk, k, &v, coll)) {
                parts[k] = v;
                respelt = true;
            }
        }
    }
    if (respelt && nparts == 1) {
        key = parts[0];
    } else if (respelt) {
        stm_key_pack(parts, nparts, &packed);
        key = (op_value){.type = VALUE_KEY, .bytes = packed.data, .len = packed.len};
    }
    int step = SQLITE_DONE;
    if (*rc == STM_OK) {
        /* The batch of earlier values has stopped growing: its operations stay put. */
        for (size_t i = from; i < nall; i++)
            all[i].value = stm_opbatch_at(held, i - from)->value;
        stm_rowsql_sort(all, nall);
        step = stm_apply_insert_filled(a, t, ROW_INSERT, &key, all, nall, refused);
    }
    free(all);
    stm_opbatch_destroy(&held);
    stm_opbatch_destroy(&spelt);
    stm_buf_free(&packed);
    return step;
}

/* True, with why, when the key of row change ops[0..n) cannot name a row of t: a NULL
 * in it, another number of columns than t's key has here, or a key column of another
 * type at the writer (the table's key changed between the versions). Such a row is
 * not this table's row under a converted key: it parks whole, never a cell here and
 * the rest there (a write that filled the row here and parked its key cell left a
 * row no replay could complete). */
static bool s_key_unusable(const txn_table *t, const op_t *const *ops, size_t nops, char *why,
                           size_t len)
{
    const op_value *key = &ops[0]->pk;
    for (size_t i = 0; i < nops; i++) {
        const catalog_column *col =
            ops[i]->column ? stm_catalog_table_find(stm_txn_table_def(t), ops[i]->column) : NULL;
        if (col && col->pk && !col->hidden &&
            stm_capture_affinity_code(col->affinity) != ops[i]->affinity) {
            snprintf(why, len, "its key column %s is %s here, %c at the writer", col->name,
                     stm_catalog_affinity_name(col->affinity), ops[i]->affinity);
            return true;
        }
    }
    size_t n = stm_key_columns(key);
    if (n != stm_txn_table_keys(t)) {
        snprintf(why, len, "its key has %zu columns, the table's key here %zu", n,
                 stm_txn_table_keys(t));
        return true;
    }
    if (stm_key_has_null(key)) {
        snprintf(why, len, "a row with a NULL primary key cannot be synced");
        return true;
    }
    return false;
}

/* The local column op writes, or NULL when this schema has none to take it: no such
 * column (or a generated one), or one of another affinity than the writer's. */
const catalog_column *stm_apply_column(const txn_table *t, const op_t *op)
{
    const catalog_column *col = stm_catalog_table_find(stm_txn_table_def(t), op->column);
    if (!col || col->hidden || stm_capture_affinity_code(col->affinity) != op->affinity)
        return NULL;
    return col;
}

/* Parks op, a write s_column found no column for, saying why. */
stm_err stm_apply_park_column(applier_t *a, const txn_table *t, const op_t *op, apply_stats *st,
                              stm_error *err)
{
    const catalog_column *col = stm_catalog_table_find(stm_txn_table_def(t), op->column);
    char reason[160];
    if (!col || col->hidden)
        snprintf(reason, sizeof reason, "column not in this database");
    else
        snprintf(reason, sizeof reason, "type conflict: %s here, %c at the writer",
                 stm_catalog_affinity_name(col->affinity), op->affinity);
    return stm_apply_park(a, op, PARK_SCHEMA, reason, st, err);
}

/* Applies one row change: n new operations of one origin and clock on one row, all
 * cell writes, recorded already. */
stm_err stm_apply_writes(applier_t *a, const op_t *const *ops, size_t n, apply_stats *st,
                         stm_error *err)
{
    const op_t *first = ops[0];
    txn_table *t = stm_txn_table_find(a->txn, first->table);
    if (!t)
        return stm_apply_park_all(a, ops, n, "table not in this database, or not synced here", st,
                                  err);
    char why[128];
    if (s_key_unusable(t, ops, n, why, sizeof why))
        return stm_apply_park_all(a, ops, n, why, st, err);
    stm_txn_table_touch(t);
    bool have_clock = false;
    stm_err rc = stm_txn_clock_read(a->txn, t, &first->pk, &have_clock, err);
    if (rc != STM_OK)
        return rc;
    rowclock_t *clock = stm_txn_clock(a->txn);
    /* In an identity table, a write to another incarnation than the row's goes aside;
     * a new row takes the incarnation its writes name. */
    identity_stamp inc = {0}, row_inc = {0};
    bool identity = stm_txn_table_identity(t);
    if (identity) {
        inc = stm_identity_of_op(first);
        if (have_clock && (rc = stm_identity_of_clock(a->store, clock, &row_inc, err)) != STM_OK)
            return rc;
        if (have_clock && !stm_identity_equal(&inc, &row_inc))
            return stm_apply_aside(a, t, ops, n, &row_inc, true, false, st, err);
    }
    /* A row with no clocks that is kept aside already (its delete came first, or it
     * lost a unique value, apply_unique.c): aside too. */
    bool kept = false, any = false;
    if (!have_clock && (!identity || inc.hlc) &&
        (rc = stm_conflicts_any(stm_txn_conflicts(a->txn), &any, err)) != STM_OK)
        return rc;
    if (any && (rc = stm_conflicts_load(stm_txn_conflicts(a->txn),
                                        stm_catalog_table_name(stm_txn_table_def(t)), &first->pk,
                                        &inc, &a->aside, &kept, err)) != STM_OK)
        return rc;
    if (kept)
        return stm_apply_aside(a, t, ops, n, &row_inc, false, false, st, err);
    if (identity && !have_clock &&
        (rc = stm_identity_set_clock(a->store, clock, &inc, first->seq, err)) != STM_OK)
        return rc;
    int64_t origin_no;
    if ((rc = stm_store_id_number(a->store, &first->origin, true, &origin_no, err)) != STM_OK)
        return rc;
    if (n > a->scratch_cap) {
        size_t cap = a->scratch_cap;
        a->cells = stm_grow(a->cells, &cap, n, sizeof *a->cells);
        a->applied = stm_grow(a->applied, &a->scratch_cap, n, sizeof *a->applied);
    }
    row_cell *cells = a->cells;
    const op_t **applied = a->applied;
    memset(cells, 0, n * sizeof *cells);
    size_t ncells = 0, napplied = 0, nparked = 0;
    char *refused = NULL;

    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        const op_t *op = ops[i];
        const catalog_column *col = stm_apply_column(t, op);
        if (!col && stm_apply_gone(a, op)) {
            st->applied++; /* recorded; counts for its row, writes no cell */
            nparked++;
            continue;
        }
        if (!col) {
            rc = stm_apply_park_column(a, t, op, st, err);
            nparked++;
            continue;
        }
        /* A key column's cell names its own row, in the key's spelling or another the
         * column's collation takes as equal (which respells the key); never another. */
        if (col->pk &&
            !stm_key_part_is(&op->pk, (size_t)col->pk - 1, &op->value, stm_key_collation_of(col))) {
            rc = stm_apply_park(a, op, PARK_SCHEMA, "its key column's value is not the row's key",
                                st, err);
            nparked++;
            continue;
        }
        applied[napplied++] = op;
        bool later = false;
        rc = stm_apply_later(a, op->hlc, &op->origin,
                             stm_rowclock_find(clock, ROWCLOCK_CELL, col->name), &later, err);
        if (rc == STM_OK && later) {
            cells[ncells].col = col;
            cells[ncells].position = stm_rowsql_position(t, col);
            cells[ncells].seq = op->seq;
            cells[ncells].value = op->value;
            ncells++;
        }
    }
    /* Even a change whose every column was parked may bring a deleted row back. */
    if (rc != STM_OK || (napplied == 0 && nparked == 0))
        goto done;
    stm_rowsql_sort(cells, ncells);

    int step = SQLITE_DONE;
    row_kind tried = ROW_ADD; /* the statement a refusal came from */
    bool joined = false;      /* made of its pieces (apply_pieces.c): their clocks are set */
    bool exists = false;
    size_t nvalues = 0; /* cells outside the key: what an UPDATE sets */
    for (size_t i = 0; i < ncells; i++)
        nvalues += stm_rowsql_sets(cells[i].col);
    /* Every write of the change parked, on a row with no clocks: if a row is there, it
     * is the genesis incarnation, and this change another's (as below, after ROW_ADD). */
    if (identity && inc.hlc && !have_clock && ncells == 0) {
        char *no = NULL;
        step = stm_rowsql_run(a->rowsql, t, ROW_EXISTS, &first->pk, NULL, 0, &no);
        free(no);
        if (step == SQLITE_ROW) {
            stm_rowclock_clear(clock);
            identity_stamp genesis = {0};
            rc = stm_apply_aside(a, t, ops, n, &genesis, false, true, st, err);
            goto done;
        }
        if (stm_rowsql_fatal(step)) {
            rc = stm_store_error(a->store, err, "reading a row");
            goto done;
        }
        step = SQLITE_DONE;
    }
    if (!have_clock && ncells) {
        /* A row never written here: most likely new, so insert it unless it is there
         * (a row from before stemma, which the change then updates). */
        bool aside = false;
        step = stm_apply_write_row(a, t, ROW_ADD, ops, n, cells, ncells, &inc, origin_no, false,
                                   &refused, &aside, st, err, &rc);
        if (rc != STM_OK || aside)
            goto done;
        if (step == SQLITE_DONE && sqlite3_changes(a->db) > 0)
            goto written;
        /* Refused: it may be one piece of a row whose other pieces wait already. */
        if (refused && !stm_rowsql_fatal(step) &&
            (rc = stm_apply_join_pieces(a, t, ops, n, cells, &ncells, origin_no, false, &refused,
                                        &step, &joined, st, err)) != STM_OK)
            goto done;
        if (joined)
            goto written;
        /* In an identity table, a row there with no clocks is the genesis incarnation
         * (from before stemma): a new incarnation does not merge into it. */
        if (identity && inc.hlc && step == SQLITE_DONE && !refused) {
            stm_rowclock_clear(clock);
            identity_stamp genesis = {0};
            rc = stm_apply_aside(a, t, ops, n, &genesis, false, true, st, err);
            goto done;
        }
    }
    if (nvalues && !refused && !stm_rowsql_fatal(step)) {
        bool aside = false;
        tried = ROW_UPDATE;
        step = stm_apply_write_row(a, t, ROW_UPDATE, ops, n, cells, ncells, &inc, origin_no,
                                   have_clock, &refused, &aside, st, err, &rc);
        if (rc != STM_OK || aside)
            goto done;
        exists = step == SQLITE_DONE && sqlite3_changes(a->db) > 0;
    } else if (!refused && !stm_rowsql_fatal(step)) {
        step = stm_rowsql_run(a->rowsql, t, ROW_EXISTS, &first->pk, NULL, 0, &refused);
        exists = step == SQLITE_ROW;
        if (step == SQLITE_ROW)
            step = SQLITE_DONE;
    }
    if (!exists && !refused && !stm_rowsql_fatal(step)) {
        /* The row exists when its latest write, this one or one held already (a write
         * parked for a column this schema lacks, say, which may have come first), is
         * later than its latest delete (invariant 2). */
        const rowclock_entry *del = stm_rowclock_find(clock, ROWCLOCK_DELETE, NULL);
        bool later = false;
        rc = stm_apply_later(a, first->hlc, &first->origin, del, &later, err);
        const rowclock_entry *latest =
            rc == STM_OK && del && !later ? stm_apply_latest_write(a, err, &rc) : NULL;
        stm_id latest_origin;
        if (latest && rc == STM_OK &&
            (rc = stm_store_id_of(a->store, latest->origin, &latest_origin, err)) == STM_OK)
            rc = stm_apply_later(a, latest->hlc, &latest_origin, del, &later, err);
        if (rc == STM_OK && (napplied > 0 || del) && later) {
            bool aside = false;
            tried = ROW_INSERT;
            step = stm_apply_bring_back(a, t, ops, n, cells, ncells, del != NULL, &inc, origin_no,
                                        have_clock, &refused, &aside, st, err, &rc);
            if (rc != STM_OK || aside)
                goto done;
            if (refused && !stm_rowsql_fatal(step))
                rc = stm_apply_join_pieces(a, t, ops, n, cells, &ncells, origin_no, del != NULL,
                                           &refused, &step, &joined, st, err);
        }
    }
written:
    if (rc != STM_OK)
        goto done;
    if (stm_rowsql_fatal(step)) {
        rc = stm_store_error(a->store, err, "writing a row");
        goto done;
    }
    if (refused && napplied) {
        rc = stm_apply_park_refused(a, t, applied, napplied, tried, step, refused, cells, ncells,
                                    st, err);
    } else if (!refused) {
        st->applied += napplied;
        a->any_applied |= napplied > 0;
    }
    /* The clocks move only for what was written: the winning cells and, for a write
     * parked for a missing column, the row's entry for such writes. */
    bool moved = false;
    for (size_t i = 0; i < ncells && rc == STM_OK && !refused; i++) {
        stm_rowclock_set(clock, ROWCLOCK_CELL, cells[i].col->name, first->hlc, origin_no,
                         cells[i].seq);
        moved = true;
    }
    if (rc == STM_OK && nparked) {
        const rowclock_entry *e = stm_rowclock_find(clock, ROWCLOCK_PARKED, NULL);
        bool later = false;
        rc = stm_apply_later(a, first->hlc, &first->origin, e, &later, err);
        if (rc == STM_OK && later) {
            stm_rowclock_set(clock, ROWCLOCK_PARKED, NULL, first->hlc, origin_no, first->seq);
            moved = true;
        }
    }
    if (rc == STM_OK && (moved || joined))
        rc = stm_txn_clock_write(a->txn, t, &first->pk, !have_clock, err);
done:
    free(refused);
    return rc;
}

/* Applies one new row delete, recorded already. */
stm_err stm_apply_delete(applier_t *a, const op_t *op, apply_stats *st, stm_error *err)
{
    txn_table *t = stm_txn_table_find(a->txn, op->table);
    if (!t)
        return stm_apply_park(a, op, PARK_SCHEMA, "table not in this database, or not synced here",
                              st, err);
    char why[128];
    if (s_key_unusable(t, &op, 1, why, sizeof why))
        return stm_apply_park(a, op, PARK_SCHEMA, why, st, err);
    stm_txn_table_touch(t);
    bool have_clock;
    stm_err rc = stm_txn_clock_read(a->txn, t, &op->pk, &have_clock, err);
    rowclock_t *clock = stm_txn_clock(a->txn);
    /* In an identity table, a delete of another incarnation than the row's goes aside
     * (a row with no clocks is the genesis incarnation). */
    bool identity = stm_txn_table_identity(t);
    if (rc == STM_OK && identity) {
        identity_stamp inc = stm_identity_of_op(op), row_inc = {0};
        if (have_clock)
            rc = stm_identity_of_clock(a->store, clock, &row_inc, err);
        if (rc == STM_OK && !stm_identity_equal(&inc, &row_inc))
            return stm_apply_aside(a, t, &op, 1, &row_inc, have_clock, false, st, err);
    } else if (rc == STM_OK && !have_clock) {
        /* A row kept aside for a unique value it lost (apply_unique.c): deleted there. */
        bool any = false, kept = false;
        identity_stamp none = {0};
        rc = stm_conflicts_any(stm_txn_conflicts(a->txn), &any, err);
        if (rc == STM_OK && any)
            rc = stm_conflicts_load(stm_txn_conflicts(a->txn),
                                    stm_catalog_table_name(stm_txn_table_def(t)), &op->pk, &none,
                                    &a->aside, &kept, err);
        if (rc == STM_OK && kept)
            return stm_apply_aside(a, t, &op, 1, &none, false, false, st, err);
    }
    int64_t origin_no = 0;
    if (rc == STM_OK)
        rc = stm_store_id_number(a->store, &op->origin, true, &origin_no, err);
    const rowclock_entry *latest = rc == STM_OK ? stm_apply_latest_write(a, err, &rc) : NULL;
    bool later = false;
    if (rc == STM_OK)
        rc = stm_apply_later(a, op->hlc, &op->origin, latest, &later, err);
    if (rc != STM_OK)
        return rc;
    char *refused = NULL;
    int step = SQLITE_DONE;
    if (later) {
        step = stm_rowsql_run(a->rowsql, t, ROW_DELETE, &op->pk, NULL, 0, &refused);
        if (stm_rowsql_fatal(step))
            return stm_store_error(a->store, err, "deleting a row");
    }
    if (refused) {
        rc = stm_apply_park_refused(a, t, &op, 1, ROW_DELETE, step, refused, NULL, 0, st, err);
        free(refused);
        return rc;
    }
    st->applied++;
    a->any_applied = true;
    const rowclock_entry *del = stm_rowclock_find(clock, ROWCLOCK_DELETE, NULL);
    if ((rc = stm_apply_later(a, op->hlc, &op->origin, del, &later, err)) != STM_OK || !later)
        return rc;
    stm_rowclock_set(clock, ROWCLOCK_DELETE, NULL, op->hlc, origin_no, op->seq);
    rc = stm_txn_clock_write(a->txn, t, &op->pk, !have_clock, err);
    if (rc == STM_OK && identity)
        rc = stm_apply_settle(a, t, &op->pk, NULL, err);
    return rc;
}
