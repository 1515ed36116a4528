/* apply_unique.c - two rows that claim one value of a UNIQUE index other than the key
 * (issue 11, item 3). Two devices apart insert the same command under different keys;
 * whichever arrives second is refused by the index. Parking it for ever would leave
 * each device its own row. Instead the row that claimed the value first keeps it on
 * every replica and the other is kept aside whole, as a conflict (identity.h's
 * stemma_conflicts; `stemma conflicts` lists it), whatever the order they arrive in:
 *
 *   claim   the latest write to the index's columns in the row's clocks (this change's
 *           included), by (hlc, origin); a row with no clocks for them (from before
 *           stemma) claimed first of all
 *   winner  the earlier claim; the holder moved aside when the newcomer wins (its row
 *           deleted here without an operation, its clocks kept aside), the newcomer
 *           kept aside when it loses
 *
 * It is settled wherever a row write is refused so: a new row, an update moving a row
 * onto a taken value (the loser leaves the table), a row brought back after a delete,
 * a row an incarnation takes the key with. A row kept aside comes back when the value
 * is free again (stm_apply_settle: after batches that applied something and after
 * local writes), the first-born of a key's rows aside that can be shown. */
#include "apply_internal.h"
#include "identity.h"
#include "key.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/sqlscript.h"
#include "lineage/syncable.h"

#include <stdlib.h>
#include <string.h>

/* The columns of the index SQLite named in "UNIQUE constraint failed: t.a, t.b", as t's
 * columns into cols (at most cap); 0 when the message names none of them, or the
 * key (a clash on the key is not this kind). */
static size_t s_index_columns(const txn_table *t, const char *refused, const catalog_column **cols,
                              size_t cap)
{
    static const char prefix[] = "UNIQUE constraint failed: ";
    if (!refused || strncmp(refused, prefix, sizeof prefix - 1) != 0)
        return 0;
    const catalog_table *def = stm_txn_table_def(t);
    size_t n = 0;
    bool all_key = true;
    for (const char *p = refused + sizeof prefix - 1; *p && n < cap;) {
        const char *end = strstr(p, ", ");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *dot = memchr(p, '.', len);
        if (!dot)
            return 0;
        char *name = stm_strndup(dot + 1, len - (size_t)(dot + 1 - p));
        const catalog_column *c = stm_catalog_table_find(def, name);
        free(name);
        if (!c)
            return 0;
        all_key &= c->pk != 0;
        cols[n++] = c;
        p += len + (end ? 2 : 0);
    }
    return all_key ? 0 : n;
}

/* The claim of a row on cols: the latest of its clock's entries for them, and of
 * this change's (hlc, origin) when its cells write one of them. *any false: none. */
static stm_err s_claim(applier_t *a, rowclock_t *clock, const catalog_column *const *cols,
                       size_t ncols, const op_t *change, const row_cell *cells, size_t ncells,
                       identity_stamp *claim, bool *any, stm_error *err)
{
    *any = false;
    memset(claim, 0, sizeof *claim);
    for (size_t k = 0; k < ncols; k++) {
        identity_stamp s;
        const rowclock_entry *e = stm_rowclock_find(clock, ROWCLOCK_CELL, cols[k]->name);
        if (e) {
            s.hlc = e->hlc;
            stm_err rc = stm_store_id_of(a->store, e->origin, &s.origin, err);
            if (rc != STM_OK)
                return rc;
            if (!*any || stm_identity_compare(&s, claim) > 0)
                *claim = s;
            *any = true;
        }
        for (size_t i = 0; change && i < ncells; i++)
            if (cells[i].col == cols[k]) {
                s = (identity_stamp){.hlc = change->hlc, .origin = change->origin};
                if (!*any || stm_identity_compare(&s, claim) > 0)
                    *claim = s;
                *any = true;
            }
    }
    return STM_OK;
}

/* The key of the row of t holding the values cells give cols (its parts into parts,
 * their bytes lent by stmt until it is reset); *found false when none does. */
