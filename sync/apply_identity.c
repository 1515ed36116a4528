/* apply_identity.c - the incarnations of rows whose keys each device picks, applied
 * (identity.h has the rules): a write or delete of another incarnation than the row's
 * goes to that incarnation's clocks aside, which may make it the row; a row that dies
 * gives its key to the earliest alive one aside; and a conflict kept aside discarded
 * or kept under a new key. Last writer wins on the row itself is apply.c's. */
#include "apply_internal.h"
#include "capture.h"
#include "identity.h"
#include "base/buf.h"
#include "lineage/sqlscript.h"
#include "lineage/syncable.h"

#include <stdlib.h>
#include <string.h>

/* *there: the table holds a row under pk. */
static stm_err s_row_there(applier_t *a, const txn_table *t, const op_value *pk, bool *there,
                           stm_error *err)
{
    char *refused = NULL;
    int step = stm_rowsql_run(a->rowsql, t, ROW_EXISTS, pk, NULL, 0, &refused);
    free(refused);
    *there = step == SQLITE_ROW;
    return stm_rowsql_fatal(step) ? stm_store_error(a->store, err, "reading a row") : STM_OK;
}

/* Makes the incarnation whose clocks the transaction's clock holds the row of pk: the
 * row there (if any) gives way to one of its values, in a savepoint. *shown false when
 * a constraint refused that row (nothing changed then). */
static stm_err s_show(applier_t *a, txn_table *t, const op_value *pk, bool there, bool *shown,
                      stm_error *err)
{
    *shown = false;
    stm_err rc = stm_store_exec(a->store, "SAVEPOINT stemma_show", err);
    if (rc != STM_OK)
        return rc;
    char *refused = NULL;
    int step =
        there ? stm_rowsql_run(a->rowsql, t, ROW_DELETE, pk, NULL, 0, &refused) : SQLITE_DONE;
    if (!refused && !stm_rowsql_fatal(step))
        step = stm_apply_insert_row(a, t, pk, NULL, 0, true, &refused, err, &rc);
    /* Refused by a UNIQUE index other than the key: the earlier claim keeps the value
     * (apply_unique.c); shown after all when it is this row's. */
    apply_unique_outcome unique = APPLY_UNIQUE_NONE;
    if (rc == STM_OK && refused && step == SQLITE_CONSTRAINT_UNIQUE)
        rc = stm_apply_unique(a, t, NULL, NULL, 0, refused, &unique, err);
    if (rc == STM_OK && unique == APPLY_UNIQUE_WON) {
        free(refused);
        refused = NULL;
        step = stm_apply_insert_row(a, t, pk, NULL, 0, true, &refused, err, &rc);
    }
    if (rc == STM_OK && stm_rowsql_fatal(step))
        rc = stm_store_error(a->store, err, "writing a row");
    *shown = rc == STM_OK && !refused;
    free(refused);
    if (rc == STM_OK && !*shown)
        rc = stm_store_exec(a->store, "ROLLBACK TO stemma_show", err);
    if (rc == STM_OK)
        rc = stm_store_exec(a->store, "RELEASE stemma_show", err);
    return rc;
}

/* Swaps the transaction's clock with the applier's clock of an incarnation aside. */
static void s_swap_clocks(applier_t *a)
{
    rowclock_t *main = stm_txn_clock(a->txn), tmp = *main;
    *main = a->aside;
    a->aside = tmp;
}

/* Makes incarnation inc, whose clocks a->aside holds, the row of pk in place of the
 * row's incarnation row_inc (clocks in the transaction's clock; have_clock: it has
 * some), which goes aside (alive when the row was there); inc's record aside goes.
 * When a constraint refuses inc's row, inc stays aside, alive, and nothing changes. */
