/* txn_record.c - what a transaction takes in, recorded once each (txn.h, invariant 1):
 * operations received and stand-ins, by what is held of their origin; local changes,
 * entered into stemma_clock (invariant 4); and at commit the vectors and the local
 * sequence moved over what was recorded (invariant 5). */
#include "txn_internal.h"
#include "identity.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

/* ---- origins and what is held of them ---- */

/* The transaction's state of origin, read on first meeting. */
static bool s_is_origin(const void *ctx, uint32_t pos)
{
    const txn_t *t = ((const void *const *)ctx)[0];
    return stm_id_equal(&t->origins[pos].id, ((const void *const *)ctx)[1]);
}

static stm_err s_origin_get(txn_t *t, const stm_id *id, txn_origin **out, stm_error *err)
{
    if (t->norigins && stm_id_equal(&t->origins[t->last_origin].id, id)) {
        *out = &t->origins[t->last_origin];
        return STM_OK;
    }
    /* By hash: a batch may carry operations of thousands of origins. */
    const void *want[2] = {t, id};
    int64_t at = stm_idmap_find(&t->origins_by_id, stm_idmap_hash_id(id), s_is_origin, want);
    if (at >= 0) {
        t->last_origin = (size_t)at;
        *out = &t->origins[at];
        return STM_OK;
    }
    txn_origin o = {.id = *id};
    stm_err rc = stm_store_id_number(t->store, id, false, &o.no, err);
    if (rc != STM_OK)
        return rc;
    if (stm_id_equal(id, &t->node_id)) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(t->db, "SELECT seq FROM stemma_local WHERE id = 1", -1, &q, NULL) !=
            SQLITE_OK)
            return stm_store_error(t->store, err, "reading the local sequence");
        if (sqlite3_step(q) == SQLITE_ROW)
            o.held = (uint64_t)sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    } else {
        sqlite3_stmt *get = stm_stmtcache_fixed(t->stmts, Q_VECTOR_GET);
        if (!get)
            return stm_store_error(t->store, err, "reading the version vector");
        sqlite3_bind_blob(get, 1, id->bytes, STM_ID_BYTES, SQLITE_STATIC);
        if (sqlite3_step(get) == SQLITE_ROW)
            o.held = (uint64_t)sqlite3_column_int64(get, 0);
        sqlite3_reset(get);
    }
    if (o.no) {
        sqlite3_stmt *above = stm_stmtcache_fixed(t->stmts, Q_ABOVE);
        if (!above)
            return stm_store_error(t->store, err, "reading the oplog");
        sqlite3_bind_int64(above, 1, o.no);
        sqlite3_bind_int64(above, 2, (sqlite3_int64)o.held);
        int step = sqlite3_step(above);
        o.above = step == SQLITE_ROW;
        sqlite3_reset(above);
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            return stm_store_error(t->store, err, "reading the oplog");
    }
    t->origins = stm_grow(t->origins, &t->origins_cap, t->norigins + 1, sizeof *t->origins);
    t->last_origin = t->norigins;
    stm_idmap_put(&t->origins_by_id, stm_idmap_hash_id(id), (uint32_t)t->norigins);
    t->origins[t->norigins++] = o;
    *out = &t->origins[t->last_origin];
    return STM_OK;
}

/* Whether operation seq of o is held; *end is the last sequence of the stored row
 * change holding it (skip to there), or seq when it is not held. */
static stm_err s_held(txn_t *t, txn_origin *o, uint64_t seq, bool *held, uint64_t *end,
                      stm_error *err)
{
    *end = seq;
    *held = seq <= o->held;
    /* Without anything stored above o->held, seq above it is new. */
    if (*held || !o->above || !o->no)
        return STM_OK;
    uint64_t last;
    stm_err rc = stm_oplog_holds(t->log, o->no, seq, &last, err);
    if (rc == STM_OK && last) {
        *held = true;
        *end = last;
    }
    return rc;
}