static stm_err s_holder(applier_t *a, const txn_table *t, const catalog_column *const *cols,
                        size_t ncols, const row_cell *cells, size_t ncells, sqlite3_stmt **stmt,
                        bool *found, stm_error *err)
{
    *found = false;
    const catalog_table *def = stm_txn_table_def(t);
    buf_t sql = BUF_INIT;
    stm_buf_puts(&sql, "SELECT ");
    for (size_t k = 0; k < stm_catalog_table_key_count(def); k++) {
        if (k)
            stm_buf_puts(&sql, ", ");
        stm_sqlscript_quote_ident(&sql, stm_catalog_table_key(def, k)->name);
    }
    stm_buf_puts(&sql, " FROM ");
    stm_sqlscript_quote_ident(&sql, stm_catalog_table_name(def));
    stm_buf_puts(&sql, " WHERE ");
    for (size_t k = 0; k < ncols; k++) {
        if (k)
            stm_buf_puts(&sql, " AND ");
        stm_sqlscript_quote_ident(&sql, cols[k]->name);
        stm_buf_printf(&sql, " = ?%zu", k + 1);
    }
    stm_buf_puts(&sql, " LIMIT 1");
    stm_err rc = STM_OK;
    if (sqlite3_prepare_v2(a->db, stm_buf_str(&sql), -1, stmt, NULL) != SQLITE_OK)
        rc = stm_store_error(a->store, err, "finding the row holding a unique value");
    stm_buf_free(&sql);
    for (size_t k = 0; rc == STM_OK && k < ncols; k++) {
        const op_value *v = NULL;
        for (size_t i = 0; i < ncells; i++)
            if (cells[i].col == cols[k])
                v = &cells[i].value;
        if (!v)
            return rc; /* a value this change does not bring: not found */
        if (stm_op_value_bind(*stmt, (int)k + 1, v) != SQLITE_OK)
            rc = stm_store_error(a->store, err, "finding the row holding a unique value");
    }
    if (rc != STM_OK)
        return rc;
    int step = sqlite3_step(*stmt);
    *found = step == SQLITE_ROW;
    return step == SQLITE_ROW || step == SQLITE_DONE
               ? STM_OK
               : stm_store_error(a->store, err, "finding the row holding a unique value");
}

stm_err stm_apply_unique(applier_t *a, txn_table *t, const op_t *change, const row_cell *cells,
                         size_t ncells, const char *refused, apply_unique_outcome *outcome,
                         stm_error *err)
{
    *outcome = APPLY_UNIQUE_NONE;
    const catalog_column *cols[SYNCABLE_MAX_KEY_COLUMNS];
    size_t ncols = s_index_columns(t, refused, cols, SYNCABLE_MAX_KEY_COLUMNS);
    if (ncols == 0)
        return STM_OK;
    const catalog_table *def = stm_txn_table_def(t);
    const char *tbl = stm_catalog_table_name(def);
    /* The newcomer's values of the index's columns: this change's cells, else the
     * latest held for the row whose clocks the transaction holds (a row brought in
     * from its clocks). */
    row_cell found_cells[SYNCABLE_MAX_KEY_COLUMNS];
    size_t nfound = 0, from_held[SYNCABLE_MAX_KEY_COLUMNS], nheld = 0;
    opbatch_t *held = stm_opbatch_new();
    for (size_t k = 0; k < ncols; k++) {
        bool found = false;
        for (size_t i = 0; i < ncells && !found; i++)
            if (cells[i].col == cols[k]) {
                found_cells[nfound++] = cells[i];
                found = true;
            }
        if (found)
            continue;
        stm_err rc = stm_apply_held_value(a, cols[k], held, &found, err);
        if (rc != STM_OK) {
            stm_opbatch_destroy(&held);
            return rc;
        }
        if (found) {
            from_held[nheld++] = nfound;
            found_cells[nfound++] = (row_cell){.col = cols[k]};
        }
    }
    for (size_t i = 0; i < nheld; i++)
        found_cells[from_held[i]].value = stm_opbatch_at(held, i)->value;
    /* The claim counts this change's own cells only. */
    const row_cell *change_cells = cells;
    size_t nchange_cells = ncells;
    cells = found_cells;
    ncells = nfound;
    /* The newcomer's clocks (the transaction's) aside while the holder's are read. */
    rowclock_t *clock = stm_txn_clock(a->txn), mine = *clock;
    memset(clock, 0, sizeof *clock);
    identity_stamp mine_claim, its_claim, its_inc = {0};
    bool mine_any = false, its_any = false, found = false, its_clock = false;
    sqlite3_stmt *holder = NULL;
    op_value parts[SYNCABLE_MAX_KEY_COLUMNS], its_key;
    buf_t packed = BUF_INIT;
    stm_err rc = s_claim(a, &mine, cols, ncols, change, change_cells, nchange_cells, &mine_claim,
                         &mine_any, err);
    if (rc == STM_OK)
        rc = s_holder(a, t, cols, ncols, cells, ncells, &holder, &found, err);
    if (rc != STM_OK || !found || !mine_any)
        goto done;
    size_t nkey = stm_catalog_table_key_count(def);
    for (size_t k = 0; k < nkey; k++)
        stm_op_value_column(holder, (int)k, &parts[k]);
    if (nkey == 1) {
        its_key = parts[0];
    } else {
        stm_key_pack(parts, nkey, &packed);
        its_key = (op_value){.type = VALUE_KEY, .bytes = packed.data, .len = packed.len};
    }
    rc = stm_txn_clock_read(a->txn, t, &its_key, &its_clock, err);
    if (rc == STM_OK)
        rc = s_claim(a, clock, cols, ncols, NULL, NULL, 0, &its_claim, &its_any, err);
    if (rc == STM_OK && stm_txn_table_identity(t))
        rc = stm_identity_of_clock(a->store, clock, &its_inc, err);
    if (rc != STM_OK)
        goto done;
    /* A holder with no claim on record (from before stemma) claimed first. */
    bool mine_first = its_any && stm_identity_compare(&mine_claim, &its_claim) < 0;
    if (!mine_first) {
        *outcome = APPLY_UNIQUE_LOST;
        goto done;
    }
    /* The newcomer wins: the holder goes aside, clocks and all, its row deleted here
     * without an operation (every replica makes the same choice). */
    rc = stm_conflicts_save(stm_txn_conflicts(a->txn), tbl, &its_key, &its_inc, clock, true, err);
    if (rc == STM_OK && its_clock)
        rc = stm_txn_clock_forget(a->txn, t, &its_key, err);
    else if (rc == STM_OK)
        stm_txn_wrote(a->txn, t, &its_key); /* a row from before stemma leaves all the same */
    char *no = NULL;
    int step = rc == STM_OK ? stm_rowsql_run(a->rowsql, t, ROW_DELETE, &its_key, NULL, 0, &no)
                            : SQLITE_DONE;
    free(no);
    if (rc == STM_OK && step != SQLITE_DONE)
        rc = stm_store_error(a->store, err, "moving a row aside");
    if (rc == STM_OK)
        *outcome = APPLY_UNIQUE_WON;
done:
    sqlite3_finalize(holder);
    stm_opbatch_destroy(&held);
    stm_buf_free(&packed);
    stm_rowclock_free(clock);
    *clock = mine;
    return rc;
}

