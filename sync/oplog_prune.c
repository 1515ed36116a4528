/* oplog_prune.c - the oplog as compaction (compact.h) reads and shrinks it: stored rows
 * in key order a slice at a time, and a row removed but for the operations still
 * needed, which stay as rows of their own. What is removed leaves a gap below the
 * vector, which the reader hands a peer that lacks it as a pruned stand-in (oplog.h). */
#include "oplog.h"
#include "oplog_internal.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

/* The origin's number, after the RC_* columns of Q_SLICE. */
#define S_ORIGIN_COLUMN (RC_DERIVED + 1)

stm_err stm_oplog_slice(oplog_t *log, int64_t origin, uint64_t seq, size_t max, opbatch_t *ops,
                        oplog_row **rows, size_t *count, stm_error *err)
{
    store_t *store = stm_oplog_store(log);
    *rows = NULL;
    *count = 0;
    stm_opbatch_clear(ops);
    sqlite3_stmt *q = stm_oplog_stmt(log, OPLOG_Q_SLICE);
    if (!q)
        return stm_store_error(store, err, "reading the oplog");
    sqlite3_bind_int64(q, 1, origin);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)seq);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)max);
    oplog_row *list = stm_calloc(max + 1, sizeof *list);
    size_t n = 0;
    stm_err rc = STM_OK;
    int step;
    while (rc == STM_OK && (step = sqlite3_step(q)) == SQLITE_ROW && n < max) {
        oplog_row *row = &list[n];
        row->origin = sqlite3_column_int64(q, S_ORIGIN_COLUMN);
        row->seq = (uint64_t)sqlite3_column_int64(q, RC_SEQ);
        row->n = (uint64_t)sqlite3_column_int64(q, RC_N);
        uint64_t value;
        row->kind = stm_oplog_row_kind(q, &value);
        row->first = stm_opbatch_count(ops);
        rc = stm_store_id_of(store, row->origin, &row->origin_id, err);
        /* A row change's operations, every one: withheld here or not, they are what
         * compaction weighs. */
        if (rc == STM_OK && row->kind == OPLOG_ROW_CHANGE)
            rc = stm_oplog_unpack(store, q, &row->origin_id, 0, UINT64_MAX, 0, ops, err);
        if (rc == STM_OK && row->kind == OPLOG_ROW_CHANGE &&
            stm_opbatch_count(ops) - row->first != row->n)
            rc = stm_error_set(err, STM_ECORRUPT,
                               "%s: stemma_oplog: the row change at sequence %llu is damaged",
                               stm_store_path(store), (unsigned long long)row->seq);
        n++;
    }
    if (rc == STM_OK && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = stm_store_error(store, err, "reading the oplog");
    sqlite3_reset(q);
    if (rc != STM_OK) {
        free(list);
        stm_opbatch_clear(ops);
        return rc;
    }
    *rows = list;
    *count = n;
    return STM_OK;
}

stm_err stm_oplog_prune(oplog_t *log, const oplog_row *row, const opbatch_t *ops, const bool *live,
                        stm_error *err)
{
    store_t *store = stm_oplog_store(log);
    sqlite3_stmt *del = stm_oplog_stmt(log, OPLOG_Q_REMOVE);
    if (!del)
        return stm_store_error(store, err, "pruning the oplog");
    sqlite3_bind_int64(del, 1, row->origin);
    sqlite3_bind_int64(del, 2, (sqlite3_int64)row->seq);
    int step = sqlite3_step(del);
    sqlite3_reset(del);
    if (step != SQLITE_DONE)
        return stm_store_error(store, err, "pruning the oplog");
    int64_t n = (int64_t)row->n;
    /* A pruned stand-in's row was never counted (store.h). */
    if (row->kind == OPLOG_ROW_WITHHELD)
        stm_store_count(store, -n, -n, n);
    else if (row->kind == OPLOG_ROW_CHANGE)
        stm_store_count(store, -n, 0, n);
    if (row->kind != OPLOG_ROW_CHANGE || !live)
        return STM_OK;
    /* What stays goes back as runs of consecutive operations, each a row of the same row
     * change (one clock, table, key): recorded again, and so counted back. */
    const op_t *run[64];
    stm_err rc = STM_OK;
    size_t len = 0;
    for (uint64_t i = 0; i <= row->n && rc == STM_OK; i++) {
        if (i < row->n && live[i]) {
            run[len++] = stm_opbatch_at(ops, row->first + i);
            if (len < sizeof run / sizeof *run)
                continue;
        }
        if (len) {
            rc = stm_oplog_append(log, run, len, run[0]->table, err);
            if (rc == STM_OK)
                stm_store_count(store, 0, 0, -(int64_t)len);
        }
        len = 0;
    }
    return rc;
}
