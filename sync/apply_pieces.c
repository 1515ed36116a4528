/* apply_pieces.c - a row that arrives in pieces.
 *
 * A row usually arrives whole: the row change that made it (an insert, one operation a
 * column) comes before any that changes it, and makes it. A peer that comes back after
 * a pruning (compact.h), or meets this database after it, receives instead the latest
 * write of each cell: a row's cells may come as several row changes, of several clocks,
 * none of them the whole row. The first to come cannot make the row when the table has
 * a NOT NULL column (or a CHECK) that another piece holds: a constraint refuses it and it
 * is parked, waiting for its row (apply_wait.c). So is the next piece, unless it is
 * joined to what waits: when a row with no clocks here is refused, the writes parked for
 * a constraint that wait for that very row (same table, key and incarnation) are joined
 * to it, each cell by last writer (apply.h, invariant 1), and the row is made of them
 * all. A piece that still cannot make the row parks as before, to be joined by the next.
 * Nothing is joined across keys or incarnations, and a key spelt in another case under a
 * NOCASE key is not found as the same (it waits for its row, as any refused write). */
#include "apply_internal.h"
#include "capture.h"
#include "identity.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

/* One cell of the row being joined, with the write it came from. */
typedef struct {
    row_cell cell;
    uint64_t hlc;
    int64_t origin; /* stemma_ids number */
    stm_id origin_id;
    bool piece;     /* from a piece, not from the change being applied */
} s_joined;

/* The writes parked for a constraint that wait for row pk of t: those of the same row
 * and incarnation as first (translated already), as they were recorded into pieces, and
 * under this database's names into local, in step. */
static stm_err s_pieces(applier_t *a, txn_table *t, const op_t *first, opbatch_t *pieces,
                        opbatch_t *local, stm_error *err)
{
    const char *name = stm_catalog_table_name(stm_txn_table_def(t));
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(a->db, "SELECT origin, seq FROM stemma_parked_wait WHERE wake = ?1",
                           -1, &q, NULL) != SQLITE_OK)
        return stm_store_error(a->store, err, "reading parked operations");
    sqlite3_bind_int64(q, 1, (sqlite3_int64)stm_park_wake_key(name, &first->pk));
    opbatch_t *found = stm_opbatch_new();
    stm_err rc = STM_OK;
    int step;
    while (rc == STM_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
        stm_id origin;
        bool there = false;
        rc = stm_store_id_of(a->store, sqlite3_column_int64(q, 0), &origin, err);
        if (rc == STM_OK)
            rc = stm_oplog_fetch(a->log, &origin, (uint64_t)sqlite3_column_int64(q, 1), found,
                                 &there, err);
    }
    if (rc == STM_OK && step != SQLITE_DONE)
        rc = stm_store_error(a->store, err, "reading parked operations");
    sqlite3_finalize(q);
    identity_stamp inc = stm_identity_of_op(first);
    opbatch_t *one = stm_opbatch_new();
    for (size_t i = 0; i < stm_opbatch_count(found) && rc == STM_OK; i++) {
        const op_t *op = stm_opbatch_at(found, i);
        stm_opbatch_clear(one);
        if (stm_op_is_delete(op) || !stm_apply_translate_copy(a, op, one))
            continue;
        const op_t *here = stm_opbatch_at(one, 0);
        identity_stamp its = stm_identity_of_op(here);
        if (sqlite3_stricmp(here->table, name) == 0 && stm_op_value_equal(&here->pk, &first->pk) &&
            stm_identity_equal(&its, &inc)) {
            stm_opbatch_add(pieces, op);
            stm_opbatch_add(local, here);
        }
    }
    stm_opbatch_destroy(&one);
    stm_opbatch_destroy(&found);
    return rc;
}

/* Adds the write op (of origin number no) of column col to the row, or lets it replace
 * the cell's value when it is later (invariant 1). */