/* Keeps a new row that lost its unique value aside (apply_unique.c): the change's
 * writes enter the row's clocks, which go to stemma_conflicts rather than
 * stemma_clock; its operations count as applied. */
stm_err stm_apply_keep_aside(applier_t *a, txn_table *t, const op_t *const *ops, size_t n,
                             const row_cell *cells, size_t ncells, const identity_stamp *inc,
                             int64_t origin_no, bool have_clock, bool there, apply_stats *st,
                             stm_error *err)
{
    /* A row that was here (an update onto a taken value) leaves the table, without an
     * operation: every replica makes the same choice. */
    if (there) {
        char *no = NULL;
        int step = stm_rowsql_run(a->rowsql, t, ROW_DELETE, &ops[0]->pk, NULL, 0, &no);
        free(no);
        if (step != SQLITE_DONE)
            return stm_store_error(a->store, err, "moving a row aside");
    }
    if (have_clock) {
        stm_err rc = stm_txn_clock_forget(a->txn, t, &ops[0]->pk, err);
        if (rc != STM_OK)
            return rc;
    } else if (there) {
        stm_txn_wrote(a->txn, t, &ops[0]->pk); /* a row from before stemma left */
    }
    rowclock_t *clock = stm_txn_clock(a->txn);
    for (size_t i = 0; i < ncells; i++)
        stm_rowclock_set(clock, ROWCLOCK_CELL, cells[i].col->name, ops[0]->hlc, origin_no,
                         cells[i].seq);
    for (size_t i = 0; i < n; i++)
        if (stm_apply_column(t, ops[i])) {
            st->applied++;
            a->any_applied = true;
        }
    return stm_conflicts_save(stm_txn_conflicts(a->txn),
                              stm_catalog_table_name(stm_txn_table_def(t)), &ops[0]->pk, inc, clock,
                              true, err);
}

/* Runs the kind statement (ROW_ADD or ROW_UPDATE) for the row change ops[0..n) with
 * its winning cells; when a UNIQUE index other than the key refuses it, the earlier
 * claim keeps the value (apply_unique.c): written again when this row won, kept aside
 * (*aside) when it lost. SQLite's result; *refused as stm_rowsql_run's. */