static stm_err s_take_over(applier_t *a, txn_table *t, const op_value *pk,
                           const identity_stamp *inc, const identity_stamp *row_inc,
                           bool have_clock, bool there, bool *taken, stm_error *err)
{
    *taken = false;
    conflicts_t *c = stm_txn_conflicts(a->txn);
    const char *tbl = stm_catalog_table_name(stm_txn_table_def(t));
    stm_err rc = STM_OK;
    if (have_clock)
        rc = stm_conflicts_save(c, tbl, pk, row_inc, stm_txn_clock(a->txn), there, err);
    s_swap_clocks(a);
    if (rc == STM_OK)
        rc = stm_identity_set_clock(a->store, stm_txn_clock(a->txn), inc, 0, err);
    bool shown = false;
    if (rc == STM_OK)
        rc = s_show(a, t, pk, there, &shown, err);
    if (rc == STM_OK && shown) {
        *taken = true;
        rc = stm_txn_clock_write(a->txn, t, pk, !have_clock, err);
        if (rc == STM_OK)
            rc = stm_conflicts_remove(c, tbl, pk, inc, err);
    } else if (rc == STM_OK) {
        /* Refused (a unique index another row holds, say): it stays aside, and the
         * row's incarnation stays the row, its clocks in stemma_clock only (the copy
         * saved above, outside the savepoint, goes). */
        s_swap_clocks(a);
        if (have_clock)
            rc = stm_conflicts_remove(c, tbl, pk, row_inc, err);
        if (rc == STM_OK)
            rc = stm_conflicts_save(c, tbl, pk, inc, &a->aside, true, err);
    }
    return rc;
}

/* Applies a row change ops[0..n) (writes, or one delete; recorded already) of an
 * incarnation of pk other than the row's (row_inc; have_clock: the transaction's
 * clock holds the row's clocks): to that incarnation's clocks aside, and makes it the
 * row when it is alive and born before the row's incarnation, or the row is not there
 * (identity.h, rule 2). parked_already: its writes to columns this schema lacks were
 * parked by the caller. */
stm_err stm_apply_aside(applier_t *a, txn_table *t, const op_t *const *ops, size_t n,
                        const identity_stamp *row_inc, bool have_clock, bool parked_already,
                        apply_stats *st, stm_error *err)
{
    const op_t *first = ops[0];
    const char *tbl = stm_catalog_table_name(stm_txn_table_def(t));
    identity_stamp inc = stm_identity_of_op(first);
    bool kept = false;
    stm_err rc =
        stm_conflicts_load(stm_txn_conflicts(a->txn), tbl, &first->pk, &inc, &a->aside, &kept, err);
    int64_t origin_no = 0;
    if (rc == STM_OK)
        rc = stm_store_id_number(a->store, &first->origin, true, &origin_no, err);
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        const op_t *op = ops[i];
        const catalog_column *col = stm_op_is_delete(op) ? NULL : stm_apply_column(t, op);
        rowclock_kind kind = stm_op_is_delete(op) ? ROWCLOCK_DELETE
                             : col                ? ROWCLOCK_CELL
                                                  : ROWCLOCK_PARKED;
        if (kind == ROWCLOCK_PARKED && !parked_already)
            rc = stm_apply_park_column(a, t, op, st, err);
        else if (kind != ROWCLOCK_PARKED) {
            st->applied++;
            a->any_applied = true;
        }
        bool later = false;
        const char *name = col ? col->name : NULL;
        if (rc == STM_OK)
            rc = stm_apply_later(a, op->hlc, &op->origin, stm_rowclock_find(&a->aside, kind, name),
                                 &later, err);
        if (rc == STM_OK && later)
            stm_rowclock_set(&a->aside, kind, name, op->hlc, origin_no, op->seq);
    }
    bool alive = false, there = false;
    if (rc == STM_OK)
        rc = stm_identity_alive(a->store, &a->aside, &alive, err);
    if (rc == STM_OK)
        rc = s_row_there(a, t, &first->pk, &there, err);
    if (rc != STM_OK)
        return rc;
    bool taken = false;
    if (alive && (!there || stm_identity_compare(&inc, row_inc) < 0))
        return s_take_over(a, t, &first->pk, &inc, row_inc, have_clock, there, &taken, err);
    return stm_conflicts_save(stm_txn_conflicts(a->txn), tbl, &first->pk, &inc, &a->aside, alive,
                              err);
}

/* When the row of pk is not there, the earliest-born alive incarnation kept aside
 * becomes it (identity.h, rule 2): after a delete, here or from a peer. */