static void s_join(txn_table *t, s_joined *row, size_t *count, const op_t *op,
                   const catalog_column *col, int64_t no)
{
    s_joined *j = NULL;
    for (size_t i = 0; i < *count && !j; i++)
        if (row[i].cell.col == col)
            j = &row[i];
    if (j && stm_op_clock_compare(op->hlc, &op->origin, j->hlc, &j->origin_id) <= 0)
        return;
    if (!j)
        j = &row[(*count)++];
    *j = (s_joined){.cell = {.col = col, .position = stm_rowsql_position(t, col), .seq = op->seq,
                             .value = op->value},
                    .hlc = op->hlc,
                    .origin = no,
                    .origin_id = op->origin,
                    .piece = true};
}

stm_err stm_apply_join_pieces(applier_t *a, txn_table *t, const op_t *const *ops, size_t n,
                              row_cell *cells, size_t *ncells, int64_t origin_no, bool deleted,
                              char **refused, int *step, bool *joined, apply_stats *st,
                              stm_error *err)
{
    (void)n;
    *joined = false;
    const catalog_table *def = stm_txn_table_def(t);
    opbatch_t *pieces = stm_opbatch_new(), *local = stm_opbatch_new();
    stm_err rc = s_pieces(a, t, ops[0], pieces, local, err);
    size_t npieces = stm_opbatch_count(pieces);
    if (rc != STM_OK || !npieces) {
        stm_opbatch_destroy(&pieces);
        stm_opbatch_destroy(&local);
        return rc;
    }
    size_t cap = *ncells + npieces, count = 0;
    s_joined *row = stm_calloc(cap + 1, sizeof *row);
    for (size_t i = 0; i < *ncells; i++) {
        row[count] = (s_joined){.cell = cells[i], .hlc = ops[0]->hlc, .origin = origin_no,
                                .origin_id = ops[0]->origin};
        count++;
    }
    for (size_t i = 0; i < npieces && rc == STM_OK; i++) {
        const op_t *op = stm_opbatch_at(local, i);
        const catalog_column *col = stm_catalog_table_find(def, op->column);
        /* What its key already says, or a column it cannot write, it adds nothing to. */
        if (!col || col->pk || col->hidden ||
            stm_capture_affinity_code(col->affinity) != op->affinity)
            continue;
        int64_t no;
        rc = stm_store_id_number(a->store, &op->origin, false, &no, err);
        if (rc == STM_OK)
            s_join(t, row, &count, op, col, no);
    }
    row_cell *all = stm_calloc(count + 1, sizeof *all);
    for (size_t i = 0; i < count; i++)
        all[i] = row[i].cell;
    stm_rowsql_sort(all, count);
    /* A row deleted before takes the latest earlier value of each column no piece
     * holds, as when one change brings it back. */
    char *again = NULL;
    int tried = rc == STM_OK ? stm_apply_insert_row(a, t, &ops[0]->pk, all, count, deleted, &again,
                                                    err, &rc)
                             : SQLITE_DONE;
    free(all);
    if (rc == STM_OK && stm_rowsql_fatal(tried))
        rc = stm_store_error(a->store, err, "writing a row");
    if (rc == STM_OK && !again && sqlite3_changes(a->db) > 0) {
        /* Made: the pieces' cells are the row's, its own only where they are later. */
        rowclock_t *clock = stm_txn_clock(a->txn);
        size_t kept = 0;
        for (size_t i = 0; i < count; i++) {
            if (row[i].piece)
                stm_rowclock_set(clock, ROWCLOCK_CELL, row[i].cell.col->name, row[i].hlc,
                                 row[i].origin, row[i].cell.seq);
            else
                cells[kept++] = row[i].cell;
        }
        *ncells = kept;
        for (size_t i = 0; i < npieces && rc == STM_OK; i++)
            rc = stm_park_release(a->park, stm_opbatch_at(pieces, i), err);
        st->replayed += npieces;
        free(*refused);
        *refused = NULL;
        *step = SQLITE_DONE;
        *joined = rc == STM_OK;
    }
    free(again);
    free(row);
    stm_opbatch_destroy(&pieces);
    stm_opbatch_destroy(&local);
    return rc;
}