/* What o holds now that first .. last (clock hlc) were recorded. */
static stm_err s_recorded(txn_t *t, txn_origin *o, uint64_t first, uint64_t last, uint64_t hlc,
                          stm_error *err)
{
    stm_err rc;
    /* Numbered even when no row is stored (pruned operations continuing what is held):
     * the listener's feed names every origin of its runs by number (feed.h). */
    if (!o->no && (rc = stm_store_id_number(t->store, &o->id, true, &o->no, err)) != STM_OK)
        return rc;
    if (t->listener.recorded) {
        t->listener.recorded(t->listener.ctx, o->no, &o->id, first, last - first + 1);
        t->told_open = true;
    }
    if (first == o->held + 1)
        o->held = last;
    else
        o->above = true; /* a gap below it: later arrivals must be looked up */
    o->touched = true;
    if (last > o->top)
        o->top = last;
    if (hlc <= t->clock_limit)
        stm_txn_clock_seen(t, hlc);
    return STM_OK;
}

/* Records ops[0..n) (one row change, none held, consecutive sequences) for o. */
static stm_err s_record(txn_t *t, txn_origin *o, const op_t *const *ops, size_t n, stm_error *err)
{
    stm_err rc = stm_oplog_append(t->log, ops, n, ops[0]->table, err);
    if (rc != STM_OK)
        return rc;
    return s_recorded(t, o, ops[0]->seq, ops[n - 1]->seq, ops[0]->hlc, err);
}

/* Records run .. last of stand-in w, none held: a row of its own, but for pruned ones
 * that continue what is held, which need none (the vector moves past them, and a gap
 * below the vector is what pruned operations leave: oplog.h). */
static stm_err s_record_standin(txn_t *t, txn_origin *o, const op_withheld *w, uint64_t run,
                                uint64_t last, stm_error *err)
{
    stm_err rc = STM_OK;
    if (!w->pruned)
        rc = stm_oplog_append_withheld(t->log, w, run, last - run + 1, w->table, err);
    else if (run != o->held + 1) {
        rc = stm_oplog_append_pruned(t->log, &w->origin, run, last - run + 1, err);
        t->pruned_rows = stm_grow(t->pruned_rows, &t->pruned_rows_cap, t->npruned_rows + 1,
                                  sizeof *t->pruned_rows);
        t->pruned_rows[t->npruned_rows++] = (oplog_row){
            .origin_id = w->origin, .seq = run, .n = last - run + 1, .kind = OPLOG_ROW_PRUNED};
    }
    return rc == STM_OK ? s_recorded(t, o, run, last, w->hlc, err) : rc;
}

stm_err stm_txn_take_withheld(txn_t *t, const op_withheld *w, uint64_t *fresh, uint64_t *present,
                              stm_error *err)
{
    *fresh = 0;
    txn_origin *o;
    stm_err rc = s_origin_get(t, &w->origin, &o, err);
    /* Runs of sequences not held, each recorded as a row of its own (rows never
     * overlap), the rest counted as present. */
    uint64_t seq = w->seq, end_seq = w->seq + w->n - 1, run = 0;
    while (rc == STM_OK && seq <= end_seq) {
        bool held;
        uint64_t end;
        if ((rc = s_held(t, o, seq, &held, &end, err)) != STM_OK)
            break;
        if (!held) {
            if (!run)
                run = seq;
            seq++;
        } else {
            if (run) {
                rc = s_record_standin(t, o, w, run, seq - 1, err);
                *fresh += seq - run;
                run = 0;
            }
            /* Held by the vector: all of it up to there at once. */
            if (seq <= o->held && o->held > end)
                end = o->held;
            uint64_t to = end < end_seq ? end : end_seq;
            *present += to - seq + 1;
            seq = to + 1;
        }
    }
    if (rc == STM_OK && run) {
        rc = s_record_standin(t, o, w, run, end_seq, err);
        *fresh += end_seq - run + 1;
    }
    return rc;
}