stm_err stm_apply_settle(applier_t *a, txn_table *t, const op_value *pk, bool *moved,
                         stm_error *err)
{
    bool there = false;
    stm_err rc = s_row_there(a, t, pk, &there, err);
    /* The alive ones aside in order of birth: the first born before the row there (any,
     * when none is) that can be shown (no unique value another row holds by an earlier
     * claim refuses it) takes the key. */
    identity_stamp inc = {0}, prev;
    const identity_stamp *after = NULL;
    for (;;) {
        bool found = false, have_clock = false, taken = false;
        identity_stamp row_inc;
        if (rc == STM_OK)
            rc = stm_conflicts_next_alive(stm_txn_conflicts(a->txn),
                                          stm_catalog_table_name(stm_txn_table_def(t)), pk, after,
                                          &inc, &a->aside, &found, err);
        if (rc != STM_OK || !found)
            return rc;
        rc = stm_txn_clock_read(a->txn, t, pk, &have_clock, err);
        if (rc == STM_OK)
            rc = stm_identity_of_clock(a->store, stm_txn_clock(a->txn), &row_inc, err);
        if (rc != STM_OK || (there && stm_identity_compare(&inc, &row_inc) >= 0))
            return rc;
        rc = s_take_over(a, t, pk, &inc, &row_inc, have_clock, there, &taken, err);
        if (taken && moved)
            *moved = true;
        if (rc != STM_OK || taken)
            return rc;
        prev = inc;
        after = &prev;
    }
}

/* Settles every row of an identity table deleted or made anew locally since the
 * transaction started (stm_txn_settle). */
stm_err stm_apply_settle_local(applier_t *a, stm_error *err)
{
    opbatch_t *touched = stm_txn_settle(a->txn);
    stm_err rc = STM_OK;
    for (size_t i = 0; i < stm_opbatch_count(touched) && rc == STM_OK; i++) {
        const op_t *op = stm_opbatch_at(touched, i);
        txn_table *t = stm_txn_table_find(a->txn, op->table);
        if (t)
            rc = stm_apply_settle(a, t, &op->pk, NULL, err);
    }
    stm_opbatch_clear(touched);
    return rc;
}

/* ---- resolving conflicts ---- */

/* The identity table named table, with a conflict kept for (pk, inc), in the open
 * transaction; STM_EINPUT when there is none. */
static stm_err s_kept(applier_t *a, const char *table, const op_value *pk,
                      const identity_stamp *inc, txn_table **t, stm_error *err)
{
    *t = stm_txn_table_find(a->txn, table);
    if (!*t)
        return stm_error_set(err, STM_EINPUT, "%s: no table %s is synced here",
                             stm_store_path(a->store), table);
    bool found = false, alive = false;
    stm_err rc =
        stm_conflicts_load(stm_txn_conflicts(a->txn), stm_catalog_table_name(stm_txn_table_def(*t)),
                           pk, inc, &a->aside, &found, err);
    if (rc == STM_OK && found)
        rc = stm_identity_alive(a->store, &a->aside, &alive, err);
    if (rc == STM_OK && !alive)
        rc = stm_error_set(err, STM_EINPUT,
                           "%s: no conflict of %s is kept under that key and incarnation "
                           "(stemma conflicts lists them)",
                           stm_store_path(a->store), table);
    return rc;
}

stm_err stm_applier_discard(applier_t *a, const char *table, const op_value *pk,
                            const identity_stamp *inc, stm_error *err)
{
    stm_err rc = stm_apply_begin(a, err);
    if (rc != STM_OK)
        return rc;
    txn_table *t = NULL;
    rc = s_kept(a, table, pk, inc, &t, err);
    op_t del;
    memset(&del, 0, sizeof del);
    del.table = t ? stm_catalog_table_name(stm_txn_table_def(t)) : table;
    del.pk = *pk;
    del.born_hlc = inc->hlc;
    del.born_origin = inc->origin;
    if (rc == STM_OK)
        rc = stm_capture_next_op(a->store, &del, err);
    /* Recorded as this database's own, and applied as any delete of that
     * incarnation is. */
    apply_stats st = {0};
    if (rc == STM_OK)
        rc = stm_txn_record_own(a->txn, &del, err);
    if (rc == STM_OK)
        rc = stm_apply_delete(a, &del, &st, err);
    return stm_apply_end(a, rc, err);
}

/* Checks the new key given for a kept row of t: one value per key column, or none when
 * SQLite picks the key (a rowid alias). */
static stm_err s_check_new_key(applier_t *a, txn_table *t, size_t nnew_key, stm_error *err)
{
    const catalog_table *def = stm_txn_table_def(t);
    size_t keys = stm_txn_table_keys(t);
    if (nnew_key == 0 && !stm_syncable_rowid_alias(def))
        return stm_error_set(err, STM_EUSAGE,
                             "%s: the kept row needs a new key: %s's key is not one SQLite "
                             "picks, so give its %zu value%s",
                             stm_store_path(a->store), stm_catalog_table_name(def), keys,
                             keys == 1 ? "" : "s, one per key column in key order");
    if (nnew_key && nnew_key != keys)
        return stm_error_set(err, STM_EUSAGE, "%s: %zu value%s given for %s's key of %zu column%s",
                             stm_store_path(a->store), nnew_key, nnew_key == 1 ? "" : "s",
                             stm_catalog_table_name(def), keys, keys == 1 ? "" : "s");
    return STM_OK;
}

