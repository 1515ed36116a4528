/* compact.c - compaction (compact.h has the invariants): a slice of stored rows read in
 * key order, each row change's operations weighed against its row's clocks, found as the
 * applier finds them (apply_internal.h: the names translated through the lenses, the
 * key folded, an incarnation kept aside), and the row shrunk to what is still needed
 * (oplog_prune.c). */
#include "compact.h"
#include "apply_internal.h"
#include "identity.h"
#include "key.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

/* One slice's state. */
typedef struct {
    applier_t *a;
    const vector_t *horizon; /* lent; NULL: no peer is known */
    vector_t *mine;          /* this database's vector, for stand-ins' rows */
    bool any_parked;         /* stemma_parked holds anything */
    sqlite3_stmt *parked;    /* is one of a row change's operations parked? */
    bool *live;              /* scratch: which of a row change's operations stay */
    size_t live_cap;
    compact_stats *st;
} s_slice;

/* Whether some operation of origin (its id) from seq to last is parked. */
static stm_err s_parked(s_slice *x, const stm_id *origin, uint64_t seq, uint64_t last, bool *any,
                        stm_error *err)
{
    *any = false;
    if (!x->any_parked)
        return STM_OK;
    if (!x->parked && sqlite3_prepare_v2(x->a->db,
                                         "SELECT 1 FROM stemma_parked WHERE origin = ?1 AND seq "
                                         "BETWEEN ?2 AND ?3 LIMIT 1",
                                         -1, &x->parked, NULL) != SQLITE_OK)
        return stm_store_error(x->a->store, err, "reading parked operations");
    sqlite3_bind_blob(x->parked, 1, origin->bytes, STM_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(x->parked, 2, (sqlite3_int64)seq);
    sqlite3_bind_int64(x->parked, 3, (sqlite3_int64)last);
    int step = sqlite3_step(x->parked);
    sqlite3_reset(x->parked);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return stm_store_error(x->a->store, err, "reading parked operations");
    *any = step == SQLITE_ROW;
    return STM_OK;
}

/* The clocks of the incarnation op names (its row's, or kept aside), into *clock (the
 * transaction's, or the applier's scratch for one aside); NULL when none is found. */
static stm_err s_clocks_of(s_slice *x, txn_table *t, const op_t *op, rowclock_t **clock,
                           stm_error *err)
{
    applier_t *a = x->a;
    *clock = NULL;
    bool found = false;
    stm_err rc = stm_txn_clock_read(a->txn, t, &op->pk, &found, err);
    if (rc != STM_OK)
        return rc;
    identity_stamp inc = stm_identity_of_op(op), row_inc = {0};
    if (found && stm_txn_table_identity(t) &&
        (rc = stm_identity_of_clock(a->store, stm_txn_clock(a->txn), &row_inc, err)) != STM_OK)
        return rc;
    if (found && (!stm_txn_table_identity(t) || stm_identity_equal(&inc, &row_inc))) {
        *clock = stm_txn_clock(a->txn);
        return STM_OK;
    }
    /* Another incarnation than the row's, or a row with no clocks of its own: kept
     * aside, or unknown here. */
    bool any = false, kept = false;
    if ((rc = stm_conflicts_any(stm_txn_conflicts(a->txn), &any, err)) != STM_OK || !any)
        return rc;
    rc = stm_conflicts_load(stm_txn_conflicts(a->txn), stm_catalog_table_name(stm_txn_table_def(t)),
                            &op->pk, stm_txn_table_identity(t) ? &inc : &(identity_stamp){0},
                            &a->aside, &kept, err);
    if (rc == STM_OK && kept)
        *clock = &a->aside;
    return rc;
}

/* Whether the write w (a clock entry) replaces op: later than it, and held by every
 * known peer (invariants 1 and 3); *waiting when only the latter fails. */
static stm_err s_replaces(s_slice *x, const rowclock_entry *w, const op_t *op, bool *replaces,
                          bool *waiting, stm_error *err)
{
    *replaces = *waiting = false;
    stm_id origin;
    stm_err rc = stm_store_id_of(x->a->store, w->origin, &origin, err);
    if (rc != STM_OK || stm_op_clock_compare(w->hlc, &origin, op->hlc, &op->origin) <= 0)
        return rc;
    if (x->horizon && w->seq > stm_vector_get(x->horizon, &origin)) {
        *waiting = true;
        return STM_OK;
    }
    *replaces = true;
    return STM_OK;
}

/* Marks in x->live which of ops[0 .. n) (one stored row change but for what was pruned
 * before, of origin number `no`) stay; *all: every one does. */
static stm_err s_weigh(s_slice *x, const op_t *const *ops, size_t n, int64_t no, bool *all,
                       stm_error *err)
{
    applier_t *a = x->a;
    *all = true;
    for (size_t i = 0; i < n; i++)
        x->live[i] = true;
    size_t m = n;
    uint64_t gone = 0;
    const char *whole = NULL;
    const op_t *const *local = stm_apply_translate(a, ops, &m, &gone, &whole);
    txn_table *t = m && !whole ? stm_txn_table_find(a->txn, local[0]->table) : NULL;
    /* A table this database lacks, does not sync or no longer has (or has made anew), a
     * key that cannot name its rows: their cells are not here to be replaced
     * (invariant 2). */
    if (!t || m != n || stm_key_columns(&local[0]->pk) != stm_txn_table_keys(t) ||
        stm_key_has_null(&local[0]->pk))
        return STM_OK;
    rowclock_t *clock = NULL;
    stm_err rc = s_clocks_of(x, t, local[0], &clock, err);
    if (rc != STM_OK || !clock)
        return rc;
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        const op_t *op = local[i];
        /* What the clocks name stays, whatever it is named for. */
        bool named = false;
        for (size_t k = 0; k < clock->count && !named; k++)
            named = clock->entries[k].origin == no && clock->entries[k].seq == op->seq &&
                    clock->entries[k].hlc == op->hlc;
        if (named || stm_apply_gone(a, op))
            continue;
        const rowclock_entry *w =
            stm_op_is_delete(op) ? stm_rowclock_find(clock, ROWCLOCK_DELETE, NULL)
                                 : stm_rowclock_find(clock, ROWCLOCK_CELL, op->column);
        bool replaces = false, waiting = false;
        if (w && (rc = s_replaces(x, w, op, &replaces, &waiting, err)) != STM_OK)
            break;
        x->st->waiting += waiting;
        if (replaces)
            x->live[i] = *all = false;
    }
    return rc;
}