stm_err stm_txn_take_new(txn_t *t, const op_t **ops, size_t n, size_t *fresh, uint64_t *present,
                         stm_error *err)
{
    *fresh = 0;
    txn_origin *o;
    stm_err rc = s_origin_get(t, &ops[0]->origin, &o, err);
    uint64_t skip_to = 0;
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        bool held = ops[i]->seq <= skip_to;
        uint64_t end = 0;
        if (!held && (rc = s_held(t, o, ops[i]->seq, &held, &end, err)) != STM_OK)
            break;
        if (held) {
            (*present)++;
            if (end > skip_to)
                skip_to = end;
            continue;
        }
        ops[(*fresh)++] = ops[i];
    }
    /* Duplicates within the batch itself are held once recorded, so the same
     * sequence twice in a row is dropped here. */
    size_t kept = 0;
    for (size_t i = 0; i < *fresh; i++) {
        if (kept && ops[kept - 1]->seq == ops[i]->seq) {
            (*present)++;
            continue;
        }
        ops[kept++] = ops[i];
    }
    *fresh = kept;
    for (size_t i = 0; i < kept && rc == STM_OK;) {
        size_t j = i + 1;
        while (j < kept && ops[j]->seq == ops[j - 1]->seq + 1)
            j++;
        rc = s_record(t, o, ops + i, j - i, err);
        i = j;
    }
    return rc;
}

stm_err stm_txn_record_own(txn_t *t, const op_t *op, stm_error *err)
{
    txn_origin *o;
    stm_err rc = s_origin_get(t, &t->node_id, &o, err);
    if (rc != STM_OK)
        return rc;
    /* Its sequence was taken past o->held already (stemma_local): record it as the
     * next, as local changes are. */
    o->held = op->seq - 1;
    return s_record(t, o, &op, 1, err);
}

/* ---- local changes ---- */

/* Notes that the row pk of table was deleted or made anew here (stm_txn_settle). */
static void s_note_settle(txn_t *t, const txn_table *table, const op_value *pk)
{
    op_t del;
    memset(&del, 0, sizeof del);
    del.table = stm_catalog_table_name(table->def);
    del.pk = *pk;
    stm_opbatch_add(t->settle, &del);
}

/* Stamps a local row change ops[0..n) of an identity table with its row's incarnation
 * (identity.h), before it is recorded: a row change that created its row makes a new
 * one, (its clock, this node), and the row's earlier incarnation, dead here, is kept
 * with its clocks in stemma_conflicts; any other names the row's current one.
 * t->clock holds the row's clocks (found: it has some); a new incarnation starts
 * them afresh. */
static stm_err s_stamp_local(txn_t *t, txn_table *table, op_t *const *ops, size_t n, bool found,
                             stm_error *err)
{
    identity_stamp s;
    stm_err rc = stm_identity_of_clock(t->store, &t->clock, &s, err);
    if (rc == STM_OK && ops[0]->creates) {
        if (found) {
            bool alive = false;
            rc = stm_identity_alive(t->store, &t->clock, &alive, err);
            if (rc == STM_OK)
                rc = stm_conflicts_save(t->conflicts, stm_catalog_table_name(table->def),
                                        &ops[0]->pk, &s, &t->clock, alive, err);
        }
        stm_rowclock_clear(&t->clock);
        s = (identity_stamp){.hlc = ops[0]->hlc, .origin = t->node_id};
        if (rc == STM_OK)
            rc = stm_identity_set_clock(t->store, &t->clock, &s, ops[0]->seq, err);
    }
    for (size_t k = 0; k < n; k++) {
        ops[k]->born_hlc = s.hlc;
        ops[k]->born_origin = s.origin;
    }
    return rc;
}

/* Records local operations (stm_capture_collect's) and enters them into stemma_clock
 * (invariant 4); a row of an identity table deleted or made anew is noted
 * (stm_txn_settle). */