int stm_apply_write_row(applier_t *a, txn_table *t, row_kind kind, const op_t *const *ops, size_t n,
                        const row_cell *cells, size_t ncells, const identity_stamp *inc,
                        int64_t origin_no, bool have_clock, char **refused, bool *aside,
                        apply_stats *st, stm_error *err, stm_err *rc)
{
    *aside = false;
    int step = kind == ROW_UPDATE
                   ? stm_rowsql_run(a->rowsql, t, kind, &ops[0]->pk, cells, ncells, refused)
                   : stm_apply_insert_filled(a, t, kind, &ops[0]->pk, cells, ncells, refused);
    apply_unique_outcome unique = APPLY_UNIQUE_NONE;
    if (*refused && step == SQLITE_CONSTRAINT_UNIQUE &&
        (*rc = stm_apply_unique(a, t, ops[0], cells, ncells, *refused, &unique, err)) != STM_OK)
        return step;
    if (unique == APPLY_UNIQUE_WON) {
        free(*refused);
        *refused = NULL;
        step = kind == ROW_UPDATE
                   ? stm_rowsql_run(a->rowsql, t, kind, &ops[0]->pk, cells, ncells, refused)
                   : stm_apply_insert_filled(a, t, kind, &ops[0]->pk, cells, ncells, refused);
    } else if (unique == APPLY_UNIQUE_LOST) {
        /* An update's row was here; a new row was not. */
        *rc = stm_apply_keep_aside(a, t, ops, n, cells, ncells, inc, origin_no, have_clock,
                                   kind == ROW_UPDATE, st, err);
        *aside = true;
    }
    return step;
}

int stm_apply_bring_back(applier_t *a, txn_table *t, const op_t *const *ops, size_t n,
                         const row_cell *cells, size_t ncells, bool deleted,
                         const identity_stamp *inc, int64_t origin_no, bool have_clock,
                         char **refused, bool *aside, apply_stats *st, stm_error *err, stm_err *rc)
{
    *aside = false;
    const op_value *pk = &ops[0]->pk;
    int step = stm_apply_insert_row(a, t, pk, cells, ncells, deleted, refused, err, rc);
    /* Brought back onto a unique value another row holds: the earlier claim keeps it. */
    apply_unique_outcome unique = APPLY_UNIQUE_NONE;
    if (*rc == STM_OK && *refused && step == SQLITE_CONSTRAINT_UNIQUE &&
        (*rc = stm_apply_unique(a, t, ops[0], cells, ncells, *refused, &unique, err)) != STM_OK)
        return step;
    if (unique == APPLY_UNIQUE_WON) {
        free(*refused);
        *refused = NULL;
        step = stm_apply_insert_row(a, t, pk, cells, ncells, deleted, refused, err, rc);
    } else if (unique == APPLY_UNIQUE_LOST) {
        *rc = stm_apply_keep_aside(a, t, ops, n, cells, ncells, inc, origin_no, have_clock, false,
                                   st, err);
        *aside = true;
    }
    return step;
}

stm_err stm_apply_settle_all(applier_t *a, stm_error *err)
{
    bool any = false;
    stm_err rc = stm_conflicts_any(stm_txn_conflicts(a->txn), &any, err);
    txn_table *t;
    if (rc != STM_OK || !any) {
        while (stm_txn_next_touched(a->txn)) /* nothing aside: nothing to settle */
            ;
        return rc;
    }
    sqlite3_stmt *keys = NULL;
    if (sqlite3_prepare_v2(a->db,
                           "SELECT DISTINCT pk FROM stemma_conflicts WHERE tbl = ?1 AND alive = 1",
                           -1, &keys, NULL) != SQLITE_OK)
        return stm_store_error(a->store, err, "reading stemma_conflicts");
    opbatch_t *keys_aside = stm_opbatch_new();
    while (rc == STM_OK && (t = stm_txn_next_touched(a->txn)) != NULL) {
        const char *name = stm_catalog_table_name(stm_txn_table_def(t));
        /* A pass that moved a row (an incarnation took its key, and what held the key
         * went aside) may have freed a value a key settled earlier in it waited for:
         * pass again until one moves nothing. Each row that moves frees values only
         * once, so passes stay under the keys aside; the bound guards a cycle not
         * foreseen from spinning. */
        size_t passes = 0;
        for (bool moved = true; rc == STM_OK && moved; passes++) {
            moved = false;
            /* Read whole first: settling writes stemma_conflicts. */
            stm_opbatch_clear(keys_aside);
            sqlite3_reset(keys);
            sqlite3_bind_text(keys, 1, name, -1, SQLITE_STATIC);
            int step;
            while ((step = sqlite3_step(keys)) == SQLITE_ROW) {
                op_t k;
                memset(&k, 0, sizeof k);
                k.table = name;
                stm_key_column(keys, 0, stm_txn_table_keys(t), &k.pk);
                stm_opbatch_add(keys_aside, &k);
            }
            if (step != SQLITE_DONE)
                rc = stm_store_error(a->store, err, "reading stemma_conflicts");
            sqlite3_reset(keys);
            for (size_t i = 0; rc == STM_OK && i < stm_opbatch_count(keys_aside); i++)
                rc = stm_apply_settle(a, t, &stm_opbatch_at(keys_aside, i)->pk, &moved, err);
            if (passes > stm_opbatch_count(keys_aside))
                break;
        }
    }
    sqlite3_finalize(keys);
    stm_opbatch_destroy(&keys_aside);
    return rc;
}