/* Compacts one stored row (invariants 1 to 5). */
static stm_err s_row(s_slice *x, const oplog_row *row, const opbatch_t *ops, stm_error *err)
{
    applier_t *a = x->a;
    uint64_t last = row->seq + row->n - 1;
    if (row->kind == OPLOG_ROW_SKIPPED)
        return STM_OK; /* says which gap is no pruning (oplog.h) */
    if (row->kind != OPLOG_ROW_CHANGE) {
        /* A stand-in's row: pruned ones say no more than a gap once the vector is past
         * them; withheld ones are pruned once every known peer holds them. */
        bool go = last <= stm_vector_get(x->mine, &row->origin_id) &&
                  (row->kind == OPLOG_ROW_PRUNED || !x->horizon ||
                   last <= stm_vector_get(x->horizon, &row->origin_id));
        if (!go)
            return STM_OK;
        x->st->standins++;
        if (row->kind == OPLOG_ROW_WITHHELD)
            x->st->pruned += row->n;
        return stm_oplog_prune(a->log, row, ops, NULL, err);
    }
    bool parked;
    stm_err rc = s_parked(x, &row->origin_id, row->seq, last, &parked, err);
    if (rc != STM_OK || parked)
        return rc;
    size_t n = row->count;
    if (!n) /* every operation pruned before: no more than a gap */
        return stm_oplog_prune(a->log, row, ops, NULL, err);
    if (n > x->live_cap)
        x->live = stm_grow(x->live, &x->live_cap, n, sizeof *x->live);
    const op_t **list = stm_calloc(n, sizeof *list);
    for (size_t i = 0; i < n; i++)
        list[i] = stm_opbatch_at(ops, row->first + i);
    bool all = true;
    rc = s_weigh(x, list, n, row->origin, &all, err);
    free(list);
    if (rc != STM_OK || all)
        return rc;
    for (size_t i = 0; i < n; i++)
        x->st->pruned += !x->live[i];
    bool none = true;
    for (size_t i = 0; i < n && none; i++)
        none = !x->live[i];
    return stm_oplog_prune(a->log, row, ops, none ? NULL : x->live, err);
}

stm_err stm_applier_compact(applier_t *a, const vector_t *horizon, compact_cursor *at,
                            size_t max_rows, compact_stats *st, stm_error *err)
{
    stm_err rc = stm_apply_begin(a, err);
    if (rc != STM_OK)
        return rc;
    compact_stats mine = {0};
    s_slice x = {.a = a, .horizon = horizon, .st = &mine};
    x.any_parked = stm_park_any(a->park, PARK_ANY);
    opbatch_t *ops = stm_opbatch_new();
    oplog_row *rows = NULL;
    size_t count = 0;
    compact_cursor next = *at;
    rc = stm_vector_read(a->store, &x.mine, err);
    if (rc == STM_OK)
        rc = stm_oplog_slice(a->log, at->origin, at->seq, max_rows, ops, &rows, &count, err);
    for (size_t i = 0; i < count && rc == STM_OK; i++) {
        rc = s_row(&x, &rows[i], ops, err);
        next = (compact_cursor){rows[i].origin, rows[i].seq + rows[i].n - 1};
        mine.rows++;
    }
    mine.done = rc == STM_OK && count < max_rows;
    if (mine.done) {
        next = (compact_cursor){0, 0};
        rc = stm_store_exec(a->store,
                            "UPDATE stemma_local SET compact_passes = compact_passes + 1 "
                            "WHERE id = 1",
                            err);
    }
    sqlite3_finalize(x.parked);
    free(x.live);
    free(rows);
    stm_opbatch_destroy(&ops);
    stm_vector_destroy(&x.mine);
    rc = stm_apply_end(a, rc, err);
    if (rc == STM_OK) {
        *at = next;
        st->rows += mine.rows;
        st->pruned += mine.pruned;
        st->waiting += mine.waiting;
        st->standins += mine.standins;
        st->done = mine.done;
    }
    return rc;
}

stm_err stm_applier_compact_all(applier_t *a, const vector_t *horizon, compact_stats *st,
                                stm_error *err)
{
    compact_cursor at = {0, 0};
    stm_err rc;
    do
        rc = stm_applier_compact(a, horizon, &at, COMPACT_SLICE_ROWS, st, err);
    while (rc == STM_OK && !st->done);
    return rc;
}