stm_err stm_txn_record_local(txn_t *t, opbatch_t *batch, stm_error *err)
{
    size_t n = stm_opbatch_count(batch);
    if (!n)
        return STM_OK;
    txn_origin *o;
    stm_err rc = s_origin_get(t, &t->node_id, &o, err);
    op_t **ops = stm_calloc(n, sizeof *ops);
    for (size_t i = 0; i < n; i++)
        ops[i] = stm_opbatch_at_mut(batch, i);
    /* Local sequences were taken past o->held already: record them as the next. */
    o->held = ops[0]->seq - 1;
    int64_t origin_no = 0;
    if (rc == STM_OK)
        rc = stm_store_id_number(t->store, &t->node_id, true, &origin_no, err);
    for (size_t i = 0; i < n && rc == STM_OK;) {
        size_t j = i + 1;
        if (!stm_op_is_delete(ops[i]))
            while (j < n && stm_op_same_row_change(ops[i], ops[j]))
                j++;
        txn_table *table = stm_txn_table_find(t, ops[i]->table);
        bool found = false;
        if (table)
            rc = stm_txn_clock_read(t, table, &ops[i]->pk, &found, err);
        bool identity = table && table->identity;
        if (rc == STM_OK && identity)
            rc = s_stamp_local(t, table, ops + i, j - i, found, err);
        if (rc == STM_OK)
            rc = s_record(t, o, (const op_t *const *)(ops + i), j - i, err);
        for (size_t k = i; k < j && table && rc == STM_OK; k++) {
            const catalog_column *col =
                ops[k]->column ? stm_catalog_table_find(table->def, ops[k]->column) : NULL;
            if (stm_op_is_delete(ops[k]))
                stm_rowclock_set(&t->clock, ROWCLOCK_DELETE, NULL, ops[k]->hlc, origin_no,
                                 ops[k]->seq);
            else if (col)
                stm_rowclock_set(&t->clock, ROWCLOCK_CELL, col->name, ops[k]->hlc, origin_no,
                                 ops[k]->seq);
        }
        if (table && rc == STM_OK)
            rc = stm_txn_clock_write(t, table, &ops[i]->pk, !found, err);
        if (rc == STM_OK && identity && (stm_op_is_delete(ops[i]) || ops[i]->creates))
            s_note_settle(t, table, &ops[i]->pk);
        i = j;
    }
    free(ops);
    return rc;
}

stm_err stm_txn_record_made(txn_t *t, opbatch_t *batch, stm_error *err)
{
    return stm_txn_record_local(t, batch, err);
}

/* ---- the vectors at commit ---- */

/* Writes each touched origin's vector entry, moved up over what is now contiguous,
 * and keeps the local sequence above any operation of our own id received back
 * (invariant 5). */
stm_err stm_txn_update_vectors(txn_t *t, stm_error *err)
{
    stm_err rc = STM_OK;
    for (size_t i = 0; i < t->norigins && rc == STM_OK; i++) {
        txn_origin *o = &t->origins[i];
        if (!o->touched)
            continue;
        if (stm_id_equal(&o->id, &t->node_id)) {
            /* Its own operations from a peer, above what it issued: the sequences between
             * were never issued, and are marked so, not taken for pruned (oplog.h). */
            if (o->above && o->top > o->held &&
                (rc = stm_oplog_skip_gaps(t->log, &o->id, o->no, o->held, o->top, err)) != STM_OK)
                break;
            sqlite3_stmt *set = stm_stmtcache_fixed(t->stmts, Q_LOCAL_SEQ);
            if (!set)
                return stm_store_error(t->store, err, "updating the local sequence");
            sqlite3_bind_int64(set, 1, (sqlite3_int64)o->top);
            if (sqlite3_step(set) != SQLITE_DONE)
                rc = stm_store_error(t->store, err, "updating the local sequence");
            else if (t->listener.vector)
                t->listener.vector(t->listener.ctx, &o->id, o->top > o->held ? o->top : o->held);
            continue;
        }
        uint64_t seq = o->held;
        if (o->above && (rc = stm_oplog_contiguous(t->log, o->no, o->held, &seq, err)) != STM_OK)
            break;
        sqlite3_stmt *set = stm_stmtcache_fixed(t->stmts, Q_VECTOR_SET);
        if (!set)
            return stm_store_error(t->store, err, "updating the version vector");
        sqlite3_bind_blob(set, 1, o->id.bytes, STM_ID_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(set, 2, (sqlite3_int64)seq);
        if (sqlite3_step(set) != SQLITE_DONE)
            rc = stm_store_error(t->store, err, "updating the version vector");
        else if (t->listener.vector)
            t->listener.vector(t->listener.ctx, &o->id, seq);
        /* A pruned stand-in's row the vector now passes says no more than a gap. */
        for (size_t k = 0; k < t->npruned_rows && rc == STM_OK; k++) {
            oplog_row *row = &t->pruned_rows[k];
            if (!stm_id_equal(&row->origin_id, &o->id) || row->seq + row->n - 1 > seq)
                continue;
            row->origin = o->no;
            rc = stm_oplog_prune(t->log, row, NULL, NULL, err);
        }
    }
    t->npruned_rows = 0;
    return rc;
}