stm_err stm_applier_keep(applier_t *a, const char *table, const op_value *pk,
                         const identity_stamp *inc, const char *const *new_key, size_t nnew_key,
                         int64_t *rowid, stm_error *err)
{
    *rowid = 0;
    stm_err rc = stm_apply_begin(a, err);
    if (rc != STM_OK)
        return rc;
    txn_table *t = NULL;
    rc = s_kept(a, table, pk, inc, &t, err);
    if (rc == STM_OK)
        rc = s_check_new_key(a, t, nnew_key, err);
    /* Its values, from the oplog by its clocks. */
    opbatch_t *held = stm_opbatch_new();
    buf_t sql = BUF_INIT, values = BUF_INIT;
    size_t n = 0;
    for (size_t i = 0; rc == STM_OK && i < a->aside.count; i++) {
        const rowclock_entry *e = &a->aside.entries[i];
        const catalog_column *col =
            e->kind == ROWCLOCK_CELL
                ? stm_catalog_table_find(stm_txn_table_def(t), stm_rowclock_name(&a->aside, e))
                : NULL;
        if (!col || col->pk || col->hidden)
            continue;
        stm_id origin;
        bool found = false;
        rc = stm_store_id_of(a->store, e->origin, &origin, err);
        if (rc == STM_OK)
            rc = stm_oplog_fetch(a->log, &origin, e->seq, held, &found, err);
        if (rc != STM_OK || !found)
            continue;
        stm_buf_puts(&sql, n ? ", " : "");
        stm_sqlscript_quote_ident(&sql, col->name);
        stm_buf_printf(&values, n ? ", ?%zu" : "?%zu", n + 1);
        n++;
    }
    /* The new key's columns, bound after the values (as text: the columns' affinities
     * make of them what the table holds). */
    for (size_t k = 0; rc == STM_OK && k < nnew_key; k++) {
        stm_buf_puts(&sql, n + k ? ", " : "");
        stm_sqlscript_quote_ident(&sql, stm_catalog_table_key(stm_txn_table_def(t), k)->name);
        stm_buf_printf(&values, n + k ? ", ?%zu" : "?%zu", n + k + 1);
    }
    rc = stm_apply_end(a, rc, err); /* nothing written: the values are read */
    if (rc == STM_OK) {
        /* The application's own kind of write, outside stemma's transaction, so that
         * capture takes it as an insert of this device. */
        buf_t insert = BUF_INIT;
        stm_buf_puts(&insert, "INSERT INTO ");
        stm_sqlscript_quote_ident(&insert, table);
        if (n + nnew_key)
            stm_buf_printf(&insert, " (%s) VALUES (%s)", stm_buf_str(&sql), stm_buf_str(&values));
        else
            stm_buf_puts(&insert, " DEFAULT VALUES");
        sqlite3_stmt *stmt = NULL;
        if (sqlite3_prepare_v2(a->db, stm_buf_str(&insert), -1, &stmt, NULL) != SQLITE_OK)
            rc = stm_store_error(a->store, err, "inserting the kept row");
        for (size_t i = 0; rc == STM_OK && i < n; i++)
            if (stm_op_value_bind(stmt, (int)i + 1, &stm_opbatch_at(held, i)->value) != SQLITE_OK)
                rc = stm_store_error(a->store, err, "inserting the kept row");
        for (size_t k = 0; rc == STM_OK && k < nnew_key; k++)
            if (sqlite3_bind_text(stmt, (int)(n + k + 1), new_key[k], -1, SQLITE_STATIC) !=
                SQLITE_OK)
                rc = stm_store_error(a->store, err, "inserting the kept row");
        if (rc == STM_OK && sqlite3_step(stmt) != SQLITE_DONE)
            rc = stm_error_set(err, STM_EINPUT, "%s: the kept row cannot be inserted: %s",
                               stm_store_path(a->store), sqlite3_errmsg(a->db));
        if (rc == STM_OK)
            *rowid = sqlite3_last_insert_rowid(a->db);
        sqlite3_finalize(stmt);
        stm_buf_free(&insert);
    }
    stm_buf_free(&sql);
    stm_buf_free(&values);
    stm_opbatch_destroy(&held);
    if (rc == STM_OK)
        rc = stm_applier_discard(a, table, pk, inc, err);
    return rc;
}
